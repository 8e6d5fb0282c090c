# ruff: noqa: S608 -- SQL text is built only from constants and vetted identifiers; values are parameters.
"""Segments: the score distribution per trait value or signup cohort on the latest scored day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Max

from accounts.models import Tenant
from accounts.scoping import tenant_sql
from core.sql import TRAIT_KEY, fetch_all, is_postgresql, sql_date, trait_sql
from scoring.models import ProductScore
from scoring.selectors import published_model

from .cache import cached_insight
from .common import SUBJECTS, THIN, TIERS, percent

COHORT = "cohort"
MAX_SEGMENTS = 12


def cohort_sql(alias: str) -> str:
    if is_postgresql():
        return f"to_char({alias}.first_seen_at AT TIME ZONE 'UTC', 'YYYY-MM')"
    return f"strftime('%%Y-%%m', {alias}.first_seen_at)"


def trait_keys(tenant: Tenant, subject: str = "users", sample: int = 2000) -> list[str]:
    """Top-level trait names found on a recent sample of end users or accounts."""
    _, _, subject_table = SUBJECTS[subject]
    scope, params = tenant_sql(tenant)
    if is_postgresql():
        sql = f"""SELECT DISTINCT k FROM (SELECT traits FROM {subject_table} WHERE {scope}
            AND jsonb_typeof(traits) = 'object' ORDER BY id DESC LIMIT %s) t, jsonb_object_keys(t.traits) k"""
    else:
        sql = f"""SELECT DISTINCT j.key FROM (SELECT traits FROM {subject_table} WHERE {scope}
            AND json_type(traits) = 'object' ORDER BY id DESC LIMIT %s) t, json_each(t.traits) j"""
    keys = sorted(k for (k,) in fetch_all(sql, [*params, sample]) if k and TRAIT_KEY.match(k))
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
    scope, scope_params = tenant_sql(tenant, "x")
    # One pass: ranks among each segment's subjects with points, then one GROUP BY (no join, so a
    # trait with a value per subject stays linear).
    sql = f"""WITH s AS (
        SELECT COALESCE({seg_sql}, '(none)') AS seg, x.points AS points, x.tier AS tier
        FROM {table} x JOIN {subject_table} e ON e.id = x.{column}
        WHERE {scope} AND x.model_id = %s AND x.day = %s
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
    rows = fetch_all(sql, [*seg_params, *scope_params, model.pk, sql_date(day), MAX_SEGMENTS + 1])
    result.more = len(rows) > MAX_SEGMENTS
    for row in rows[:MAX_SEGMENTS]:
        seg, subjects, tier_counts = row[0], int(row[1]), [int(v) for v in row[2 : 2 + len(TIERS)]]
        scored_n, mn, q1, median, q3, mx, mean = row[2 + len(TIERS) :]

        def num(value):
            return None if value is None else round(float(value), 2)

        result.segments.append(Segment(
            value=str(seg), subjects=subjects, scored=int(scored_n or 0), minimum=num(mn), q1=num(q1),
            median=num(median), q3=num(q3), maximum=num(mx), mean=num(mean),
            tiers={t: percent(n, subjects) for t, n in zip(TIERS, tier_counts, strict=True)},
        ))
    return result
