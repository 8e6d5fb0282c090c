"""Reads shared by the scoring pages, the read API and later the dashboard.

Latest snapshots are those of the published version on its latest computed
day; history series take, for every day, the row of the newest version that
scored that day (so a chart shows where the version changed).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, IntegerField, Max, OuterRef, QuerySet, Subquery, Value
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast, Coalesce, Floor, Least

from accounts.models import Tenant
from accounts.scoping import tenant_sql
from core.sql import as_uuid
from events.models import CustomerAccount, DailyActivityCount, EndUser

from . import engine, filters
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
# The ladder for "fell a tier": "new" is outside it (no history to fall from).
TIER_RANK = {Tier.HIGH.value: 3, Tier.MEDIUM.value: 2, Tier.LOW.value: 1, Tier.DORMANT.value: 0}
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




def tier_rank_sql(column: str) -> str:
    """TIER_RANK as a SQL CASE on a tier column (NULL for "new")."""
    whens = " ".join(f"WHEN '{tier}' THEN {rank}" for tier, rank in TIER_RANK.items())
    return f"CASE {column} {whens} END"


# --- Subjects by their tracking id ----------------------------------------------------


def _storable_id(value: str) -> bool:
    # What ingestion can have stored (events.wire): at most 255 characters, no NUL.
    # Anything else cannot exist, and a NUL would make PostgreSQL refuse the query.
    return 0 < len(value) <= 255 and "\x00" not in value


def end_user_by_user_id(tenant: Tenant, user_id: str) -> EndUser | None:
    """The end user with this userId, exactly as sent to the tracking API, or None."""
    if not _storable_id(user_id):
        return None
    return EndUser.objects.for_tenant(tenant).filter(user_id=user_id).select_related("account").first()


def account_by_group_id(tenant: Tenant, group_id: str) -> CustomerAccount | None:
    """The customer account with this groupId, exactly as sent to the tracking API, or None."""
    if not _storable_id(group_id):
        return None
    return CustomerAccount.objects.for_tenant(tenant).filter(group_id=group_id).first()


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
        # A test-only activity (docs/ingestion.md) is offered once it has points or is kept.
        for a in Activity.objects.for_tenant(model.tenant).order_by("name")
        if not a.test_only or a.pk in points
    ]


def runs_of(tenant: Tenant, limit: int = 50) -> list[ScoringRun]:
    runs = list(ScoringRun.objects.for_tenant(tenant).select_related("model", "requested_by")[:limit])
    for run in runs:
        run.stall_note = stall_note(run)
    return runs


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
        "stalled": run.is_stalled,
        "stall_note": stall_note(run),
    }


def stall_note(run: ScoringRun) -> str:
    """What the runs page says about a stalled run (empty when it is not)."""
    if not run.is_stalled:
        return ""
    minutes = f"{settings.SCORING_STALL_MINUTES:g}"
    return (
        f"Stalled: no day finished for over {minutes} min, its worker probably stopped. "
        f"The missing days are re-enqueued automatically (resumed {run.resumes} of "
        f"{settings.SCORING_STALL_MAX_RESUMES} times so far)."
    )


def has_active_runs(tenant: Tenant) -> bool:
    return ScoringRun.objects.for_tenant(tenant).filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists()


# --- Latest snapshots --------------------------------------------------------------------


def latest_day(tenant: Tenant, model: ScoringModel | None) -> date | None:
    if model is None:
        return None
    return ProductScore.objects.for_tenant(tenant).filter(model=model).aggregate(d=Max("day"))["d"]


def tier_counts(rows: QuerySet) -> dict[str, int]:
    counts = dict(rows.order_by().values_list("tier").annotate(n=Count("id")))
    return {tier.value: counts.get(tier.value, 0) for tier in TIER_ORDER}


# --- Lists of end users and accounts -----------------------------------------------------------
#
# The users and accounts pages (their CSV, the account page's members) read one day's snapshots: the
# engine stores the change over 7 and 30 days and the last day seen with each snapshot, so a list is
# one ORM queryset filtered and sorted by the list's FilterSet (scoring.filters), paged by Django's
# Paginator: one COUNT and one page query.

LIST_SORTS, USER_LIST_SORTS, ACCOUNT_LIST_SORTS = (
    filters.LIST_SORTS, filters.USER_LIST_SORTS, filters.ACCOUNT_LIST_SORTS
)


@dataclass(frozen=True)
class ListDays:
    """The list's day and the scored days its changes compare with (None: not scored that far back)."""

    day: date | None
    day_7: date | None = None
    day_30: date | None = None
    users: int | None = None  # end users scored on `day` (the product row's tier counts)


def list_days(tenant: Tenant, model: ScoringModel | None) -> ListDays:
    """The model's latest scored day and the latest scored days on or before 7 and 30 days earlier."""
    if model is None:
        return ListDays(None)
    rows = list(
        ProductScore.objects.for_tenant(tenant)
        .filter(model=model)
        .order_by("-day")
        .values_list("day", F("high_users") + F("medium_users") + F("low_users") + F("new_users") + F("dormant_users"))[
            :400
        ]
    )
    if not rows:
        return ListDays(None)
    days = [day for day, _ in rows]

    def on_or_before(wanted: date) -> date | None:
        return next((d for d in days if d <= wanted), None)

    latest = days[0]
    return ListDays(
        latest, on_or_before(latest - timedelta(days=7)), on_or_before(latest - timedelta(days=30)), users=rows[0][1]
    )


@dataclass(frozen=True)
class ListFilter:
    """A list's filters given in code (the pages pass their query string): the FilterSet's fields."""

    tier: str | None = None
    plan: str | None = None
    trait: tuple[str, str] | None = None
    search: str | None = None
    account: CustomerAccount | None = None  # users only: members of this account
    falling: bool = False

    def data(self) -> dict[str, str]:
        data = {"tier": self.tier or "", "plan": self.plan or "", "q": self.search or ""}
        if self.falling:
            data["falling"] = "on"
        if self.trait:
            data |= {"trait": self.trait[0], "trait_value": self.trait[1]}
        if self.account is not None:
            data["account"] = self.account.group_id
        return data


@dataclass
class ListRow:
    public_id: uuid.UUID
    points: float
    percentile: float | None
    tier: str
    last_seen: date | None
    change_7: float | None = None
    change_30: float | None = None
    trend_points: float | None = None  # the points `model.trend_days` earlier
    falling: bool = False


@dataclass
class UserRow(ListRow):
    user_id: str | None = None
    anonymous_id: str | None = None
    name: str | None = None
    email: str | None = None
    plan: str | None = None
    breadth: int = 0
    active_days: int = 0
    account_public_id: uuid.UUID | None = None
    account_group_id: str | None = None
    account_name: str | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.email or self.user_id or f"anonymous {self.anonymous_id}"

    @property
    def account_label(self) -> str:
        return self.account_name or self.account_group_id or ""


@dataclass
class AccountRow(ListRow):
    group_id: str = ""
    name: str = ""
    plan: str | None = None
    active_users: int = 0
    seats: int = 0
    owner_id: int | None = None
    renewal_date: date | None = None

    @property
    def label(self) -> str:
        return self.name or self.group_id


def _as_date(value) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


# (row attribute, queryset value) of each list's rows; a Trait is annotated first.
_SNAPSHOT_COLUMNS = {
    name: name for name in ("points", "percentile", "tier", "last_seen", "change_7", "change_30", "trend_points",
                            "falling")
}
USER_COLUMNS = {
    "public_id": "end_user__public_id",
    **_SNAPSHOT_COLUMNS,
    "user_id": "end_user__user_id",
    "anonymous_id": "end_user__anonymous_id",
    "name": filters.Trait("end_user__traits", "name"),
    "email": filters.Trait("end_user__traits", "email"),
    "plan": Coalesce(filters.Trait("end_user__traits", "plan"), filters.Trait("end_user__account__traits", "plan")),
    "breadth": "breadth",
    "active_days": "active_days",
    "account_public_id": "end_user__account__public_id",
    "account_group_id": "end_user__account__group_id",
    "account_name": "end_user__account__name",
}
ACCOUNT_COLUMNS = {
    "public_id": "account__public_id",
    **_SNAPSHOT_COLUMNS,
    "group_id": "account__group_id",
    "name": "account__name",
    "plan": filters.Trait("account__traits", "plan"),
    "active_users": "active_users",
    "seats": "seats",
    "owner_id": "account__owner_id",
    "renewal_date": "account__renewal_date",
}


class SnapshotList:
    """One day's snapshots filtered and sorted by the list's FilterSet, read like a sequence of rows:
    what `Paginator` pages (`count()` is one COUNT, a slice one page query) and the CSV iterates."""

    row_class: type[ListRow] = ListRow
    columns: dict[str, Any] = {}

    def __init__(self, filterset, model: ScoringModel | None, days: ListDays):
        self.filterset, self.model, self.days = filterset, model, days
        self.form = filterset.form
        self.valid = filterset.is_valid()

    @property
    def rows(self) -> QuerySet:
        """The filtered, sorted queryset (none when the filters are not valid)."""
        return self.filterset.qs if self.valid else self.filterset.queryset.none()

    def _values(self, rows: QuerySet) -> QuerySet:
        values = {f"_{name}": c for name, c in self.columns.items() if not isinstance(c, str)}
        fields = [c if isinstance(c, str) else f"_{name}" for name, c in self.columns.items()]
        return rows.annotate(**values).values_list(*fields)

    def _row(self, values) -> ListRow:
        row = self.row_class(**dict(zip(self.columns, values, strict=True)))
        row.public_id = as_uuid(row.public_id)
        row.last_seen = _as_date(row.last_seen)
        if getattr(row, "renewal_date", None) is not None:
            row.renewal_date = _as_date(row.renewal_date)
        if getattr(row, "account_public_id", None) is not None:
            row.account_public_id = as_uuid(row.account_public_id)
        # Nothing scored that far back: the change is unknown, whatever the row holds.
        if self.days.day_7 is None:
            row.change_7 = None
        if self.days.day_30 is None:
            row.change_30 = None
        return row

    def count(self) -> int:
        return self.rows.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("Snapshot lists take slices.")
        return [self._row(v) for v in self._values(self.rows)[key]]

    def __iter__(self):
        """Every row in order, through a server-side cursor on PostgreSQL (the CSV export)."""
        for values in self._values(self.rows).iterator(chunk_size=2000):
            yield self._row(values)


class UserList(SnapshotList):
    row_class, columns = UserRow, USER_COLUMNS


class AccountList(SnapshotList):
    row_class, columns = AccountRow, ACCOUNT_COLUMNS


def _day_rows(model_cls, tenant: Tenant, model: ScoringModel | None, days: ListDays) -> QuerySet:
    if model is None or days.day is None:
        return model_cls.objects.none()
    return model_cls.objects.for_tenant(tenant).filter(model=model, day=days.day)


def _data(where: ListFilter | None, data, order: str | None):
    if data is None:
        data = (where or ListFilter()).data()
    if order is not None:
        data = data.copy()
        data["order"] = order
    return data


def user_list(
    tenant: Tenant,
    *,
    model: ScoringModel | None = None,
    days: ListDays | None = None,
    where: ListFilter | None = None,
    data=None,
    order: str | None = None,
    end_user: EndUser | None = None,
) -> UserList:
    """The published version's end users on its latest scored day, filtered and sorted by
    `filters.UserListFilter` over `data` (a page's query string) or `where`; `end_user`: that one's row."""
    model = model or published_model(tenant)
    days = days or list_days(tenant, model)
    rows = _day_rows(UserScore, tenant, model, days)
    if end_user is not None:
        rows = rows.filter(end_user=end_user)
    filterset = filters.UserListFilter(_data(where, data, order), rows, tenant=tenant, days=days)
    return UserList(filterset, model, days)


def user_row(
    tenant: Tenant, end_user: EndUser, *, model: ScoringModel | None = None, days: ListDays | None = None
) -> UserRow | None:
    """The end user's row of the users list (changes, last seen), or None when not scored that day."""
    rows = user_list(tenant, model=model, days=days, end_user=end_user)[0:1]
    return rows[0] if rows else None


def account_list(
    tenant: Tenant,
    *,
    model: ScoringModel | None = None,
    days: ListDays | None = None,
    where: ListFilter | None = None,
    data=None,
    order: str | None = None,
) -> AccountList:
    model = model or published_model(tenant)
    days = days or list_days(tenant, model)
    rows = _day_rows(AccountScore, tenant, model, days)
    filterset = filters.AccountListFilter(_data(where, data, order), rows, tenant=tenant, days=days)
    return AccountList(filterset, model, days)


# --- Detail pages: traits, seats, recent events -------------------------------------------------

RECENT_EVENTS = 50


def traits_of(subject: EndUser | CustomerAccount) -> list[tuple[str, str]]:
    """Top-level traits as (name, text) sorted by name; nested values as compact JSON."""
    traits = subject.traits if isinstance(subject.traits, dict) else {}
    return [
        (str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, separators=(",", ":")))
        for k, v in sorted(traits.items())
    ]


@dataclass(frozen=True)
class SeatEngagement:
    seats: int
    active: int
    engaged: int
    tiers: dict[str, int]

    @property
    def active_share(self) -> float | None:
        return round(100.0 * self.active / self.seats, 1) if self.seats else None

    @property
    def engaged_share(self) -> float | None:
        return round(100.0 * self.engaged / self.seats, 1) if self.seats else None


def seat_engagement(tenant: Tenant, snapshot: AccountScore) -> SeatEngagement:
    """The account's users by tier on its snapshot's day: engaged = tier high or medium, of its seats."""
    tiers = tier_counts(
        UserScore.objects.for_tenant(tenant).filter(
            model=snapshot.model_id, day=snapshot.day, end_user__account=snapshot.account_id
        )
    )
    return SeatEngagement(
        seats=snapshot.seats,
        active=snapshot.active_users,
        engaged=tiers[Tier.HIGH] + tiers[Tier.MEDIUM],
        tiers=tiers,
    )


@dataclass(frozen=True)
class TimelineEvent:
    time: datetime
    type: str
    activity: str
    summary: str
    end_user: EndUser | None = None


def _summary(properties: Any, limit: int = 160) -> str:
    """`name: value · ...` of an event's properties by name, cut to `limit` characters."""
    if not isinstance(properties, dict) or not properties:
        return ""
    parts = []
    for key, value in sorted(properties.items()):  # PostgreSQL's jsonb keeps no key order: sort for all
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        parts.append(f"{key}: {text[:40] + '…' if len(text) > 40 else text}")
    summary = " · ".join(parts)
    return summary[: limit - 1] + "…" if len(summary) > limit else summary


def recent_events(
    tenant: Tenant,
    *,
    end_user: EndUser | None = None,
    account: CustomerAccount | None = None,
    limit: int = RECENT_EVENTS,
) -> list[TimelineEvent]:
    """The latest events of an end user, or of an account's end users, newest first, in the tenant's time zone.

    Only the payload's properties are read (a KeyTransform), not the whole message.
    """
    from events.models import Event

    rows = Event.objects.for_tenant(tenant)
    if end_user is not None:
        rows = rows.filter(end_user=end_user)
    elif account is not None:
        rows = rows.filter(end_user__account=account).select_related("end_user")
    else:
        raise ValueError("recent_events needs an end user or an account.")
    rows = (
        rows.select_related("activity")
        .annotate(properties=KeyTransform("properties", "payload"), page_name=KeyTransform("name", "payload"))
        .only("timestamp", "type", "activity", "end_user")
        .order_by("-timestamp")[:limit]
    )
    zone = tenant.tzinfo
    return [
        TimelineEvent(
            time=e.timestamp.astimezone(zone),
            type=e.type,
            activity=str(e.activity) if e.activity else " ".join(filter(None, [e.type, e.page_name or ""])),
            summary=_summary(e.properties),
            end_user=e.end_user if account is not None else None,
        )
        for e in rows
    ]


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


def latest_user_snapshot(tenant: Tenant, end_user: EndUser, *, model: ScoringModel | None = None) -> UserScore | None:
    model = model or published_model(tenant)
    if model is None:
        return None
    return (
        UserScore.objects.for_tenant(tenant)
        .filter(model=model, end_user=end_user)
        .select_related("model")
        .order_by("-day")
        .first()
    )


def latest_account_snapshot(
    tenant: Tenant, account: CustomerAccount, *, model: ScoringModel | None = None
) -> AccountScore | None:
    model = model or published_model(tenant)
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
    where, params = tenant_sql(tenant, "u")
    subject = f"AND r.end_user_id IN (SELECT u.id FROM events_enduser u WHERE {where} AND u.account_id = %s)"  # noqa: S608
    return _explain(model, day, subject, [*params, account.pk], days_back)


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
    falling: int = 0  # end users flagged falling under the draft (model.falling_drop_pct)
    published_falling: int | None = None


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


def preview_draft(model: ScoringModel, *, changes_limit: int | None = 50) -> Preview:
    """Score the latest day under `model` without keeping anything.

    The engine writes its rows inside a transaction that is always rolled back,
    so the preview uses exactly the published formulas and costs one day. The
    page lists the first `changes_limit` tier changes; its CSV asks for all.
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
                    for r in changed.select_related("end_user").order_by("-points", "end_user_id")[:changes_limit]
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
                falling=rows.filter(falling=True).count(),
                published_falling=(
                    UserScore.objects.for_tenant(tenant).filter(model=published, day=day, falling=True).count()
                    if published is not None and published.pk != model.pk else None
                ),
            )
            raise _Discard
    except _Discard:
        pass
    assert result is not None
    return result
