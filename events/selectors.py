"""Reads for the events pages: the activity catalog, the debugger feed, CSV imports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Q, QuerySet, Sum

from accounts.models import ApiKey, ApiKeyKind, Tenant

from .models import Activity, CsvImport, DailyActivityCount, Event, RejectedMessage

FEED_LIMIT = 50


# --- Catalog ------------------------------------------------------------------------


@dataclass
class CatalogRow:
    activity: Activity
    volume_7: int = 0
    volume_30: int = 0
    users_7: int = 0
    users_30: int = 0
    last_seen: date | None = None


def catalog_rows(tenant: Tenant) -> list[CatalogRow]:
    """Every activity with its volume and users over the last 7 and 30 tenant days.

    Two aggregates over the rollup, never a query per activity: the 30-day window
    (which also gives the last day seen of every recently active activity), then
    the last day of the activities that were quiet in that window, read through
    the rollup's activity index.
    """
    today = tenant.today()
    start_7, start_30 = today - timedelta(days=6), today - timedelta(days=29)
    activities = list(Activity.objects.for_tenant(tenant).filter(test_only=False).order_by("name"))
    rows = {a.pk: CatalogRow(activity=a) for a in activities}
    window = (
        DailyActivityCount.objects.for_tenant(tenant)
        .filter(day__gte=start_30)
        .values("activity_id")
        .annotate(
            volume_30=Sum("count"),
            volume_7=Sum("count", filter=Q(day__gte=start_7)),
            users_30=Count("end_user_id", distinct=True),
            users_7=Count("end_user_id", distinct=True, filter=Q(day__gte=start_7)),
            last_seen=Max("day"),
        )
    )
    for agg in window:
        row = rows.get(agg["activity_id"])
        if row is not None:
            row.volume_30, row.volume_7 = agg["volume_30"] or 0, agg["volume_7"] or 0
            row.users_30, row.users_7 = agg["users_30"] or 0, agg["users_7"] or 0
            row.last_seen = agg["last_seen"]
    quiet = [pk for pk, row in rows.items() if row.last_seen is None and row.activity.is_tracked]
    if quiet:
        older = (
            DailyActivityCount.objects.for_tenant(tenant)
            .filter(activity_id__in=quiet)
            .values("activity_id")
            .annotate(last_seen=Max("day"))
        )
        for agg in older:
            rows[agg["activity_id"]].last_seen = agg["last_seen"]
    return list(rows.values())


# --- Debugger -----------------------------------------------------------------------


def parse_cursor(value: str | None) -> tuple[int, int]:
    """`<last event id>.<last rejected id>`; anything unreadable means "from the start"."""
    try:
        event_id, rejected_id = (int(part) for part in (value or "").split("."))
    except ValueError:
        return 0, 0
    return max(event_id, 0), max(rejected_id, 0)


def debugger_feed(tenant: Tenant, after: tuple[int, int] = (0, 0), limit: int = FEED_LIMIT) -> dict[str, Any]:
    """The latest stored events and rejected messages, newest first, in two queries.

    The cursor is each table's highest id sent so far. Ids are taken at insert,
    so a transaction that commits late can hold a lower id than one already
    shown and be skipped; for a debugger that rare miss beats a feed that
    repeats rows. New rows are those with a higher id, capped at `limit`.
    """
    event_after, rejected_after = after
    events = list(
        Event.objects.for_tenant(tenant)
        .filter(id__gt=event_after)
        .select_related("end_user", "activity")
        .order_by("-id")[:limit]
    )
    rejected = list(RejectedMessage.objects.for_tenant(tenant).filter(id__gt=rejected_after).order_by("-id")[:limit])
    items = [_event_item(e) for e in events] + [_rejected_item(r) for r in rejected]
    items.sort(key=lambda item: item["sort"], reverse=True)
    for item in items:
        del item["sort"]
    cursor = f"{max([event_after] + [e.id for e in events])}.{max([rejected_after] + [r.id for r in rejected])}"
    return {"cursor": cursor, "items": items[:limit]}


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _label_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _event_item(event: Event) -> dict[str, Any]:
    user = event.end_user
    return {
        "kind": "event",
        "key": f"e{event.id}",
        "type": event.type,
        "name": event.activity.name if event.activity else _label(event),
        "user": user.user_id or f"anonymous {user.anonymous_id}",
        "message_id": event.message_id,
        "timestamp": _iso(event.timestamp),
        "received_at": _iso(event.received_at),
        "received_label": _label_time(event.received_at),
        "payload": event.payload,
        "sort": (event.received_at, 1, event.id),
    }


def _label(event: Event) -> str:
    payload = event.payload if isinstance(event.payload, dict) else {}
    if event.type == "group":
        return f"group {payload.get('groupId', '')}".strip()
    if event.type == "alias":
        return f"alias of {payload.get('previousId', '')}".strip()
    return event.type


def _rejected_item(rejected: RejectedMessage) -> dict[str, Any]:
    payload = rejected.payload
    return {
        "kind": "rejected",
        "key": f"r{rejected.id}",
        "type": payload.get("type", "") if isinstance(payload, dict) else "",
        "name": "Rejected",
        "reason": rejected.reason,
        "field": rejected.field,
        "source": rejected.source,
        "message_id": rejected.message_id,
        "received_at": _iso(rejected.received_at),
        "received_label": _label_time(rejected.received_at),
        "payload": payload,
        "sort": (rejected.received_at, 0, rejected.id),
    }


def write_keys_of(tenant: Tenant) -> QuerySet[ApiKey]:
    return ApiKey.objects.for_tenant(tenant).filter(kind=ApiKeyKind.WRITE, revoked_at__isnull=True)


# --- CSV imports --------------------------------------------------------------------


def imports_of(tenant: Tenant) -> QuerySet[CsvImport]:
    return CsvImport.objects.for_tenant(tenant).select_related("created_by").defer("preview").order_by("-created_at")


def import_status(job: CsvImport) -> dict[str, Any]:
    return {
        "id": str(job.public_id),
        "status": job.status,
        "status_label": job.get_status_display(),
        "finished": job.is_finished,
        "total_rows": job.total_rows,
        "processed_rows": job.processed_rows,
        "percent": job.percent,
        "imported": job.imported,
        "duplicates": job.duplicates,
        "invalid": job.invalid,
        "error": job.error,
    }


def test_activities(tenant: Tenant) -> list[Activity]:
    """Names only test events carried (the setup snippets' "Signed up"): outside the catalog until kept."""
    return list(Activity.objects.for_tenant(tenant).filter(test_only=True).order_by("name"))
