# ruff: noqa: S608 -- SQL text is built only from constants and vetted identifiers; values are parameters.
"""Risk that shows early: which accounts (or end users) are at risk on a day, and why.

One statement per call. For a tenant, a model version and a day it reads the
day's snapshots against those of `risk_days` earlier, and the rollup of the
last HISTORY_DAYS days, and flags a subject for any of these reasons (each
configurable per workspace on the Tenant, documented in docs/insights.md):

- points: its points fell by more than `risk_points_drop` % over `risk_days` days;
- tier: its tier fell (high > medium > low > dormant; "new" has no tier to fall from);
- silent seats (accounts): of the seats (end users) active in the last
  HISTORY_DAYS (60) days, at least `risk_silent_share` % have done nothing for
  `risk_silent_days` days or more — "4 of 8 seats silent for 8+ days" (two seats at least:
  a one-seat account falls under "last seen");
- last seen: the days since its last activity exceed `risk_gap_factor` times its
  own usual gap between active days (and MIN_GAP_DAYS), so a weekly account is
  judged against weeks and a daily one against days.

- falling: the snapshot's own falling flag, the scoring model's setting (points at
  least `falling_drop_pct` % below `trend_days` days earlier, docs/scoring.md),
  stored by the engine: "Falling: points fell 45% in 30 days (120 → 66)".

Subjects still "new" (inside the model's grace period) are never at risk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from accounts.models import Tenant
from accounts.scoping import tenant_sql
from core.sql import as_uuid, fetch_all, is_postgresql, sql_date
from scoring.engine import USER_TABLE
from scoring.models import ScoringModel, UserScore
from scoring.selectors import published_model, tier_rank_sql

from .cache import cached_insight
from .common import SUBJECTS, WEEK_EPOCH
from .movers import Mover, _name_sql

# Activity looked at for seats and usual gaps: two months (the cost grows with it: bench/risk.py).
HISTORY_DAYS = 60
# A usual gap needs a few active days to mean anything, and a couple of quiet days is never a risk.
MIN_ACTIVE_DAYS = 3
MIN_GAP_DAYS = 3

REASONS = ("points", "tier", "silent_seats", "last_seen", "falling")


@dataclass(frozen=True)
class RiskSettings:
    days: int = 14
    points_drop: int = 30  # percent; 0 = off
    tier_drop: bool = True
    silent_days: int = 7
    silent_share: int = 25  # percent of active seats; 0 = off
    gap_factor: float = 3.0  # 0 = off

    @classmethod
    def of(cls, tenant: Tenant) -> RiskSettings:
        return cls(days=tenant.risk_days, points_drop=tenant.risk_points_drop, tier_drop=tenant.risk_tier_drop,
                   silent_days=tenant.risk_silent_days, silent_share=tenant.risk_silent_share,
                   gap_factor=tenant.risk_gap_factor)


@dataclass(frozen=True)
class Reason:
    code: str  # one of REASONS
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass
class RiskItem(Mover):
    """A subject at risk: a Mover (points now and `days` earlier) with its reasons."""

    reasons: list[Reason] = field(default_factory=list)
    owner_id: int | None = None

    @property
    def codes(self) -> set[str]:
        return {r.code for r in self.reasons}


@dataclass
class Risk:
    subject: str
    day: date | None
    compared_with: date | None
    settings: RiskSettings
    items: list[RiskItem]

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def ids(self) -> set[int]:
        return {i.subject_id for i in self.items}

    def by_id(self) -> dict[int, RiskItem]:
        return {i.subject_id: i for i in self.items}


def _day_number(column: str) -> str:
    """Days since WEEK_EPOCH as an integer: date arithmetic both databases agree on."""
    if is_postgresql():
        return f"({column} - DATE '{WEEK_EPOCH.isoformat()}')"
    return f"CAST(julianday({column}) - julianday('{WEEK_EPOCH.isoformat()}') AS INTEGER)"


def _as_date(value) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _stored_last_seen(tenant_id: int, model: ScoringModel, day: date) -> bool:
    """Whether the day's user snapshots carry the engine's last day seen (rows it wrote do; rows from
    before that column, or written by hand, do not): then the seats read it instead of the rollup."""
    return UserScore.objects.for_tenant(tenant_id).filter(model=model, day=day, last_seen__isnull=False).exists()


def _seat_sql(tenant_id: int, day: date, first: date, model: ScoringModel | None, rollup: str,
              rollup_params: list, ids: list[int] | None) -> tuple[str, list]:
    """`seat (sid, uid, last_day)`: each account's current members active in the days read, with their
    last active day. From the user snapshots of `day` when they store it (the engine's last_seen is
    the member's last active day up to `day`: the same day the rollup gives when it is on or after
    `first`), one row per end user instead of ~13 rollup rows per seat (1.4 s of the dashboard's
    1.5 s at 100,000 end users); else from the rollup."""
    if model is None:
        return f"""SELECT m.account_id AS sid, r.end_user_id AS uid, MAX(r.day) AS last_day {rollup}
          GROUP BY m.account_id, r.end_user_id""", rollup_params
    scope, scope_params = tenant_sql(tenant_id, "s")
    narrow = f"AND m.account_id IN ({', '.join(['%s'] * len(ids))})" if ids is not None else ""
    sql = f"""SELECT m.account_id AS sid, s.end_user_id AS uid, MAX(s.last_seen) AS last_day
        FROM {USER_TABLE} s
        JOIN events_accountmembership m ON m.end_user_id = s.end_user_id AND m.tenant_id = %s AND m.ended_at IS NULL
        WHERE {scope} AND s.model_id = %s AND s.day = %s AND s.last_seen >= %s AND s.last_seen <= %s {narrow}
        GROUP BY m.account_id, s.end_user_id"""
    return sql, [tenant_id, *scope_params, model.pk, sql_date(day), sql_date(first), sql_date(day), *(ids or [])]


def _ctes(subject: str, tenant_id: int, day: date, s: RiskSettings, ids: list[int] | None,
          seats_from: ScoringModel | None = None) -> tuple[str, list]:
    """The activity CTEs: `seats` (accounts: live and silent seats) and `gap` (active days per subject).

    With `ids` (a detail page) only those subjects' rollup rows are read, not the tenant's.
    `seats_from`: the version whose user snapshots of `day` give the members' last days (_seat_sql)."""
    first = day - timedelta(days=HISTORY_DAYS - 1)
    silent_before = sql_date(day - timedelta(days=s.silent_days))
    scope, scope_params = tenant_sql(tenant_id, "r")
    narrow, narrow_params = "", []
    if ids is not None:
        marks = ", ".join(["%s"] * len(ids))
        narrow = (f"AND r.end_user_id IN ({marks})" if subject == "users" else
                  f"AND m.account_id IN ({marks})")
        narrow_params = list(ids)
    # The rollup is read by each aggregate straight from its table: a shared CTE would be
    # materialized (deduplicating ~one row per seat-day first cost most of the time).
    # An account's seats are its members now (AccountMembership: every account a user is in,
    # not only the primary one), each with their own activity.
    source, source_params = ("JOIN events_enduser u ON u.id = r.end_user_id", []) if subject == "users" else (
        "JOIN events_accountmembership m ON m.end_user_id = r.end_user_id AND m.tenant_id = %s AND m.ended_at IS NULL",
        [tenant_id])
    rollup = f"""FROM events_dailyactivitycount r {source}
        WHERE {scope} AND r.day >= %s AND r.day <= %s AND r."count" > 0 {narrow}"""
    rollup_params: list = [*source_params, *scope_params, sql_date(first), sql_date(day), *narrow_params]
    # Only subjects quiet for MIN_GAP_DAYS can be "last seen" beyond their gap: their active days
    # alone are counted (counting every account's distinct days was most of the statement's time).
    quiet = sql_date(day - timedelta(days=MIN_GAP_DAYS))
    if subject == "users":
        return f"""seats AS (SELECT 0 AS sid, 0 AS live, 0 AS silent, NULL AS silent_last WHERE 1 = 0),
    last_seen AS (SELECT r.end_user_id AS sid, MAX(r.day) AS last_day {rollup} GROUP BY r.end_user_id),
    gap AS (SELECT r.end_user_id AS sid, COUNT(DISTINCT r.day) AS n, MIN(r.day) AS first_day,
                   MAX(r.day) AS last_day {rollup}
              AND r.end_user_id IN (SELECT sid FROM last_seen WHERE last_day <= %s) GROUP BY r.end_user_id)""", [
            *rollup_params, *rollup_params, quiet]
    seat_sql, seat_params = _seat_sql(tenant_id, day, first, seats_from, rollup, rollup_params, ids)
    sql = f"""seat AS ({seat_sql}),
    seats AS (
        SELECT sid, COUNT(*) AS live, SUM(CASE WHEN last_day <= %s THEN 1 ELSE 0 END) AS silent,
               MAX(CASE WHEN last_day <= %s THEN last_day END) AS silent_last, MAX(last_day) AS last_day
        FROM seat GROUP BY sid),
    acct_days AS (
        SELECT m.account_id AS sid, r.day AS day {rollup}
          AND m.account_id IN (SELECT sid FROM seats WHERE last_day <= %s) GROUP BY m.account_id, r.day),
    gap AS (SELECT sid, COUNT(*) AS n, MIN(day) AS first_day, MAX(day) AS last_day FROM acct_days GROUP BY sid)"""
    return sql, [*seat_params, silent_before, silent_before, *rollup_params, quiet]


def _flags(day: date, s: RiskSettings) -> tuple[str, list]:
    today = (day - WEEK_EPOCH).days
    last, first = _day_number("g.last_day"), _day_number("g.first_day")
    flags = [
        ("f_points", "%s > 0 AND a.points > 0 AND b.points < a.points * (1 - %s / 100.0)", [s.points_drop] * 2),
        ("f_tier", f"%s = 1 AND ({tier_rank_sql('b.tier')}) < ({tier_rank_sql('a.tier')})", [int(s.tier_drop)]),
        ("f_silent", "%s > 0 AND st.live >= 2 AND st.silent > 0 AND st.silent * 100.0 >= %s * st.live",
         [s.silent_share] * 2),
        ("f_gap", f"%s > 0 AND g.n >= %s AND %s - {last} >= %s AND (%s - {last}) * (g.n - 1) > %s * ({last} - {first})",
         [s.gap_factor, MIN_ACTIVE_DAYS, today, MIN_GAP_DAYS, today, s.gap_factor]),
    ]
    sql = ", ".join(f"CASE WHEN {cond} THEN 1 ELSE 0 END AS {name}" for name, cond, _ in flags)
    return sql, [p for _, _, params in flags for p in params]


def at_risk(
    tenant: Tenant, *, day: date | None, model: ScoringModel | None = None, subject: str = "accounts",
    settings: RiskSettings | None = None, owner_id: int | None = None, ids: list[int] | None = None,
) -> Risk:
    """Every subject at risk on `day` under `model` (default: the published one), with its reasons,
    most reasons first, then the largest relative fall. `owner_id` / `ids` narrow the subjects.

    A whole tenant's answer reads two months of its rollup (~1 s at 16,000 seats, bench/risk.py), so
    it is kept in the insight cache (a finished scoring run shows at once); one subject's (`ids`,
    a detail page) reads only its own rows and is not cached."""
    s = settings or RiskSettings.of(tenant)
    model = model or published_model(tenant)
    if ids is not None:
        return _at_risk(tenant, day=day, model=model, subject=subject, settings=s, owner_id=owner_id, ids=ids)
    # The cache key names the model by its repr ("v3"): versions are unique in a tenant.
    return _cached_at_risk(tenant, day=day, model=model, subject=subject, settings=s, owner_id=owner_id, ids=None)


def _at_risk(tenant: Tenant, *, day: date | None, model: ScoringModel | None, subject: str, settings: RiskSettings,
             owner_id: int | None, ids: list[int] | None) -> Risk:
    s = settings
    before = day - timedelta(days=s.days) if day else None
    result = Risk(subject=subject, day=day, compared_with=before, settings=s, items=[])
    if model is None or day is None or ids == []:
        return result
    table, column, subject_table = SUBJECTS[subject]
    # A detail page (`ids`) reads only its own rollup rows already: the stored seats serve the whole tenant.
    whole = subject == "accounts" and ids is None
    seats_from = model if whole and _stored_last_seen(tenant.pk, model, day) else None
    ctes, params = _ctes(subject, tenant.pk, day, s, ids, seats_from)
    b_where, b_params = tenant_sql(tenant, "b")
    flags, flag_params = _flags(day, s)
    narrow, narrow_params = "", []
    if owner_id is not None:
        narrow += " AND e.owner_id = %s"
        narrow_params.append(owner_id)
    if ids is not None:
        narrow += f" AND e.id IN ({', '.join(['%s'] * len(ids))})"
        narrow_params += list(ids)
    sql = f"""WITH {ctes},
    m AS (
        SELECT b.{column} AS sid, b.points AS points, b.tier AS tier, a.points AS before, a.tier AS tier_before,
               st.live AS live, st.silent AS silent, st.silent_last AS silent_last,
               g.n AS n, g.first_day AS first_day, g.last_day AS last_day, {flags},
               CASE WHEN b.falling THEN 1 ELSE 0 END AS f_falling, b.trend_points AS trend_points
        FROM {table} b
        LEFT JOIN {table} a ON a.{column} = b.{column} AND a.model_id = b.model_id AND a.day = %s
        LEFT JOIN seats st ON st.sid = b.{column}
        LEFT JOIN gap g ON g.sid = b.{column}
        WHERE {b_where} AND b.model_id = %s AND b.day = %s AND b.tier <> 'new'
    )
    SELECT e.id, e.public_id, {_name_sql(subject)}, m.points, m.before, m.tier, m.tier_before, m.live, m.silent,
           m.silent_last, m.n, m.first_day, m.last_day, m.f_points, m.f_tier, m.f_silent, m.f_gap, e.owner_id,
           m.f_falling, m.trend_points
    FROM m JOIN {subject_table} e ON e.id = m.sid
    WHERE (m.f_points + m.f_tier + m.f_silent + m.f_gap + m.f_falling) > 0 {narrow}
    ORDER BY (m.f_points + m.f_tier + m.f_silent + m.f_gap + m.f_falling) DESC,
             (COALESCE(m.before, 0) - m.points) / CASE WHEN m.before > 0 THEN m.before ELSE 1 END DESC, e.id"""
    params += flag_params + [sql_date(before), *b_params, model.pk, sql_date(day)] + narrow_params
    result.items = [_item(row, day, s, model) for row in fetch_all(sql, params)]
    return result


_cached_at_risk = cached_insight(_at_risk)


def _item(row, day: date, s: RiskSettings, model: ScoringModel) -> RiskItem:
    (pk, public_id, name, points, before, tier, tier_before, live, silent, silent_last, n, first_day, last_day,
     f_points, f_tier, f_silent, f_gap, owner_id, f_falling, trend_points) = row
    item = RiskItem(pk, as_uuid(public_id), name or "", float(points), float(before or 0), tier, tier_before,
                    owner_id=owner_id)
    if f_points:
        item.reasons.append(Reason("points", f"Points fell {-item.change_share:.1f}% in {s.days} days "
                                             f"({item.points_before:,.1f} → {item.points:,.1f})"))
    if f_tier:
        item.reasons.append(Reason("tier", f"Tier fell from {tier_before} to {tier} in {s.days} days"))
    if f_silent:
        quiet = (day - _as_date(silent_last)).days
        item.reasons.append(Reason("silent_seats", f"{silent} of {live} seats silent for {quiet}+ days"))
    if f_gap:
        last, first = _as_date(last_day), _as_date(first_day)
        usual = (last - first).days / (n - 1)
        item.reasons.append(Reason("last_seen", f"Last seen {(day - last).days} days ago; "
                                                f"usually active every {usual:.1f} days"))
    if f_falling and trend_points:
        fell = 100 * (float(trend_points) - item.points) / float(trend_points)
        item.reasons.append(Reason("falling", f"Falling: points fell {fell:.0f}% in {model.trend_days} days "
                                              f"({float(trend_points):,.1f} → {item.points:,.1f})"))
    return item
