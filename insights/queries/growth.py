# ruff: noqa: S608 -- SQL text is built only from constants and vetted identifiers; values are parameters.
"""Growth accounting: new, retained, resurrected and churned subjects per week or month."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from accounts.models import Tenant
from accounts.scoping import tenant_sql
from core.sql import fetch_all, sql_date
from scoring.models import ScoringModel
from scoring.selectors import published_model

from ..models import GrowthCount
from .cache import cached_insight
from .common import SUBJECTS, period_label, period_of, period_sql, period_start
from .stored import coverage


@dataclass
class GrowthRow:
    period: int
    label: str
    start: date
    active: int = 0
    new: int = 0
    retained: int = 0
    resurrected: int = 0
    churned: int = 0
    partial: bool = False
    pending: bool = False  # the period has no scored day yet: no numbers to show


    @property
    def quick_ratio(self) -> float | None:
        return round((self.new + self.resurrected) / self.churned, 2) if self.churned else None


@dataclass
class Growth:
    period: str
    subject: str
    measure: str
    rows: list[GrowthRow]
    baseline: date | None = None  # engaged: the first scored period, where everyone counts as new
    as_of: date | None = None  # read from the aggregates of this day (the last scoring run's), not today

    @property
    def is_empty(self) -> bool:
        return not any(r.active or r.churned for r in self.rows)


def _membership_sql(tenant: Tenant, subject: str, measure: str, period: str, model: ScoringModel | None, today):
    """SQL of distinct (s, p): subject s was active/engaged in period p."""
    if measure == "active":
        bucket = period_sql("r.day", period)
        scope, params = tenant_sql(tenant, "r")
        if subject == "users":
            sql = f"""SELECT DISTINCT r.end_user_id AS s, {bucket} AS p FROM events_dailyactivitycount r
                WHERE {scope} AND r.day <= %s"""
        else:
            # An account is active when any of its members is (every account of a user: AccountMembership).
            sql = f"""SELECT DISTINCT am.account_id AS s, {bucket} AS p FROM events_dailyactivitycount r
                JOIN events_accountmembership am ON am.end_user_id = r.end_user_id AND am.ended_at IS NULL
                WHERE {scope} AND r.day <= %s"""
        return sql, [*params, sql_date(today)]
    table, column, _ = SUBJECTS[subject]
    bucket = period_sql("x.day", period)
    scope, params = tenant_sql(tenant, "x")
    product_scope, product_params = tenant_sql(tenant, "ps")
    # Engaged in a period = engaged on its last scored day (the snapshot already spans the window).
    sql = f"""SELECT DISTINCT x.{column} AS s, {bucket} AS p FROM {table} x
        WHERE {scope} AND x.model_id = %s AND x.tier IN ('high', 'medium')
          AND x.day IN (SELECT MAX(ps.day) FROM scoring_productscore ps
                        WHERE {product_scope} AND ps.model_id = %s AND ps.day <= %s
                        GROUP BY {period_sql("ps.day", period)})"""
    return sql, [*params, model.pk, *product_params, model.pk, sql_date(today)]


def period_end(index: int, period: str) -> date:
    return period_start(index + 1, period) - timedelta(days=1)


@cached_insight
def growth_accounting(
    tenant: Tenant, *, subject: str = "users", measure: str = "active", period: str = "week", periods: int = 12
) -> Growth:
    """New, retained, resurrected and churned subjects per period, for the last `periods` periods.

    new: active in p and never before; retained: active in p and p-1; resurrected:
    active in p, not in p-1 but some time before; churned: active in p-1, not in p.
    Read from the aggregates the scoring job writes (each period's row of its last
    day, the current one as of the last scoring run); computed from the rollup when
    a day it needs was never aggregated.
    """
    last = period_of(tenant.today(), period)
    first = last - periods + 1
    covered = coverage(tenant, since=period_start(first, period))
    if covered is None:
        return growth_accounting_live(tenant, subject=subject, measure=measure, period=period, periods=periods)
    as_of = covered.as_of
    needed = {p: min(period_end(p, period), as_of) for p in range(first, last + 1) if period_start(p, period) <= as_of}
    if not covered.complete(needed.values(), from_snapshots=measure == "engaged"):
        return growth_accounting_live(tenant, subject=subject, measure=measure, period=period, periods=periods)
    key = {"model": covered.model, "period": period, "subject": subject, "measure": measure}
    stored = {g.day: g for g in GrowthCount.objects.for_tenant(tenant).filter(**key, day__in=needed.values())}
    rows = []
    for p in range(first, last + 1):
        row = GrowthRow(p, period_label(p, period), period_start(p, period), partial=(p == last),
                        pending=p not in needed)
        found = stored.get(needed.get(p))
        if found is not None:
            row.active, row.new, row.retained = found.active, found.new, found.retained
            row.resurrected, row.churned = found.resurrected, found.churned
        rows.append(row)
    result = Growth(period=period, subject=subject, measure=measure, rows=rows,
                    as_of=as_of if as_of < tenant.today() else None)
    if measure == "engaged":
        result.baseline = _engaged_baseline(tenant, key, period)
    return result


def _engaged_baseline(tenant: Tenant, key: dict, period: str) -> date | None:
    """The first period whose last aggregated day had anyone engaged (a few hundred small rows)."""
    final: dict[int, tuple[date, int]] = {}
    for day, active in GrowthCount.objects.for_tenant(tenant).filter(**key).values_list("day", "active"):
        p = period_of(day, period)
        if p not in final or final[p][0] < day:
            final[p] = (day, active)
    engaged = [p for p, (_day, active) in final.items() if active]
    return period_start(min(engaged), period) if engaged else None


def growth_accounting_live(
    tenant: Tenant, *, subject: str = "users", measure: str = "active", period: str = "week", periods: int = 12
) -> Growth:
    """growth_accounting computed from the whole rollup (the aggregates' oracle and fallback)."""
    today = tenant.today()
    model = published_model(tenant) if measure == "engaged" else None
    last = period_of(today, period)
    first = last - periods + 1
    rows = [GrowthRow(p, period_label(p, period), period_start(p, period), partial=(p == last))
            for p in range(first, last + 1)]
    result = Growth(period=period, subject=subject, measure=measure, rows=rows)
    if measure == "engaged" and model is None:
        return result
    members, params = _membership_sql(tenant, subject, measure, period, model, today)
    # One pass of window functions over the distinct (subject, period) rows: no self-join, so the
    # cost stays linear whatever the planner estimates for the intermediate rows.
    sql = f"""WITH m AS ({members}),
    w AS (
        SELECT p, LAG(p) OVER (PARTITION BY s ORDER BY p) AS prev_p, LEAD(p) OVER (PARTITION BY s ORDER BY p) AS next_p
        FROM m
    )
    SELECT 'c', p, COUNT(*), SUM(CASE WHEN prev_p IS NULL THEN 1 ELSE 0 END),
           SUM(CASE WHEN prev_p = p - 1 THEN 1 ELSE 0 END), SUM(CASE WHEN prev_p < p - 1 THEN 1 ELSE 0 END)
        FROM w WHERE p >= %s GROUP BY p
    UNION ALL
    SELECT 'g', p + 1, SUM(CASE WHEN next_p IS NULL OR next_p > p + 1 THEN 1 ELSE 0 END), 0, 0, 0
        FROM w WHERE p >= %s AND p < %s GROUP BY p
    UNION ALL
    SELECT 'b', MIN(p), 0, 0, 0, 0 FROM w"""
    by_period = {r.period: r for r in rows}
    for kind, p, a, new, retained, resurrected in fetch_all(sql, [*params, first, first - 1, last]):
        if kind == "b":
            if measure == "engaged" and p is not None:
                result.baseline = period_start(int(p), period)
            continue
        row = by_period.get(int(p))
        if row is None:
            continue
        if kind == "c":
            row.active, row.new, row.retained, row.resurrected = int(a), int(new), int(retained), int(resurrected)
        else:
            row.churned = int(a)
    return result
