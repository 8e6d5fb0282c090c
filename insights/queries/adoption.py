# ruff: noqa: S608 -- SQL text is built only from constants and vetted identifiers; values are parameters.
"""Feature adoption: the share of active end users and accounts that used each activity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from accounts.models import Tenant
from accounts.scoping import tenant_sql
from core.sql import fetch_all, sql_date
from events.models import Activity
from scoring.selectors import published_model

from ..aggregates import WINDOWS
from ..models import WEEK_TO_DATE, AdoptionCount
from .cache import cached_insight
from .common import percent, period_of, period_sql, period_start
from .stored import coverage


@dataclass
class AdoptionRow:
    activity_id: int
    name: str
    tracked: bool
    points: int | None
    users: int
    accounts: int
    users_before: int
    accounts_before: int
    user_share: float | None
    account_share: float | None
    user_share_before: float | None

    @property
    def unused(self) -> bool:
        return self.users == 0

    @property
    def change(self) -> float | None:
        if self.user_share is None or self.user_share_before is None:
            return None
        return round(self.user_share - self.user_share_before, 1)


@dataclass
class Adoption:
    window: int
    first_day: date
    last_day: date
    active_users: int
    active_accounts: int
    active_users_before: int
    rows: list[AdoptionRow]

    @property
    def unused(self) -> list[AdoptionRow]:
        return [r for r in self.rows if r.unused]


@cached_insight
def feature_adoption(tenant: Tenant, *, window: int = 30) -> Adoption:
    """Per catalog activity: the share of active users and accounts that did it in the window,
    next to the same share in the window before (the trend).

    Read from the aggregates of the last scoring run's day (7 and 30 days); the 90-day
    window, or a day never aggregated, is computed from the rollup.
    """
    covered = coverage(tenant, since=tenant.today() - timedelta(days=2 * window))
    if covered is None or window not in WINDOWS or not covered.complete(
            [covered.as_of, covered.as_of - timedelta(days=window)]):
        return feature_adoption_live(tenant, window=window)
    last = covered.as_of
    counts: dict[tuple, tuple[int, int]] = {}
    found = AdoptionCount.objects.for_tenant(tenant).filter(
        model=covered.model, window=window, day__in=[last, last - timedelta(days=window)])
    for day, activity_id, users_n, accounts_n in found.values_list("day", "activity_id", "users", "accounts"):
        counts[(activity_id, int(day == last))] = (users_n, accounts_n or 0)
    return _adoption(tenant, window, last, counts)


def feature_adoption_live(tenant: Tenant, *, window: int = 30) -> Adoption:
    """feature_adoption computed from the rollup (the aggregates' oracle, and the 90-day window)."""
    last = tenant.today()
    first = last - timedelta(days=window - 1)
    before = first - timedelta(days=window)
    # First one row per (activity, end user, window) — a hash aggregate that shrinks the rollup
    # ~5x — then the distinct counts per activity and overall, in one statement. An account is
    # every account the user is a member of now (AccountMembership, not only the primary one).
    scope, scope_params = tenant_sql(tenant, "r")
    sql = f"""WITH x AS (
        SELECT r.activity_id AS a, r.end_user_id AS u, CASE WHEN r.day >= %s THEN 1 ELSE 0 END AS cur
        FROM events_dailyactivitycount r
        WHERE {scope} AND r.day >= %s AND r.day <= %s
        GROUP BY r.activity_id, r.end_user_id, CASE WHEN r.day >= %s THEN 1 ELSE 0 END
    ),
    y AS (SELECT x.a, x.u, x.cur, m.account_id AS acc FROM x LEFT JOIN events_accountmembership m
          ON m.end_user_id = x.u AND m.tenant_id = %s AND m.ended_at IS NULL)
    SELECT a, cur, COUNT(DISTINCT u), COUNT(DISTINCT acc) FROM y GROUP BY a, cur
    UNION ALL
    SELECT NULL, cur, COUNT(DISTINCT u), COUNT(DISTINCT acc) FROM y GROUP BY cur"""
    counts: dict[tuple, tuple[int, int]] = {}
    params = [sql_date(first), *scope_params, sql_date(before), sql_date(last), sql_date(first), tenant.pk]
    for activity_id, cur, users_n, accounts_n in fetch_all(sql, params):
        counts[(activity_id, int(cur))] = (int(users_n), int(accounts_n or 0))
    return _adoption(tenant, window, last, counts)


def _adoption(tenant: Tenant, window: int, last: date, counts: dict[tuple, tuple[int, int]]) -> Adoption:
    """The page's rows from {(activity id or None, 1 in the window / 0 the window before): (users, accounts)}."""
    first = last - timedelta(days=window - 1)
    per_activity = {
        activity_id: (*counts.get((activity_id, 1), (0, 0)), *counts.get((activity_id, 0), (0, 0)))
        for activity_id, _cur in counts
    }
    totals = per_activity.pop(None, (0, 0, 0, 0))
    model = published_model(tenant)
    points = dict(model.weights.values_list("activity_id", "points")) if model else {}
    users_now, accounts_now, users_before, _accounts_before = (int(v or 0) for v in totals)
    rows = []
    for activity in Activity.objects.for_tenant(tenant).order_by("name"):  # the catalog, tens of rows
        u, a, ub, ab = (int(v or 0) for v in per_activity.get(activity.pk, (0, 0, 0, 0)))
        rows.append(AdoptionRow(
            activity_id=activity.pk, name=str(activity), tracked=activity.is_tracked, points=points.get(activity.pk),
            users=u, accounts=a, users_before=ub, accounts_before=ab, user_share=percent(u, users_now),
            account_share=percent(a, accounts_now), user_share_before=percent(ub, users_before),
        ))
    rows.sort(key=lambda r: (-(r.user_share or 0), r.name))
    return Adoption(window=window, first_day=first, last_day=last, active_users=users_now,
                    active_accounts=accounts_now, active_users_before=users_before, rows=rows)


@cached_insight
def adoption_trend(tenant: Tenant, *, weeks: int = 12) -> tuple[list[date], dict[int, list[float | None]]]:
    """Weekly share of active users per activity id over the last `weeks` weeks.

    Each week's numbers are the aggregates of its last day (this week: of the last scoring run).
    """
    last = period_of(tenant.today(), "week")
    first = last - weeks + 1
    covered = coverage(tenant, since=period_start(first, "week"))
    if covered is None:
        return adoption_trend_live(tenant, weeks=weeks)
    needed = {p: min(period_start(p + 1, "week") - timedelta(days=1), covered.as_of)
              for p in range(first, last + 1) if period_start(p, "week") <= covered.as_of}
    if not covered.complete(needed.values()):
        return adoption_trend_live(tenant, weeks=weeks)
    week_of = {day: p for p, day in needed.items()}
    counts: dict[tuple, int] = {}
    found = AdoptionCount.objects.for_tenant(tenant).filter(model=covered.model, window=WEEK_TO_DATE,
                                                             day__in=needed.values())
    for day, activity_id, users_n in found.values_list("day", "activity_id", "users"):
        counts[(activity_id, week_of[day])] = users_n
    return _trend(first, last, counts)


def adoption_trend_live(tenant: Tenant, *, weeks: int = 12) -> tuple[list[date], dict[int, list[float | None]]]:
    """adoption_trend computed from the rollup (the aggregates' oracle and fallback)."""
    today = tenant.today()
    last = period_of(today, "week")
    first = last - weeks + 1
    bucket = period_sql("r.day", "week")
    scope, scope_params = tenant_sql(tenant, "r")
    sql = f"""WITH x AS (
        SELECT r.activity_id AS a, r.end_user_id AS u, {bucket} AS p FROM events_dailyactivitycount r
        WHERE {scope} AND r.day >= %s AND r.day <= %s GROUP BY r.activity_id, r.end_user_id, {bucket}
    )
    SELECT a, p, COUNT(*) FROM x GROUP BY a, p
    UNION ALL
    SELECT NULL, p, COUNT(DISTINCT u) FROM x GROUP BY p"""
    start = period_start(first, "week")
    params = [*scope_params, sql_date(start), sql_date(today)]
    counts: dict[tuple, int] = {}
    for activity_id, p, n in fetch_all(sql, params):
        counts[(activity_id, int(p))] = int(n)
    return _trend(first, last, counts)


def _trend(first: int, last: int, counts: dict[tuple, int]) -> tuple[list[date], dict[int, list[float | None]]]:
    periods = list(range(first, last + 1))
    series: dict[int, list[float | None]] = {}
    for (activity_id, _p) in counts:
        if activity_id is not None and activity_id not in series:
            series[activity_id] = [percent(counts.get((activity_id, p), 0), counts.get((None, p))) for p in periods]
    return [period_start(p, "week") for p in periods], series
