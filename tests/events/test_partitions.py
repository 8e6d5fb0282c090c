"""The event table by month (events/partitions.py): partitions, the dedupe across months, retention, RLS.

The partition tests need PostgreSQL (skipped on SQLite, a failure under REQUIRE_SERVICES=1); the
per-workspace retention runs on both.
"""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import DatabaseError, connection
from django.utils import timezone

from accounts import rls
from accounts.scoping import tenant_sql
from events import partitions, wire
from events.models import Activity, DailyActivityCount, Event, MessageId
from events.services import ingest
from scoring import engine, services
from scoring.models import UserScore

TODAY = date(2026, 12, 7)


def at(day: date, hour: int = 12) -> str:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).isoformat()


def send(tenant, *raws):
    outcomes = wire.normalize_all(list(raws), kind="batch", received_at=timezone.now(), batch_sent_at=None)
    assert all(isinstance(o, wire.Message) for o in outcomes), outcomes
    return ingest(tenant=tenant, messages=outcomes)


def track(message_id, day, user="u1", event="Added photo"):
    return {"type": "track", "userId": user, "event": event, "messageId": message_id, "timestamp": at(day)}


def rollup(tenant):
    # Read in the tenant's scope: ingest's nested tenant transactions leave the test's connection in the last one.
    with rls.tenant_context(tenant):
        return sorted(
            DailyActivityCount.objects.for_tenant(tenant).values_list(
                "end_user__user_id", "activity__name", "day", "count"
            )
        )


def events_of(tenant) -> list[str]:
    with rls.tenant_context(tenant):
        return sorted(Event.objects.for_tenant(tenant).values_list("message_id", flat=True))


def user_scores(tenant):
    with rls.tenant_context(tenant):
        return list(UserScore.objects.for_tenant(tenant).values_list("day", "end_user_id", "points", "tier"))


def where_rows_are(tenant) -> dict[str, int]:
    """Partition name -> the tenant's rows in it (read through the parent: tableoid names the partition)."""
    where, params = tenant_sql(tenant)
    with rls.tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tableoid::regclass::text, count(*) FROM events_event WHERE {where} GROUP BY 1", params
        )
        return dict(cursor.fetchall())


@pytest.fixture
def partitioned(postgres, db):
    assert partitions.is_partitioned(), "the migrations partition events_event on PostgreSQL"


def test_the_table_is_partitioned_by_month_with_a_default(partitioned):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_partkeydef('events_event'::regclass)")
        assert cursor.fetchone()[0] == "RANGE (day)"
        months = partitions.partitions(cursor)
        assert partitions._exists(cursor, partitions.DEFAULT)
    current = partitions.month_start(partitions.utc_today())
    assert {partitions.add_months(current, k) for k in range(3)} <= set(months)


# Timestamps in the future are clamped to the time received (docs/ingestion.md): the months
# crossed here are past ones, their partitions made as the beat task makes them ahead of time.
LAST_MONTH = date(2026, 11, 15)


def test_a_batch_across_months_lands_in_each_month_and_the_default(partitioned, tenant):
    partitions.ensure_partitions(today=date(2026, 11, 1))
    old = date(2019, 3, 4)  # a backfill: no partition for it
    result = send(tenant, track("a", TODAY), track("b", LAST_MONTH), track("c", old), track("d", TODAY))
    assert result.stored == 4
    assert where_rows_are(tenant) == {"events_event_p202612": 2, "events_event_p202611": 1, "events_event_default": 1}
    assert [(day, n) for _, _, day, n in rollup(tenant)] == [(old, 1), (LAST_MONTH, 1), (TODAY, 2)]


def test_the_dedupe_is_exact_across_a_month_boundary(partitioned, tenant):
    partitions.ensure_partitions(today=date(2026, 10, 1))
    assert send(tenant, track("same", date(2026, 11, 30))).stored == 1
    # The same message id with a timestamp in the next month (a partition of its own): a duplicate.
    result = send(tenant, track("same", date(2026, 12, 1)))
    assert (result.stored, result.duplicates) == (0, 1)
    # Twice in one batch across months: the first is stored.
    result = send(tenant, track("twice", date(2026, 10, 31)), track("twice", date(2026, 11, 1)))
    assert (result.stored, result.duplicates) == (1, 1)
    with rls.tenant_context(tenant):
        assert Event.objects.for_tenant(tenant).get(message_id="twice").day == date(2026, 10, 31)
    assert events_of(tenant) == ["same", "twice"]
    assert [(day, n) for *_, day, n in rollup(tenant)] == [(date(2026, 10, 31), 1), (date(2026, 11, 30), 1)]
    with rls.tenant_context(tenant):
        assert MessageId.objects.for_tenant(tenant).count() == 2


def test_the_live_path_dedupes_across_months_too(partitioned, tenant):
    partitions.ensure_partitions(today=TODAY)
    now = timezone.now()
    send(tenant, track("seed", now.date()))  # the end user and activity exist: later batches take one statement
    first = {"type": "track", "userId": "u1", "event": "Added photo", "messageId": "live", "timestamp": now.isoformat()}
    assert send(tenant, first).stored == 1
    again = {**first, "timestamp": (now - timedelta(minutes=1)).isoformat()}
    assert send(tenant, again).duplicates == 1
    assert events_of(tenant) == ["live", "seed"]


def test_ensure_partitions_moves_a_month_out_of_the_default(partitioned, tenant):
    send(tenant, track("x", date(2020, 5, 2)), track("y", date(2020, 5, 30)), track("z", date(2020, 6, 1)))
    assert where_rows_are(tenant) == {"events_event_default": 3}
    created = partitions.ensure_partitions(today=TODAY)
    assert {"events_event_p202005", "events_event_p202006"} <= set(created)
    assert where_rows_are(tenant) == {"events_event_p202005": 2, "events_event_p202006": 1}
    assert partitions.ensure_partitions(today=TODAY) == []  # idempotent
    assert send(tenant, track("x", date(2020, 5, 2))).duplicates == 1


def test_dropping_a_month_keeps_scores_rollup_and_dedupe(partitioned, tenant, settings):
    september, november = date(2026, 9, 14), date(2026, 11, 20)
    send(tenant, *[track(f"s-{i}", september - timedelta(days=i % 3)) for i in range(6)], track("n-1", november))
    partitions.ensure_partitions(today=TODAY)  # beat: the old months leave the DEFAULT partition
    assert where_rows_are(tenant) == {"events_event_p202609": 6, "events_event_p202611": 1}
    activity = Activity.objects.for_tenant(tenant).get(name="Added photo")
    model = services.scoring_model_create_draft(tenant=tenant)
    services.scoring_model_update(model=model, points={activity.pk: 10}, window_days=90)
    engine.compute_day(model, november)
    scores = user_scores(tenant)
    assert scores and scores[0][2] > 0
    before = rollup(tenant)

    settings.EVENTS_RETENTION_MONTHS = 2  # December and the two months before it stay
    done = partitions.apply_retention(today=TODAY)
    assert "events_event_p202609" in done["dropped"] and "events_event_p202611" not in done["dropped"]
    with connection.cursor() as cursor:
        assert not partitions._exists(cursor, "events_event_p202609")
    assert events_of(tenant) == ["n-1"]
    assert rollup(tenant) == before
    assert user_scores(tenant) == scores
    # A recompute of that day reads the rollup, which kept the month: the same rows.
    engine.compute_day(model, november)
    assert user_scores(tenant) == scores
    # A replay of a dropped month's message is still a duplicate: the rollup never counts it twice.
    assert send(tenant, track("s-0", september)).duplicates == 1
    assert rollup(tenant) == before


def test_old_rows_in_the_default_partition_go_with_the_global_retention(partitioned, tenant, settings):
    send(tenant, track("ancient", date(2015, 1, 1)), track("recent", TODAY))
    settings.EVENTS_RETENTION_MONTHS = 12
    partitions.apply_retention(today=TODAY)
    assert events_of(tenant) == ["recent"]


def test_the_app_role_reads_partitions_only_through_the_parent(partitioned, tenant, other_tenant):
    partitions.ensure_partitions(today=TODAY)
    send(tenant, track("a", TODAY), track("b", date(2019, 1, 1)))
    send(other_tenant, track("c", TODAY))
    with rls.tenant_context(tenant):
        assert set(Event.objects.unscoped().values_list("message_id", flat=True)) == {"a", "b"}
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM events_event")  # no tenant predicate: the policy holds
            assert cursor.fetchone() == (2,)
    for table in ("events_event_p202612", partitions.DEFAULT):
        with pytest.raises(DatabaseError, match="permission denied"), rls.tenant_context(tenant):
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events_event'::regclass"
        )
        rows = cursor.fetchall()
    assert rows and all(enabled and forced for _, enabled, forced in rows)


@pytest.mark.django_db
def test_a_workspace_keeps_fewer_months_than_the_platform(tenant, other_tenant, settings):
    """Both vendors: the workspace's old rows are deleted, another workspace's stay."""
    settings.EVENTS_RETENTION_MONTHS = 0
    if connection.vendor == "postgresql":
        partitions.ensure_partitions(today=TODAY)
    for t in (tenant, other_tenant):
        send(t, track("old", date(2026, 8, 31)), track("kept", date(2026, 11, 1)), track("now", TODAY))
    tenant.events_retention_months = 1
    tenant.save()
    before = rollup(tenant)
    done = partitions.apply_retention(today=TODAY)
    assert done["deleted"] == {tenant.slug: 1}
    assert events_of(tenant) == ["kept", "now"]
    assert events_of(other_tenant) == ["kept", "now", "old"]
    assert rollup(tenant) == before
    assert send(tenant, track("old", date(2026, 8, 31))).duplicates == 1


@pytest.mark.django_db
def test_the_retention_setting_is_on_the_workspace_settings_form(owner_client, tenant):
    response = owner_client.post(
        f"/t/{tenant.slug}/settings/",
        {"name": tenant.name, "product_name": tenant.product_name, "time_zone": "UTC", "events_retention_months": "0"},
    )
    assert "Ensure this value is greater than or equal to 1" in response.content.decode()
    owner_client.post(
        f"/t/{tenant.slug}/settings/",
        {"name": tenant.name, "product_name": tenant.product_name, "time_zone": "UTC", "events_retention_months": "6"},
    )
    tenant.refresh_from_db()
    assert tenant.events_retention_months == 6


@pytest.mark.django_db
def test_the_beat_task_creates_ahead_and_applies_retention(tenant, settings):
    from events.tasks import maintain_partitions

    assert "events-partitions" in settings.CELERY_BEAT_SCHEDULE
    maintain_partitions()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            months = partitions.partitions(cursor)
        current = partitions.month_start(partitions.utc_today())
        assert partitions.add_months(current, settings.EVENTS_PARTITION_MONTHS_AHEAD) in months
