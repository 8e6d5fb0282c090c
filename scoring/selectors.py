"""Reads shared by the scoring pages, the read API and later the dashboard.

Latest snapshots are those of the published version on its latest computed
day; history series take, for every day, the row of the newest version that
scored that day (so a chart shows where the version changed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, IntegerField, Max, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Cast, Floor, Least

from accounts.models import Tenant
from events.models import CustomerAccount, DailyActivityCount, EndUser

from . import engine
from .models import (
    AccountScore,
    ModelStatus,
    ProductScore,
    RunStatus,
    ScoringModel,
    ScoringRun,
    Tier,
    UserScore,
)

HISTORY_DAYS = 90
TIER_ORDER = [Tier.HIGH, Tier.MEDIUM, Tier.LOW, Tier.NEW, Tier.DORMANT]
USER_ORDERS = {
    "points": "points",
    "-points": "-points",
    "percentile": "percentile",
    "-percentile": "-percentile",
    "breadth": "breadth",
    "-breadth": "-breadth",
    "active_days": "active_days",
    "-active_days": "-active_days",
}
ACCOUNT_ORDERS = {
    "points": "points",
    "-points": "-points",
    "percentile": "percentile",
    "-percentile": "-percentile",
    "active_users": "active_users",
    "-active_users": "-active_users",
}


# --- Models and runs -------------------------------------------------------------------


def published_model(tenant: Tenant) -> ScoringModel | None:
    return ScoringModel.objects.for_tenant(tenant).filter(status=ModelStatus.PUBLISHED).first()


def model_versions(tenant: Tenant) -> QuerySet[ScoringModel]:
    return ScoringModel.objects.for_tenant(tenant).annotate(weight_count=Count("weights")).order_by("-version")


def model_weights(model: ScoringModel) -> list[dict[str, Any]]:
    """Every catalog activity with its points in `model` (0 when absent), for the editor."""
    from events.models import Activity

    points = dict(model.weights.values_list("activity_id", "points"))
    return [
        {"activity": a, "points": points.get(a.pk, 0)}
        for a in Activity.objects.for_tenant(model.tenant).order_by("name")
    ]


def runs_of(tenant: Tenant, limit: int = 50) -> list[ScoringRun]:
    return list(ScoringRun.objects.for_tenant(tenant).select_related("model", "requested_by")[:limit])


def run_as_dict(run: ScoringRun) -> dict[str, Any]:
    return {
        "id": str(run.public_id),
        "status": run.status,
        "kind": run.kind,
        "version": run.model.version,
        "first_day": run.first_day.isoformat(),
        "last_day": run.last_day.isoformat(),
        "days_total": run.days_total,
        "days_done": run.days_done,
        "progress": run.progress,
        "rows_written": run.rows_written,
        "duration_seconds": round(run.duration.total_seconds(), 1) if run.duration else None,
        "error": run.error,
        "active": run.is_active,
    }


def has_active_runs(tenant: Tenant) -> bool:
    return ScoringRun.objects.for_tenant(tenant).filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists()


# --- Latest snapshots --------------------------------------------------------------------


def latest_day(tenant: Tenant, model: ScoringModel | None) -> date | None:
    if model is None:
        return None
    return ProductScore.objects.for_tenant(tenant).filter(model=model).aggregate(d=Max("day"))["d"]


def user_snapshots(
    tenant: Tenant,
    *,
    model: ScoringModel | None = None,
    day: date | None = None,
    tier: str | None = None,
    account: CustomerAccount | None = None,
    order: str = "-points",
) -> QuerySet[UserScore]:
    """The published version's user snapshots of its latest day (or `day`), filtered and ordered."""
    model = model or published_model(tenant)
    day = day or latest_day(tenant, model)
    if model is None or day is None:
        return UserScore.objects.none()
    rows = UserScore.objects.for_tenant(tenant).filter(model=model, day=day)
    if tier:
        rows = rows.filter(tier=tier)
    if account is not None:
        rows = rows.filter(end_user__account=account)
    return rows.select_related("end_user", "end_user__account", "model").order_by(USER_ORDERS[order], "end_user_id")


def account_snapshots(
    tenant: Tenant,
    *,
    model: ScoringModel | None = None,
    day: date | None = None,
    tier: str | None = None,
    order: str = "-points",
) -> QuerySet[AccountScore]:
    model = model or published_model(tenant)
    day = day or latest_day(tenant, model)
    if model is None or day is None:
        return AccountScore.objects.none()
    rows = AccountScore.objects.for_tenant(tenant).filter(model=model, day=day)
    if tier:
        rows = rows.filter(tier=tier)
    return rows.select_related("account", "model").order_by(ACCOUNT_ORDERS[order], "account_id")


def tier_counts(rows: QuerySet) -> dict[str, int]:
    counts = dict(rows.order_by().values_list("tier").annotate(n=Count("id")))
    return {tier.value: counts.get(tier.value, 0) for tier in TIER_ORDER}


# --- History series ------------------------------------------------------------------------


def _newest_version_per_day(rows) -> list:
    """Keep, for each day, the row of the newest model version (rows ordered by day, -version)."""
    series, seen = [], set()
    for row in rows:
        if row.day not in seen:
            seen.add(row.day)
            series.append(row)
    return series


def _since(tenant: Tenant, days: int) -> date:
    return tenant.today() - timedelta(days=days - 1)


def product_series(tenant: Tenant, days: int = HISTORY_DAYS) -> list[ProductScore]:
    rows = (
        ProductScore.objects.for_tenant(tenant)
        .filter(day__gte=_since(tenant, days))
        .select_related("model")
        .order_by("day", "-model__version")
    )
    return _newest_version_per_day(rows)


def user_history(tenant: Tenant, end_user: EndUser, days: int = HISTORY_DAYS) -> list[UserScore]:
    rows = (
        UserScore.objects.for_tenant(tenant)
        .filter(end_user=end_user, day__gte=_since(tenant, days))
        .select_related("model")
        .order_by("day", "-model__version")
    )
    return _newest_version_per_day(rows)


def account_history(tenant: Tenant, account: CustomerAccount, days: int = HISTORY_DAYS) -> list[AccountScore]:
    rows = (
        AccountScore.objects.for_tenant(tenant)
        .filter(account=account, day__gte=_since(tenant, days))
        .select_related("model")
        .order_by("day", "-model__version")
    )
    return _newest_version_per_day(rows)


def version_changes(series: list) -> list[tuple[date, int]]:
    """(day, version) where the version differs from the day before: the marks on charts."""
    marks, previous = [], None
    for row in series:
        if row.model.version != previous:
            marks.append((row.day, row.model.version))
            previous = row.model.version
    return marks


def latest_user_snapshot(tenant: Tenant, end_user: EndUser) -> UserScore | None:
    model = published_model(tenant)
    if model is None:
        return None
    return (
        UserScore.objects.for_tenant(tenant)
        .filter(model=model, end_user=end_user)
        .select_related("model")
        .order_by("-day")
        .first()
    )


def latest_account_snapshot(tenant: Tenant, account: CustomerAccount) -> AccountScore | None:
    model = published_model(tenant)
    if model is None:
        return None
    return (
        AccountScore.objects.for_tenant(tenant)
        .filter(model=model, account=account)
        .select_related("model")
        .order_by("-day")
        .first()
    )


# --- Explain ------------------------------------------------------------------------------------


@dataclass
class ActivityExplanation:
    activity: str
    weight: int
    times: int
    points: float
    times_before: int
    points_before: float

    @property
    def change(self) -> float:
        return round(self.points - self.points_before, 4)


@dataclass
class Explanation:
    day: date
    compared_with: date
    model: ScoringModel
    activities: list[ActivityExplanation] = field(default_factory=list)

    @property
    def points(self) -> float:
        return round(sum(a.points for a in self.activities), 4)

    @property
    def points_before(self) -> float:
        return round(sum(a.points_before for a in self.activities), 4)

    @property
    def change(self) -> float:
        return round(self.points - self.points_before, 4)

    @property
    def movers(self) -> list[ActivityExplanation]:
        """Activities whose points changed, biggest change first: what moved the score."""
        return sorted((a for a in self.activities if a.change), key=lambda a: -abs(a.change))


def _points_per_activity(model, day: date, subject_sql: str, subject_params: list, weights: list) -> dict:
    ctes, params = engine.contrib_ctes(model, day, subject_sql, subject_params, weights=weights)
    sql = f"""WITH {", ".join(ctes)}
    SELECT c.activity_id, SUM(c.times), ROUND(CAST(SUM(c.pts) AS NUMERIC), 4)
    FROM contrib c GROUP BY c.activity_id"""  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {activity_id: (int(times), float(points)) for activity_id, times, points in cursor.fetchall()}


def _explain(model: ScoringModel, day: date, subject_sql: str, subject_params: list, days_back: int) -> Explanation:
    before_day = day - timedelta(days=days_back)
    weights = {w.activity_id: w for w in model.weights.select_related("activity").filter(points__gt=0)}
    pairs = sorted((activity_id, w.points) for activity_id, w in weights.items())
    now = _points_per_activity(model, day, subject_sql, subject_params, pairs)
    before = _points_per_activity(model, before_day, subject_sql, subject_params, pairs)
    explanation = Explanation(day=day, compared_with=before_day, model=model)
    for activity_id, weight in weights.items():
        times, points = now.get(activity_id, (0, 0.0))
        times_before, points_before = before.get(activity_id, (0, 0.0))
        explanation.activities.append(
            ActivityExplanation(str(weight.activity), weight.points, times, points, times_before, points_before)
        )
    explanation.activities.sort(key=lambda a: (-a.points, a.activity))
    return explanation


def explain_user(
    tenant: Tenant, end_user: EndUser, *, model: ScoringModel | None = None, day: date | None = None, days_back=7
) -> Explanation | None:
    """Points per activity in the window on `day`, and the change per activity against `days_back` earlier."""
    model = model or published_model(tenant)
    if model is None:
        return None
    day = day or latest_day(tenant, model) or tenant.today()
    return _explain(model, day, "AND r.end_user_id = %s", [end_user.pk], days_back)


def explain_account(
    tenant: Tenant,
    account: CustomerAccount,
    *,
    model: ScoringModel | None = None,
    day: date | None = None,
    days_back=7,
) -> Explanation | None:
    """The same for an account: its users' points per activity, summed."""
    model = model or published_model(tenant)
    if model is None:
        return None
    day = day or latest_day(tenant, model) or tenant.today()
    subject = "AND r.end_user_id IN (SELECT id FROM events_enduser WHERE tenant_id = %s AND account_id = %s)"
    return _explain(model, day, subject, [tenant.pk, account.pk], days_back)


# --- Preview of a draft ------------------------------------------------------------------------


class _Discard(Exception):
    """Raised to roll back the preview's scratch rows."""


@dataclass
class Preview:
    day: date
    model: ScoringModel
    published: ScoringModel | None
    product: dict
    tiers: dict[str, int]
    published_tiers: dict[str, int] | None
    distribution: list[dict]
    top: list[dict]
    changes: list[dict]
    change_count: int


def preview_day(tenant: Tenant) -> date:
    """The latest day with activity (up to today): preview scores real data, not an empty today."""
    today = tenant.today()
    latest = DailyActivityCount.objects.for_tenant(tenant).filter(day__lte=today).aggregate(d=Max("day"))["d"]
    return latest or today


def _distribution(rows: QuerySet, buckets: int = 10) -> list[dict]:
    scored = rows.filter(points__gt=0)
    top = scored.aggregate(m=Max("points"))["m"]
    if not top:
        return []
    width = top / buckets
    counts = dict(
        scored.order_by()
        .annotate(bucket=Least(Cast(Floor(F("points") / width), IntegerField()), Value(buckets - 1)))
        .values_list("bucket")
        .annotate(n=Count("id"))
    )
    return [
        {"low": round(i * width, 1), "high": round((i + 1) * width, 1), "users": counts.get(i, 0)}
        for i in range(buckets)
    ]


def preview_draft(model: ScoringModel) -> Preview:
    """Score the latest day under `model` without keeping anything.

    The engine writes its rows inside a transaction that is always rolled back,
    so the preview uses exactly the published formulas and costs one day.
    """
    tenant = model.tenant
    day = preview_day(tenant)
    published = published_model(tenant)
    result: Preview | None = None
    try:
        with transaction.atomic():
            engine.compute_day(model, day)
            if published is not None and published.pk != model.pk:
                # Compare with what the published version shows for that day; score it
                # here only when no run has yet.
                if not ProductScore.objects.for_tenant(tenant).filter(model=published, day=day).exists():
                    engine.compute_day(published, day)
            rows = UserScore.objects.for_tenant(tenant).filter(model=model, day=day)
            product = ProductScore.objects.for_tenant(tenant).get(model=model, day=day)
            top = [
                {"user": r.end_user, "points": r.points, "breadth": r.breadth, "tier": r.tier}
                for r in rows.filter(points__gt=0).select_related("end_user").order_by("-points", "end_user_id")[:20]
            ]
            changes_qs, change_count, published_tiers = [], 0, None
            if published is not None and published.pk != model.pk:
                old = UserScore.objects.for_tenant(tenant).filter(
                    model=published, day=day, end_user=OuterRef("end_user")
                )
                changed = rows.annotate(
                    old_tier=Subquery(old.values("tier")[:1]), old_points=Subquery(old.values("points")[:1])
                ).exclude(old_tier=F("tier"))
                change_count = changed.count()
                changes_qs = [
                    {
                        "user": r.end_user,
                        "old_tier": r.old_tier,
                        "tier": r.tier,
                        "old_points": r.old_points,
                        "points": r.points,
                    }
                    for r in changed.select_related("end_user").order_by("-points", "end_user_id")[:50]
                ]
                published_tiers = tier_counts(UserScore.objects.for_tenant(tenant).filter(model=published, day=day))
            result = Preview(
                day=day,
                model=model,
                published=published if published and published.pk != model.pk else None,
                product={
                    "total_points": product.total_points,
                    "mean_points": product.mean_points,
                    "median_points": product.median_points,
                    "active_users": product.active_users,
                    "engaged_users": product.engaged_users,
                },
                tiers=tier_counts(rows),
                published_tiers=published_tiers,
                distribution=_distribution(rows),
                top=top,
                changes=changes_qs,
                change_count=change_count,
            )
            raise _Discard
    except _Discard:
        pass
    assert result is not None
    return result
