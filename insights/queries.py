# ruff: noqa: S608 -- SQL text is built only from constants and vetted identifiers; values are parameters.
"""Set-based reads behind the dashboard and the insight pages (issue 6).

Every function aggregates in the database (one or a few SQL statements) and
returns small lists and dicts: nothing here loops over events, end users or
accounts in Python. The SQL runs on SQLite (embedded default) and PostgreSQL;
the only vendor branches are the date-bucket and JSON-trait expressions.

Conventions (written out in docs/insights.md):
- "active" in a period: at least one rollup row (any tracked activity) in it;
- "engaged": tier high or medium in the published version's snapshot of the
  last scored day of the period;
- an account is active when one of its end users (by their current account) is.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Max

from accounts.models import Tenant
from scoring.models import ProductScore, ScoringModel, ScoringRun, Tier
from scoring.selectors import TIER_ORDER, published_model

log = logging.getLogger(__name__)

TIERS = [t.value for t in TIER_ORDER]
ENGAGED = ("high", "medium")
# Tier ranks for "fell a tier"; "new" is outside the ladder (no history to fall from).
TIER_RANK = {"high": 3, "medium": 2, "low": 1, "dormant": 0}
# Fewer subjects than this in a group and its shares say nothing.
THIN = 30
WEEK_EPOCH = date(2000, 1, 3)  # a Monday: week buckets start on Mondays

SUBJECTS = {
    # subject: (snapshot table, subject column, subject table)
    "users": ("scoring_userscore", "end_user_id", "events_enduser"),
    "accounts": ("scoring_accountscore", "account_id", "events_customeraccount"),
}


def cached_insight(func):
    """Keep an insight's result for INSIGHTS_CACHE_SECONDS (0 = off).

    The pages that read the whole rollup cost seconds on a large tenant, and their
    data only moves with new events and scoring runs. The key holds the tenant,
    the arguments, the tenant's day and its latest finished scoring run, so a run
    that finishes shows at once; new events show within the TTL. A cache that is
    down is skipped, never an error.
    """

    @functools.wraps(func)
    def wrapper(tenant: Tenant, **kwargs):
        seconds = settings.INSIGHTS_CACHE_SECONDS
        if seconds <= 0:
            return func(tenant, **kwargs)
        latest = (
            ScoringRun.objects.for_tenant(tenant)
            .filter(finished_at__isnull=False)
            .order_by("-finished_at")
            .values_list("pk", "finished_at")
            .first()
        )
        state = (func.__name__, tenant.pk, str(tenant.created_at), tenant.today(), latest, sorted(kwargs.items()))
        key = "insight:" + hashlib.sha256(repr(state).encode()).hexdigest()
        try:
            hit = cache.get(key)
        except Exception:  # noqa: BLE001 -- a cache outage must not take the page down
            log.warning("insight cache unavailable; computing %s directly", func.__name__, exc_info=True)
            return func(tenant, **kwargs)
        if hit is not None:
            return hit
        value = func(tenant, **kwargs)
        try:
            cache.set(key, value, seconds)
        except Exception:  # noqa: BLE001
            log.warning("insight cache unavailable; %s not kept", func.__name__, exc_info=True)
        return value

    return wrapper


def _d(value: date):
    return connection.ops.adapt_datefield_value(value)


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _uuid(value) -> uuid.UUID | None:
    """Raw SQL gives SQLite's 32-hex text or PostgreSQL's UUID: one type for templates and reverse()."""
    return None if value is None else value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _share(part: int | None, whole: int | None) -> float | None:
    return round(100.0 * (part or 0) / whole, 1) if whole else None


# --- Periods --------------------------------------------------------------------------------


def period_sql(column: str, period: str) -> str:
    """An integer bucket of a date column: weeks since WEEK_EPOCH, or year * 12 + month - 1."""
    if period == "week":
        if _pg():
            return f"(({column} - DATE '{WEEK_EPOCH.isoformat()}') / 7)"
        return f"(CAST(julianday({column}) - julianday('{WEEK_EPOCH.isoformat()}') AS INTEGER) / 7)"
    if _pg():
        return (f"(CAST(EXTRACT(YEAR FROM {column}) AS INTEGER) * 12"
                f" + CAST(EXTRACT(MONTH FROM {column}) AS INTEGER) - 1)")
    return f"(CAST(strftime('%%Y', {column}) AS INTEGER) * 12 + CAST(strftime('%%m', {column}) AS INTEGER) - 1)"


def period_of(day: date, period: str) -> int:
    if period == "week":
        return (day - WEEK_EPOCH).days // 7
    return day.year * 12 + day.month - 1


def period_start(index: int, period: str) -> date:
    if period == "week":
        return WEEK_EPOCH + timedelta(days=7 * index)
    return date(index // 12, index % 12 + 1, 1)


def period_label(index: int, period: str) -> str:
    start = period_start(index, period)
    return f"week of {start:%b %d}" if period == "week" else f"{start:%b %Y}"


# --- Scored days ------------------------------------------------------------------------------


def scored_days(tenant: Tenant, model: ScoringModel | None) -> list[date]:
    if model is None:
        return []
    rows = ProductScore.objects.for_tenant(tenant).filter(model=model).order_by("day").values_list("day", flat=True)
    return list(rows)


def nearest_scored_day(days: list[date], wanted: date) -> date | None:
    """The latest scored day on or before `wanted` (else the first one)."""
    before = [d for d in days if d <= wanted]
    return before[-1] if before else (days[0] if days else None)


# --- Growth accounting -------------------------------------------------------------------------


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

    @property
    def is_empty(self) -> bool:
        return not any(r.active or r.churned for r in self.rows)


def _membership_sql(tenant: Tenant, subject: str, measure: str, period: str, model: ScoringModel | None, today):
    """SQL of distinct (s, p): subject s was active/engaged in period p."""
    if measure == "active":
        bucket = period_sql("r.day", period)
        if subject == "users":
            sql = f"""SELECT DISTINCT r.end_user_id AS s, {bucket} AS p FROM events_dailyactivitycount r
                WHERE r.tenant_id = %s AND r.day <= %s"""
        else:
            sql = f"""SELECT DISTINCT e.account_id AS s, {bucket} AS p FROM events_dailyactivitycount r
                JOIN events_enduser e ON e.id = r.end_user_id
                WHERE r.tenant_id = %s AND r.day <= %s AND e.account_id IS NOT NULL"""
        return sql, [tenant.pk, _d(today)]
    table, column, _ = SUBJECTS[subject]
    bucket = period_sql("x.day", period)
    # Engaged in a period = engaged on its last scored day (the snapshot already spans the window).
    sql = f"""SELECT DISTINCT x.{column} AS s, {bucket} AS p FROM {table} x
        WHERE x.tenant_id = %s AND x.model_id = %s AND x.tier IN ('high', 'medium')
          AND x.day IN (SELECT MAX(ps.day) FROM scoring_productscore ps
                        WHERE ps.tenant_id = %s AND ps.model_id = %s AND ps.day <= %s
                        GROUP BY {period_sql("ps.day", period)})"""
    return sql, [tenant.pk, model.pk, tenant.pk, model.pk, _d(today)]


@cached_insight
def growth_accounting(
    tenant: Tenant, *, subject: str = "users", measure: str = "active", period: str = "week", periods: int = 12
) -> Growth:
    """New, retained, resurrected and churned subjects per period, for the last `periods` periods.

    new: active in p and never before; retained: active in p and p-1; resurrected:
    active in p, not in p-1 but some time before; churned: active in p-1, not in p.
    """
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
    for kind, p, a, new, retained, resurrected in _fetch(sql, [*params, first, first - 1, last]):
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


# --- Tier transitions --------------------------------------------------------------------------


@dataclass
class Transitions:
    subject: str
    day_from: date | None
    day_to: date | None
    matrix: dict[str, dict[str, int]] = field(default_factory=dict)
    rows: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(sum(cols.values()) for cols in self.matrix.values())

    def table(self) -> list[dict[str, Any]]:
        out = []
        for tier in self.rows:
            cells = [self.matrix.get(tier, {}).get(t, 0) for t in TIERS]
            out.append({"tier": tier, "cells": cells, "total": sum(cells)})
        return out

    @property
    def moved_up(self) -> int:
        return self._moved(1)

    @property
    def moved_down(self) -> int:
        return self._moved(-1)

    def _moved(self, sign: int) -> int:
        total = 0
        for a, cols in self.matrix.items():
            for b, n in cols.items():
                if a in TIER_RANK and b in TIER_RANK and (TIER_RANK[b] - TIER_RANK[a]) * sign > 0:
                    total += n
        return total


NOT_SEEN = "not seen yet"


def tier_transitions(
    tenant: Tenant, *, day_from: date, day_to: date, subject: str = "users", model: ScoringModel | None = None
) -> Transitions:
    """How many subjects moved from each tier on `day_from` to each tier on `day_to` (published version)."""
    model = model or published_model(tenant)
    result = Transitions(subject=subject, day_from=day_from, day_to=day_to)
    if model is None:
        return result
    table, column, _ = SUBJECTS[subject]
    sql = f"""SELECT a.tier, b.tier, COUNT(*) FROM {table} a
        JOIN {table} b ON b.{column} = a.{column} AND b.model_id = a.model_id AND b.day = %s
        WHERE a.tenant_id = %s AND a.model_id = %s AND a.day = %s GROUP BY a.tier, b.tier
    UNION ALL
    SELECT '{NOT_SEEN}', b.tier, COUNT(*) FROM {table} b
        WHERE b.tenant_id = %s AND b.model_id = %s AND b.day = %s AND NOT EXISTS (
            SELECT 1 FROM {table} a WHERE a.{column} = b.{column} AND a.model_id = b.model_id AND a.day = %s)
        GROUP BY b.tier"""
    params = [_d(day_to), tenant.pk, model.pk, _d(day_from), tenant.pk, model.pk, _d(day_to), _d(day_from)]
    for a, b, n in _fetch(sql, params):
        result.matrix.setdefault(a, {})[b] = int(n)
    result.rows = [t for t in TIERS if t in result.matrix] + ([NOT_SEEN] if NOT_SEEN in result.matrix else [])
    return result


# --- Feature adoption --------------------------------------------------------------------------


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
    next to the same share in the window before (the trend)."""
    from events.models import Activity

    last = tenant.today()
    first = last - timedelta(days=window - 1)
    before = first - timedelta(days=window)
    # First one row per (activity, end user, window) — a hash aggregate that shrinks the rollup
    # ~5x — then the distinct counts per activity and overall, in one statement.
    sql = """WITH x AS (
        SELECT r.activity_id AS a, r.end_user_id AS u, CASE WHEN r.day >= %s THEN 1 ELSE 0 END AS cur
        FROM events_dailyactivitycount r
        WHERE r.tenant_id = %s AND r.day >= %s AND r.day <= %s
        GROUP BY r.activity_id, r.end_user_id, CASE WHEN r.day >= %s THEN 1 ELSE 0 END
    ),
    y AS (SELECT x.a, x.u, x.cur, e.account_id AS acc FROM x JOIN events_enduser e ON e.id = x.u)
    SELECT a, cur, COUNT(*), COUNT(DISTINCT acc) FROM y GROUP BY a, cur
    UNION ALL
    SELECT NULL, cur, COUNT(DISTINCT u), COUNT(DISTINCT acc) FROM y GROUP BY cur"""
    counts: dict[tuple, tuple[int, int]] = {}
    for activity_id, cur, users_n, accounts_n in _fetch(sql, [_d(first), tenant.pk, _d(before), _d(last), _d(first)]):
        counts[(activity_id, int(cur))] = (int(users_n), int(accounts_n or 0))
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
            users=u, accounts=a, users_before=ub, accounts_before=ab, user_share=_share(u, users_now),
            account_share=_share(a, accounts_now), user_share_before=_share(ub, users_before),
        ))
    rows.sort(key=lambda r: (-(r.user_share or 0), r.name))
    return Adoption(window=window, first_day=first, last_day=last, active_users=users_now,
                    active_accounts=accounts_now, active_users_before=users_before, rows=rows)


@cached_insight
def adoption_trend(tenant: Tenant, *, weeks: int = 12) -> tuple[list[date], dict[int, list[float | None]]]:
    """Weekly share of active users per activity id over the last `weeks` weeks."""
    today = tenant.today()
    last = period_of(today, "week")
    first = last - weeks + 1
    bucket = period_sql("r.day", "week")
    sql = f"""WITH x AS (
        SELECT r.activity_id AS a, r.end_user_id AS u, {bucket} AS p FROM events_dailyactivitycount r
        WHERE r.tenant_id = %s AND r.day >= %s AND r.day <= %s GROUP BY r.activity_id, r.end_user_id, {bucket}
    )
    SELECT a, p, COUNT(*) FROM x GROUP BY a, p
    UNION ALL
    SELECT NULL, p, COUNT(DISTINCT u) FROM x GROUP BY p"""
    start = period_start(first, "week")
    params = [tenant.pk, _d(start), _d(today)]
    counts: dict[tuple, int] = {}
    for activity_id, p, n in _fetch(sql, params):
        counts[(activity_id, int(p))] = int(n)
    periods = list(range(first, last + 1))
    series: dict[int, list[float | None]] = {}
    for (activity_id, _p) in counts:
        if activity_id is not None and activity_id not in series:
            series[activity_id] = [_share(counts.get((activity_id, p), 0), counts.get((None, p))) for p in periods]
    return [period_start(p, "week") for p in periods], series


# --- Segments ------------------------------------------------------------------------------------

TRAIT_KEY = re.compile(r"^[A-Za-z0-9_\- ]{1,64}$")
COHORT = "cohort"
MAX_SEGMENTS = 12


def trait_sql(alias: str, key: str) -> tuple[str, list]:
    """The text value of a top-level JSON trait (SQLite json_extract / PostgreSQL ->>)."""
    if not TRAIT_KEY.match(key):
        raise ValueError("Trait names are letters, digits, spaces, '_' and '-'.")
    if _pg():
        return f"({alias}.traits ->> %s)", [key]
    return f"CAST(json_extract({alias}.traits, %s) AS TEXT)", [f'$."{key}"']


def cohort_sql(alias: str) -> str:
    if _pg():
        return f"to_char({alias}.first_seen_at AT TIME ZONE 'UTC', 'YYYY-MM')"
    return f"strftime('%%Y-%%m', {alias}.first_seen_at)"


def trait_keys(tenant: Tenant, subject: str = "users", sample: int = 2000) -> list[str]:
    """Top-level trait names found on a recent sample of end users or accounts."""
    _, _, subject_table = SUBJECTS[subject]
    if _pg():
        sql = f"""SELECT DISTINCT k FROM (SELECT traits FROM {subject_table} WHERE tenant_id = %s
            AND jsonb_typeof(traits) = 'object' ORDER BY id DESC LIMIT %s) t, jsonb_object_keys(t.traits) k"""
    else:
        sql = f"""SELECT DISTINCT j.key FROM (SELECT traits FROM {subject_table} WHERE tenant_id = %s
            AND json_type(traits) = 'object' ORDER BY id DESC LIMIT %s) t, json_each(t.traits) j"""
    keys = sorted(k for (k,) in _fetch(sql, [tenant.pk, sample]) if k and TRAIT_KEY.match(k))
    return keys[:50]


@dataclass
class Segment:
    value: str
    subjects: int
    scored: int
    minimum: float | None
    q1: float | None
    median: float | None
    q3: float | None
    maximum: float | None
    mean: float | None
    tiers: dict[str, float | None]

    @property
    def thin(self) -> bool:
        return self.scored < THIN


@dataclass
class Segments:
    subject: str
    dimension: str
    day: date | None
    segments: list[Segment]
    more: bool = False


@cached_insight
def segments(tenant: Tenant, *, dimension: str, subject: str = "users") -> Segments:
    """Score distribution per trait value (or first-seen month) on the latest scored day.

    Quartiles use the nearest rank over subjects with points > 0; tier shares count all subjects.
    """
    model = published_model(tenant)
    day = ProductScore.objects.for_tenant(tenant).filter(model=model).aggregate(d=Max("day"))["d"] if model else None
    result = Segments(subject=subject, dimension=dimension, day=day, segments=[])
    if day is None:
        return result
    table, column, subject_table = SUBJECTS[subject]
    if dimension == COHORT:
        seg_sql, seg_params = cohort_sql("e"), []
    else:
        seg_sql, seg_params = trait_sql("e", dimension)
    tier_sel = ", ".join(f"SUM(CASE WHEN tier = '{t}' THEN 1 ELSE 0 END)" for t in TIERS)
    scored = "points > 0"
    # One pass: ranks among each segment's subjects with points, then one GROUP BY (no join, so a
    # trait with a value per subject stays linear).
    sql = f"""WITH s AS (
        SELECT COALESCE({seg_sql}, '(none)') AS seg, x.points AS points, x.tier AS tier
        FROM {table} x JOIN {subject_table} e ON e.id = x.{column}
        WHERE x.tenant_id = %s AND x.model_id = %s AND x.day = %s
    ),
    r AS (
        SELECT seg, points, tier,
               ROW_NUMBER() OVER (PARTITION BY seg, CASE WHEN {scored} THEN 1 ELSE 0 END ORDER BY points) AS rn,
               SUM(CASE WHEN {scored} THEN 1 ELSE 0 END) OVER (PARTITION BY seg) AS n
        FROM s
    )
    SELECT seg, COUNT(*), {tier_sel}, MAX(n),
           MIN(CASE WHEN {scored} THEN points END), MAX(CASE WHEN {scored} AND rn = (n + 3) / 4 THEN points END),
           AVG(CASE WHEN {scored} AND (rn = (n + 1) / 2 OR rn = (n + 2) / 2) THEN points END),
           MAX(CASE WHEN {scored} AND rn = (3 * n + 3) / 4 THEN points END),
           MAX(CASE WHEN {scored} THEN points END), AVG(CASE WHEN {scored} THEN points END)
    FROM r GROUP BY seg ORDER BY COUNT(*) DESC, seg LIMIT %s"""
    rows = _fetch(sql, [*seg_params, tenant.pk, model.pk, _d(day), MAX_SEGMENTS + 1])
    result.more = len(rows) > MAX_SEGMENTS
    for row in rows[:MAX_SEGMENTS]:
        seg, subjects, tier_counts = row[0], int(row[1]), [int(v) for v in row[2 : 2 + len(TIERS)]]
        scored_n, mn, q1, median, q3, mx, mean = row[2 + len(TIERS) :]

        def num(value):
            return None if value is None else round(float(value), 2)

        result.segments.append(Segment(
            value=str(seg), subjects=subjects, scored=int(scored_n or 0), minimum=num(mn), q1=num(q1),
            median=num(median), q3=num(q3), maximum=num(mx), mean=num(mean),
            tiers={t: _share(n, subjects) for t, n in zip(TIERS, tier_counts, strict=True)},
        ))
    return result


# --- Outcomes --------------------------------------------------------------------------------------

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
        return None if n is None else _share(n, self.subjects)

    @property
    def thin(self) -> bool:
        return self.subjects < THIN

    @property
    def shares(self) -> list[float | None]:
        return [self.share(h) for h in HORIZONS]

    @property
    def churn_rate(self) -> float | None:
        return _share(self.churned, self.with_churn_trait) if self.with_churn_trait else None


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
        """Plain words: does a higher tier keep more subjects?"""
        rows = {r.group: r for r in self.by_tier}
        high, low = rows.get("high"), rows.get("low") or rows.get("dormant")
        if self.too_thin or not self.observable.get(horizon) or not high or not low or high.thin or low.thin:
            return None
        a, b = high.share(horizon), low.share(horizon)
        if a is None or b is None:
            return None
        if a - b >= 10:
            return (f"Yes: {a}% of high-tier {self.subject} were active {horizon} days later "
                    f"against {b}% of {low.group}.")
        if a - b > 0:
            return f"Weakly: {a}% of high-tier against {b}% of {low.group} — a small difference."
        return f"No: high-tier {self.subject} ({a}%) did not stay more than {low.group} ones ({b}%)."


def default_outcome_day(tenant: Tenant, days: list[date]) -> date | None:
    """The latest scored day whose 60-day outcome is observable, else the earliest scored day."""
    return nearest_scored_day(days, tenant.today() - timedelta(days=max(HORIZONS)))


def _churn_sql(alias: str) -> tuple[str, str]:
    """(has a churn trait, churned) expressions for a customer account's traits."""
    if _pg():
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
    if _pg():
        return (f"CASE WHEN jsonb_typeof({alias}.traits -> 'mrr') = 'number' "
                f"THEN CAST({alias}.traits ->> 'mrr' AS DOUBLE PRECISION) END")
    return (f"CASE WHEN json_type({alias}.traits, '$.mrr') IN ('integer', 'real') "
            f"THEN json_extract({alias}.traits, '$.mrr') END")


@cached_insight
def outcomes(tenant: Tenant, *, day: date | None = None, subject: str = "users") -> Outcomes:
    """For the snapshots of `day`: per tier and per score decile, how many were active 30 and 60 days later.

    Accounts also get churn rate and MRR by tier when their traits carry churn or MRR.
    """
    model = published_model(tenant)
    days = scored_days(tenant, model)
    if day is None:
        day = default_outcome_day(tenant, days)
    today = tenant.today()
    result = Outcomes(subject=subject, day=day, observable={h: day is not None and day + timedelta(days=h) <= today
                                                            for h in HORIZONS})
    if day is None or model is None:
        return result
    table, column, subject_table = SUBJECTS[subject]
    windows = {h: (day + timedelta(days=h - ACTIVE_SPAN + 1), day + timedelta(days=h)) for h in HORIZONS}
    flags = ", ".join(f"CASE WHEN r.day >= %s AND r.day <= %s THEN 1 ELSE 0 END AS a{h}" for h in HORIZONS)
    zeros = ", ".join(f"0 AS a{h}" for h in HORIZONS)
    if subject == "users":
        later = f"""SELECT r.end_user_id AS s, NULL AS tier, NULL AS points, {flags} FROM events_dailyactivitycount r
            WHERE r.tenant_id = %s AND r.day >= %s AND r.day <= %s"""
    else:
        later = f"""SELECT e.account_id AS s, NULL AS tier, NULL AS points, {flags} FROM events_dailyactivitycount r
            JOIN events_enduser e ON e.id = r.end_user_id
            WHERE r.tenant_id = %s AND r.day >= %s AND r.day <= %s AND e.account_id IS NOT NULL"""
    later_params = [_d(v) for h in HORIZONS for v in windows[h]]
    later_params += [tenant.pk, _d(windows[HORIZONS[0]][0]), _d(windows[HORIZONS[-1]][1])]
    if subject == "accounts":
        has_churn, churned = _churn_sql("e")
        extra = (f", SUM(CASE WHEN {has_churn} THEN 1 ELSE 0 END), "
                 f"SUM(CASE WHEN {has_churn} AND {churned} THEN 1 ELSE 0 END), SUM({_mrr_sql('e')})")
        traits_join = f"JOIN {subject_table} e ON e.id = snap.s"
    else:
        extra, traits_join = ", NULL, NULL, NULL", ""
    sums = ", ".join(f"SUM(a{h})" for h in HORIZONS)
    maxes = ", ".join(f"MAX(a{h}) AS a{h}" for h in HORIZONS)
    # Snapshot rows and later activity rows are stacked and grouped by subject (no join between two
    # derived tables, whose row estimates the planner may get wrong by orders of magnitude).
    sql = f"""WITH u AS (
        SELECT x.{column} AS s, x.tier AS tier, x.points AS points, {zeros}
        FROM {table} x WHERE x.tenant_id = %s AND x.model_id = %s AND x.day = %s
        UNION ALL {later}
    ),
    per AS (SELECT s, MAX(tier) AS tier, MAX(points) AS points, {maxes} FROM u GROUP BY s),
    snap AS (
        SELECT s, tier, points, {", ".join(f"a{h}" for h in HORIZONS)},
               ROW_NUMBER() OVER (PARTITION BY CASE WHEN points > 0 THEN 1 ELSE 0 END ORDER BY points) AS rn,
               SUM(CASE WHEN points > 0 THEN 1 ELSE 0 END) OVER () AS n
        FROM per WHERE tier IS NOT NULL
    )
    SELECT 't', snap.tier, COUNT(*), {sums} {extra} FROM snap {traits_join} GROUP BY snap.tier
    UNION ALL
    -- Decile = ceil(10 x rank / n) among subjects with points, so the top one is always decile 10.
    SELECT 'd', CAST(CASE WHEN points > 0 THEN (rn * 10 + n - 1) / n ELSE 0 END AS TEXT), COUNT(*), {sums},
           NULL, NULL, NULL
        FROM snap GROUP BY CASE WHEN points > 0 THEN (rn * 10 + n - 1) / n ELSE 0 END"""
    params = [tenant.pk, model.pk, _d(day), *later_params]
    tiers, deciles = {}, {}
    for kind, group, n, *rest in _fetch(sql, params):
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
    result.by_tier = [tiers[t] for t in TIERS if t in tiers]
    result.by_decile = [deciles[str(d)] for d in range(10, -1, -1) if str(d) in deciles]
    for row in result.by_decile:
        row.group = f"decile {row.group}" if row.group != "0" else "no points"
    return result


# --- Dashboard: movers, risk, power users, runs ---------------------------------------------------


@dataclass
class Mover:
    subject_id: int
    public_id: Any
    name: str
    points: float
    points_before: float
    tier: str
    tier_before: str | None

    @property
    def change(self) -> float:
        return round(self.points - self.points_before, 2)

    @property
    def change_share(self) -> float | None:
        return _share(self.points - self.points_before, self.points_before) if self.points_before else None


def _user_label_sql(alias: str) -> str:
    """What people call an end user: their `name` trait, else the user id, else the anonymous id."""
    name = f"({alias}.traits ->> 'name')" if _pg() else f"CAST(json_extract({alias}.traits, '$.name') AS TEXT)"
    return f"COALESCE(NULLIF({name}, ''), {alias}.user_id, {alias}.anonymous_id)"


def _name_sql(subject: str) -> str:
    if subject == "accounts":
        return "CASE WHEN e.name <> '' THEN e.name ELSE e.group_id END"
    return _user_label_sql("e")


def movers(
    tenant: Tenant, *, subject: str = "users", day: date, days_back: int = 7, limit: int = 10,
    model: ScoringModel | None = None,
) -> dict[str, list[Mover]]:
    """The biggest risers and fallers in points between `day - days_back` and `day`."""
    model = model or published_model(tenant)
    out: dict[str, list[Mover]] = {"risers": [], "fallers": []}
    if model is None:
        return out
    table, column, subject_table = SUBJECTS[subject]
    base = f"""SELECT '{{kind}}', e.id, e.public_id, {_name_sql(subject)}, b.points, COALESCE(a.points, 0),
            b.tier, a.tier
        FROM {table} b JOIN {subject_table} e ON e.id = b.{column}
        LEFT JOIN {table} a ON a.{column} = b.{column} AND a.model_id = b.model_id AND a.day = %s
        WHERE b.tenant_id = %s AND b.model_id = %s AND b.day = %s AND b.points {{cmp}} COALESCE(a.points, 0)
        ORDER BY b.points - COALESCE(a.points, 0) {{order}}, e.id LIMIT %s"""
    params = [_d(day - timedelta(days=days_back)), tenant.pk, model.pk, _d(day), limit]
    sql = (f"SELECT * FROM ({base.format(kind='r', cmp='>', order='DESC')}) up UNION ALL "
           f"SELECT * FROM ({base.format(kind='f', cmp='<', order='ASC')}) down")
    for kind, pk, public_id, name, points, before, tier, tier_before in _fetch(sql, params * 2):
        mover = Mover(pk, _uuid(public_id), name or "", float(points), float(before), tier, tier_before)
        out["risers" if kind == "r" else "fallers"].append(mover)
    out["risers"].sort(key=lambda m: -m.change)
    out["fallers"].sort(key=lambda m: m.change)
    return out


@dataclass
class AtRisk:
    day: date | None
    compared_with: date | None
    drop_share: float
    accounts: list[Mover]
    count: int


def at_risk_accounts(
    tenant: Tenant, *, day: date | None, days_back: int = 14, limit: int = 20, model: ScoringModel | None = None
) -> AtRisk:
    """Accounts that fell a tier, or lost more than AT_RISK_DROP_SHARE of their points, over `days_back` days."""
    drop = float(getattr(settings, "AT_RISK_DROP_SHARE", 0.3))
    model = model or published_model(tenant)
    before = day - timedelta(days=days_back) if day else None
    result = AtRisk(day=day, compared_with=before, drop_share=drop, accounts=[], count=0)
    if model is None or day is None:
        return result
    rank = "CASE {col} WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 WHEN 'dormant' THEN 0 END"
    sql = f"""WITH risk AS (
        SELECT e.id AS id, e.public_id AS public_id, {_name_sql("accounts")} AS name, b.points AS points,
               a.points AS before, b.tier AS tier, a.tier AS tier_before
        FROM scoring_accountscore b JOIN events_customeraccount e ON e.id = b.account_id
        JOIN scoring_accountscore a ON a.account_id = b.account_id AND a.model_id = b.model_id AND a.day = %s
        WHERE b.tenant_id = %s AND b.model_id = %s AND b.day = %s AND (
            ({rank.format(col="b.tier")}) < ({rank.format(col="a.tier")})
            OR (a.points > 0 AND b.points < a.points * (1 - %s)))
    )
    SELECT id, public_id, name, points, before, tier, tier_before, (SELECT COUNT(*) FROM risk)
    FROM risk ORDER BY (before - points) / CASE WHEN before > 0 THEN before ELSE 1 END DESC, before DESC, id
    LIMIT %s"""
    rows = _fetch(sql, [_d(before), tenant.pk, model.pk, _d(day), drop, limit])
    result.accounts = [
        Mover(pk, _uuid(pid), name or "", float(p), float(b), t, tb) for pk, pid, name, p, b, t, tb, _ in rows
    ]
    result.count = int(rows[0][-1]) if rows else 0
    return result


@dataclass
class PowerUsers:
    users: list[dict]
    count: int
    threshold: float | None


def power_users(tenant: Tenant, *, day: date | None, limit: int = 25, model: ScoringModel | None = None) -> PowerUsers:
    """The top 1% of end users by points on `day` (percentile above 99)."""
    model = model or published_model(tenant)
    if model is None or day is None:
        return PowerUsers([], 0, None)
    sql = f"""WITH top AS (
        SELECT x.end_user_id AS id, x.points AS points, x.breadth AS breadth, x.active_days AS active_days,
               x.percentile AS percentile
        FROM scoring_userscore x WHERE x.tenant_id = %s AND x.model_id = %s AND x.day = %s
          AND x.points > 0 AND x.percentile > 99
    )
    SELECT e.public_id, {_user_label_sql("e")}, top.points, top.breadth, top.active_days,
           top.percentile, a.public_id, a.name, a.group_id, (SELECT COUNT(*) FROM top), (SELECT MIN(points) FROM top)
    FROM top JOIN events_enduser e ON e.id = top.id LEFT JOIN events_customeraccount a ON a.id = e.account_id
    ORDER BY top.points DESC, top.id LIMIT %s"""
    rows = _fetch(sql, [tenant.pk, model.pk, _d(day), limit])
    users = [
        {"public_id": _uuid(pid), "name": name, "points": p, "breadth": br, "active_days": ad, "percentile": pc,
         "account_id": _uuid(aid), "account": an or ag}
        for pid, name, p, br, ad, pc, aid, an, ag, _c, _m in rows
    ]
    return PowerUsers(users, int(rows[0][-2]) if rows else 0, float(rows[0][-1]) if rows else None)


def last_run(tenant: Tenant) -> ScoringRun | None:
    return ScoringRun.objects.for_tenant(tenant).select_related("model").order_by("-created_at").first()


def tier_change(latest: ProductScore | None, earlier: ProductScore | None) -> list[dict]:
    """Tier counts on the latest day next to 30 days earlier, from the product rows (no extra query)."""
    fields = {"high": "high_users", "medium": "medium_users", "low": "low_users", "new": "new_users",
              "dormant": "dormant_users"}
    out = []
    for tier, name in fields.items():
        now = getattr(latest, name) if latest else 0
        then = getattr(earlier, name) if earlier else None
        out.append({"tier": tier, "label": Tier(tier).label, "now": now, "then": then,
                    "change": None if then is None else now - then})
    return out
