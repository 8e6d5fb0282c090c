# ruff: noqa: S608 -- SQL text is built only from constants and vetted identifiers; values are parameters.
"""Outcomes: does the score of a past day predict who was still active (and, for accounts, churn and MRR)?"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from accounts.models import Tenant
from accounts.scoping import tenant_sql
from core.sql import fetch_all, is_postgresql, sql_date
from scoring.selectors import published_model

from ..models import AggregatedDay, OutcomeCount
from .cache import cached_insight
from .common import SUBJECTS, THIN, TIERS, nearest_scored_day, percent, scored_days

HORIZONS = (30, 60)
# Active "h days later" = any activity in the 7 days ending on day + h (a week, not one day,
# so a weekly-use product is not counted as churned on its quiet days).
ACTIVE_SPAN = 7


@dataclass
class OutcomeRow:
    group: str
    subjects: int
    active: dict[int, int | None]
    churned: int | None = None
    with_churn_trait: int | None = None
    mrr: float | None = None

    def share(self, horizon: int) -> float | None:
        n = self.active.get(horizon)
        return None if n is None else percent(n, self.subjects)

    @property
    def thin(self) -> bool:
        return self.subjects < THIN

    @property
    def shares(self) -> list[float | None]:
        return [self.share(h) for h in HORIZONS]

    @property
    def churn_rate(self) -> float | None:
        return percent(self.churned, self.with_churn_trait) if self.with_churn_trait else None


@dataclass
class Outcomes:
    subject: str
    day: date | None
    observable: dict[int, bool]
    by_tier: list[OutcomeRow] = field(default_factory=list)
    by_decile: list[OutcomeRow] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(r.subjects for r in self.by_tier)

    @property
    def too_thin(self) -> bool:
        return self.day is None or not any(self.observable.values()) or self.total < 3 * THIN

    @property
    def has_churn(self) -> bool:
        return any(r.with_churn_trait for r in self.by_tier)

    @property
    def has_mrr(self) -> bool:
        return any(r.mrr for r in self.by_tier)

    def verdict(self, horizon: int) -> str | None:
        """Plain words on this one day's tiers. Never "predictive": that takes the AUC over several
        past days (insights.truth, the Score truth page); here only whether the tiers are in order."""
        rows = {r.group: r for r in self.by_tier}
        if self.too_thin or not self.observable.get(horizon):
            return None
        shown = [(t, rows[t].share(horizon)) for t in ("high", "medium", "low")
                 if t in rows and not rows[t].thin and rows[t].share(horizon) is not None]
        if len(shown) < 2:
            return None
        order = ", ".join(f"{t} {share}%" for t, share in shown)
        words = f"{self.subject} active {horizon} days later: {order}"
        dormant = rows.get("dormant")
        dormant_share = dormant.share(horizon) if dormant and not dormant.thin else None
        extra = ""
        if dormant_share is not None and dormant_share > shown[0][1]:
            extra = f" Dormant {self.subject} ({dormant_share}%) stayed more than {shown[0][0]}-tier ones."
        if any(b > a + 1.0 for (_, a), (_, b) in zip(shown, shown[1:], strict=False)):
            return f"No: the tiers are out of order — {words}.{extra}"
        if shown[0][1] - shown[-1][1] < 10:
            return f"Weakly: the tiers are in order but close — {words}.{extra}"
        return f"In order on this day — {words}.{extra}"


def default_outcome_day(tenant: Tenant, days: list[date]) -> date | None:
    """The latest scored day whose 60-day outcome is observable, else the earliest scored day."""
    return nearest_scored_day(days, tenant.today() - timedelta(days=max(HORIZONS)))


def _churn_sql(alias: str) -> tuple[str, str]:
    """(has a churn trait, churned) expressions for a customer account's traits."""
    if is_postgresql():
        has = f"({alias}.traits ? 'churned' OR {alias}.traits ? 'churned_at' OR {alias}.traits ? 'status')"
        churned = (f"(LOWER(COALESCE({alias}.traits ->> 'churned', '')) IN ('true', '1', 'yes') OR "
                   f"COALESCE({alias}.traits ->> 'churned_at', '') NOT IN ('', 'null') OR "
                   f"LOWER(COALESCE({alias}.traits ->> 'status', '')) IN ('churned', 'cancelled', 'canceled'))")
        return has, churned
    has = (f"(json_type({alias}.traits, '$.churned') IS NOT NULL OR json_type({alias}.traits, '$.churned_at') "
           f"IS NOT NULL OR json_type({alias}.traits, '$.status') IS NOT NULL)")
    churned = (f"(LOWER(COALESCE(CAST(json_extract({alias}.traits, '$.churned') AS TEXT), '')) "
               f"IN ('true', '1', 'yes') OR "
               f"COALESCE(CAST(json_extract({alias}.traits, '$.churned_at') AS TEXT), '') <> '' OR "
               f"LOWER(COALESCE(json_extract({alias}.traits, '$.status'), '')) "
               f"IN ('churned', 'cancelled', 'canceled'))")
    return has, churned


def _mrr_sql(alias: str) -> str:
    if is_postgresql():
        return (f"CASE WHEN jsonb_typeof({alias}.traits -> 'mrr') = 'number' "
                f"THEN CAST({alias}.traits ->> 'mrr' AS DOUBLE PRECISION) END")
    return (f"CASE WHEN json_type({alias}.traits, '$.mrr') IN ('integer', 'real') "
            f"THEN json_extract({alias}.traits, '$.mrr') END")


def _start(tenant: Tenant, day: date | None, subject: str):
    """The published version and an empty result for `day` (default: default_outcome_day)."""
    model = published_model(tenant)
    if day is None:
        day = default_outcome_day(tenant, scored_days(tenant, model))
    today = tenant.today()
    return model, Outcomes(subject=subject, day=day, observable={
        h: day is not None and day + timedelta(days=h) <= today for h in HORIZONS})


@cached_insight
def outcomes(tenant: Tenant, *, day: date | None = None, subject: str = "users") -> Outcomes:
    """For the snapshots of `day`: per tier and per score decile, how many were active 30 and 60 days later.

    Accounts also get churn rate and MRR by tier when their traits carry churn or MRR. Read from the
    aggregates the scoring job wrote (insights/aggregates.py); computed here when a horizon it needs
    was never aggregated (its day not scored yet since it became observable, or older installs).
    """
    model, result = _start(tenant, day, subject)
    if result.day is None or model is None:
        return result
    day = result.day
    # The day's groups are written with the day, a horizon's counts with the day it closes on.
    needed = {day, *(day + timedelta(days=h) for h in HORIZONS if result.observable[h])}
    written = AggregatedDay.objects.for_tenant(tenant).filter(model=model, day__in=needed).count()
    if written < len(needed):
        return outcomes_live(tenant, day=day, subject=subject)
    found = list(OutcomeCount.objects.for_tenant(tenant).filter(model=model, day=day, subject=subject))
    active = {(r.grouping, r.group, r.horizon): r.active for r in found}
    groups = {}
    for r in found:
        if r.horizon == 0:
            groups[(r.grouping, r.group)] = OutcomeRow(
                group=r.group, subjects=r.subjects, with_churn_trait=r.with_churn_trait, churned=r.churned, mrr=r.mrr,
                active={h: active.get((r.grouping, r.group, h), 0) if result.observable[h] else None
                        for h in HORIZONS})
    return _grouped(result, {g: row for (kind, g), row in groups.items() if kind == "tier"},
                    {g: row for (kind, g), row in groups.items() if kind == "decile"})


def outcome_groups_sql(tenant: Tenant | int, model_id: int, day: date, subject: str,
                       horizons: tuple[int, ...]) -> tuple[str, list]:
    """Per tier ('t') and decile ('d') of `day`'s snapshots: subjects, active `h` days later for each of
    `horizons` (none: the snapshot alone), and for accounts' tiers the churn and MRR traits."""
    table, column, subject_table = SUBJECTS[subject]
    windows = {h: (day + timedelta(days=h - ACTIVE_SPAN + 1), day + timedelta(days=h)) for h in horizons}
    later, later_params = "", []
    if horizons:
        flags = ", ".join(f"CASE WHEN r.day >= %s AND r.day <= %s THEN 1 ELSE 0 END AS a{h}" for h in horizons)
        later_scope, later_scope_params = tenant_sql(tenant, "r")
        if subject == "users":
            later = f"""UNION ALL SELECT r.end_user_id AS s, NULL AS tier, NULL AS points, {flags}
                FROM events_dailyactivitycount r WHERE {later_scope} AND r.day >= %s AND r.day <= %s"""
        else:
            # Every account of a user (AccountMembership), not only the primary one.
            later = f"""UNION ALL SELECT m.account_id AS s, NULL AS tier, NULL AS points, {flags}
                FROM events_dailyactivitycount r
                JOIN events_accountmembership m ON m.end_user_id = r.end_user_id AND m.ended_at IS NULL
                WHERE {later_scope} AND r.day >= %s AND r.day <= %s"""
        later_params = [sql_date(v) for h in horizons for v in windows[h]]
        later_params += [*later_scope_params, sql_date(min(w[0] for w in windows.values())),
                         sql_date(max(w[1] for w in windows.values()))]
    if subject == "accounts":
        has_churn, churned = _churn_sql("e")
        extra = (f", SUM(CASE WHEN {has_churn} THEN 1 ELSE 0 END), "
                 f"SUM(CASE WHEN {has_churn} AND {churned} THEN 1 ELSE 0 END), SUM({_mrr_sql('e')})")
        traits_join = f"JOIN {subject_table} e ON e.id = snap.s"
    else:
        extra, traits_join = ", NULL, NULL, NULL", ""
    zeros = "".join(f", 0 AS a{h}" for h in horizons)
    sums = "".join(f", SUM(a{h})" for h in horizons)
    maxes = "".join(f", MAX(a{h}) AS a{h}" for h in horizons)
    cols = "".join(f", a{h}" for h in horizons)
    scope, scope_params = tenant_sql(tenant, "x")
    # Snapshot rows and later activity rows are stacked and grouped by subject (no join between two
    # derived tables, whose row estimates the planner may get wrong by orders of magnitude).
    sql = f"""WITH u AS (
        SELECT x.{column} AS s, x.tier AS tier, x.points AS points {zeros}
        FROM {table} x WHERE {scope} AND x.model_id = %s AND x.day = %s
        {later}
    ),
    per AS (SELECT s, MAX(tier) AS tier, MAX(points) AS points {maxes} FROM u GROUP BY s),
    snap AS (
        SELECT s, tier, points {cols},
               ROW_NUMBER() OVER (PARTITION BY CASE WHEN points > 0 THEN 1 ELSE 0 END ORDER BY points) AS rn,
               SUM(CASE WHEN points > 0 THEN 1 ELSE 0 END) OVER () AS n
        FROM per WHERE tier IS NOT NULL
    )
    SELECT 't', snap.tier, COUNT(*) {sums} {extra} FROM snap {traits_join} GROUP BY snap.tier
    UNION ALL
    -- Decile = ceil(10 x rank / n) among subjects with points, so the top one is always decile 10.
    SELECT 'd', CAST(CASE WHEN points > 0 THEN (rn * 10 + n - 1) / n ELSE 0 END AS TEXT), COUNT(*) {sums},
           NULL, NULL, NULL
        FROM snap GROUP BY CASE WHEN points > 0 THEN (rn * 10 + n - 1) / n ELSE 0 END"""
    return sql, [*scope_params, model_id, sql_date(day), *later_params]


def outcomes_live(tenant: Tenant, *, day: date | None = None, subject: str = "users") -> Outcomes:
    """outcomes computed from the snapshots and the rollup (the aggregates' oracle and fallback)."""
    model, result = _start(tenant, day, subject)
    if result.day is None or model is None:
        return result
    day = result.day
    tiers, deciles = {}, {}
    for kind, group, n, *rest in fetch_all(*outcome_groups_sql(tenant, model.pk, day, subject, HORIZONS)):
        active_counts = rest[: len(HORIZONS)]
        with_trait, churned_n, mrr = rest[len(HORIZONS):]
        row = OutcomeRow(
            group=str(group), subjects=int(n),
            active={h: int(v or 0) if result.observable[h] else None for h, v in zip(HORIZONS, active_counts,
                                                                                      strict=True)},
            with_churn_trait=int(with_trait) if with_trait is not None else None,
            churned=int(churned_n) if churned_n is not None else None,
            mrr=round(float(mrr), 2) if mrr is not None else None,
        )
        (tiers if kind == "t" else deciles)[row.group] = row
    return _grouped(result, tiers, deciles)


def _grouped(result: Outcomes, tiers: dict[str, OutcomeRow], deciles: dict[str, OutcomeRow]) -> Outcomes:
    result.by_tier = [tiers[t] for t in TIERS if t in tiers]
    result.by_decile = [deciles[str(d)] for d in range(10, -1, -1) if str(d) in deciles]
    for row in result.by_decile:
        row.group = f"decile {row.group}" if row.group != "0" else "no points"
    return result
