# ruff: noqa: S608 -- SQL text is built only from constants and vetted identifiers; values are parameters.
"""What the insight queries share: subjects, tier names, thresholds, period buckets and scored days.

Conventions (written out in docs/insights.md):
- "active" in a period: at least one rollup row (any tracked activity) in it;
- "engaged": tier high or medium in the published version's snapshot of the
  last scored day of the period;
- an account is active when one of its end users (by their current account) is.
"""

from __future__ import annotations

from datetime import date, timedelta

from accounts.models import Tenant
from core.sql import is_postgresql
from scoring.models import ProductScore, ScoringModel
from scoring.selectors import TIER_ORDER

TIERS = [t.value for t in TIER_ORDER]
ENGAGED = ("high", "medium")
# Fewer subjects than this in a group and its shares say nothing.
THIN = 30
WEEK_EPOCH = date(2000, 1, 3)  # a Monday: week buckets start on Mondays

SUBJECTS = {
    # subject: (snapshot table, subject column, subject table)
    "users": ("scoring_userscore", "end_user_id", "events_enduser"),
    "accounts": ("scoring_accountscore", "account_id", "events_customeraccount"),
}


def percent(part: int | None, whole: int | None) -> float | None:
    return round(100.0 * (part or 0) / whole, 1) if whole else None


# --- Periods --------------------------------------------------------------------------------


def period_sql(column: str, period: str) -> str:
    """An integer bucket of a date column: weeks since WEEK_EPOCH, or year * 12 + month - 1."""
    if period == "week":
        if is_postgresql():
            return f"(({column} - DATE '{WEEK_EPOCH.isoformat()}') / 7)"
        return f"(CAST(julianday({column}) - julianday('{WEEK_EPOCH.isoformat()}') AS INTEGER) / 7)"
    if is_postgresql():
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
