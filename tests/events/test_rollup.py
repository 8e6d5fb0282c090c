"""The rollup invariant: for every (end user, activity, day) the count equals the stored events.

Checked after random batches with duplicates and late events (hypothesis), and
with overlapping batches sent concurrently against PostgreSQL.
"""

import json
import random
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import Count, Sum
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts import rls
from accounts.models import ApiKeyKind
from accounts.services import api_key_create
from events import wire
from events.models import DailyActivityCount, Event, MessageId
from events.services import ingest


def rollup_matches_events(tenant) -> None:
    events = {
        (row["end_user"], row["activity"], row["day"]): row["n"]
        for row in Event.objects.for_tenant(tenant)
        .filter(activity__isnull=False)
        .values("end_user", "activity", "day")
        .annotate(n=Count("id"))
    }
    rollup = {(r.end_user_id, r.activity_id, r.day): r.count for r in DailyActivityCount.objects.for_tenant(tenant)}
    assert rollup == events


message_strategy = st.fixed_dictionaries(
    {
        "user": st.sampled_from(["u1", "u2", "u3", None]),
        "anon": st.sampled_from(["a1", "a2", None]),
        "event": st.sampled_from(["Logged in", "Added photo", "Shared photo"]),
        "days_ago": st.integers(min_value=0, max_value=40),
        "hour": st.integers(min_value=0, max_value=23),
        "id": st.integers(min_value=0, max_value=30),
        "type": st.sampled_from(["track", "track", "track", "page", "identify"]),
    }
)


def to_raw(spec) -> dict:
    ts = datetime(2026, 6, 1, spec["hour"], tzinfo=UTC) - timedelta(days=spec["days_ago"])
    raw = {"type": spec["type"], "messageId": f"m-{spec['id']}", "timestamp": ts.isoformat()}
    if spec["type"] == "track":
        raw["event"] = spec["event"]
    if spec["type"] == "page":
        raw["name"] = spec["event"]
    if spec["user"]:
        raw["userId"] = spec["user"]
    if spec["anon"] or not spec["user"]:
        raw["anonymousId"] = spec["anon"] or "a0"
    return raw


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(message_strategy, min_size=1, max_size=15), min_size=1, max_size=5))
def test_rollup_equals_events_after_random_batches(tenant, batches):
    Event.objects.for_tenant(tenant).delete()
    MessageId.objects.for_tenant(tenant).delete()  # the dedupe ids outlive deleted events
    DailyActivityCount.objects.for_tenant(tenant).delete()
    now = timezone.now()
    for batch in batches:
        outcomes = [wire.normalize(to_raw(spec), kind="batch", received_at=now, batch_sent_at=None) for spec in batch]
        messages = [m for m in outcomes if isinstance(m, wire.Message)]
        assert len(messages) == len(outcomes)
        ingest(tenant=tenant, messages=messages)
        rollup_matches_events(tenant)
    assert Event.objects.for_tenant(tenant).count() == len({spec["id"] for batch in batches for spec in batch})


def send_concurrently(key: str, batches: list[list[dict]], threads: int = 6) -> list[int]:
    """POST the batches to /v1/batch from `threads` threads at once; their status codes."""
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(chunk):
        client = Client()
        try:
            for batch in chunk:
                body = json.dumps({"batch": batch, "writeKey": key})
                response = client.post("/v1/batch", body, content_type="application/json")
                with lock:
                    statuses.append(response.status_code)
        finally:
            connection.close()

    pool = [threading.Thread(target=worker, args=(batches[i::threads],)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return statuses


@pytest.fixture
def store_paths(monkeypatch):
    """Which way each batch was stored: "one statement" (live tracking of known users) or "transaction"."""
    from events import services

    paths: list[str] = []
    store_tracking_only = services._store_tracking_only

    def recording(*args):
        taken = store_tracking_only(*args)
        paths.append("one statement" if taken else "transaction")
        return taken

    monkeypatch.setattr(services.batches, "_store_tracking_only", recording)
    return paths


@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_batches_store_each_message_once(postgres, tenant):
    key = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="load")[1]
    rng = random.Random(7)
    def message():
        raw = {
            "type": "track",
            "userId": f"user-{rng.randrange(20)}",
            "event": rng.choice(["Logged in", "Added photo", "Shared photo", "Invited friend"]),
            "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
            "timestamp": (datetime(2026, 6, 1, tzinfo=UTC) - timedelta(hours=rng.randrange(24 * 30))).isoformat(),
        }
        # Identify and group calls too: every batch locks end users (traits, accounts, first seen)
        # while the others insert events that reference them.
        roll = rng.random()
        if roll < 0.15:
            raw.update(type="identify", traits={"plan": rng.choice(["free", "paid"])})
            del raw["event"]
        elif roll < 0.25:
            raw.update(type="group", groupId=f"acct-{rng.randrange(4)}", traits={"seats": rng.randrange(50)})
            del raw["event"]
        elif roll < 0.5:
            raw["context"] = {"groupId": f"acct-{rng.randrange(4)}"}
        return raw

    pool = [message() for _ in range(400)]
    # Each worker sends overlapping random slices of the same pool, several times.
    batches = [rng.sample(pool, 100) for _ in range(24)]
    assert send_concurrently(key, batches) == [200] * len(batches)
    sent = {m["messageId"] for batch in batches for m in batch}
    assert Event.objects.for_tenant(tenant).count() == len(sent)
    rollup_matches_events(tenant)


@pytest.mark.django_db(transaction=True)
def test_concurrent_live_tracking_of_known_users_stores_each_message_once(postgres, tenant, store_paths):
    """Live track calls of known end users take the one-statement path (no BEGIN/COMMIT); some batches
    bring a new user and take the transactional path beside them. Each message is stored once."""
    key = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="live")[1]
    names = ["Logged in", "Added photo", "Shared photo"]
    client = Client()
    known = [{"type": "track", "userId": f"user-{i}", "event": names[i % 3]} for i in range(20)]
    first = client.post("/v1/batch", json.dumps({"batch": known, "writeKey": key}), "application/json")
    assert first.status_code == 200
    rng = random.Random(11)

    def message(i):
        new = rng.random() < 0.01
        return {
            "type": "track",
            "userId": f"new-{i}" if new else f"user-{rng.randrange(20)}",
            "event": rng.choice(names),
            "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
            "timestamp": (timezone.now() - timedelta(minutes=rng.randrange(30))).isoformat(),
        }

    pool = [message(i) for i in range(400)]
    batches = [rng.sample(pool, 100) for _ in range(24)]
    assert send_concurrently(key, batches) == [200] * len(batches)
    # Known users' batches took the one-statement path, those with a new user the transactional one.
    assert set(store_paths) == {"one statement", "transaction"}
    sent = {m["messageId"] for batch in batches for m in batch}
    assert Event.objects.for_tenant(tenant).count() == len(known) + len(sent)
    rollup_matches_events(tenant)


@pytest.mark.django_db(transaction=True)
def test_live_tracking_that_names_a_new_user_or_a_proposed_activity_is_stored_whole(postgres, tenant, store_paths):
    """The one statement stores nothing when a user or an activity of the batch is missing (or was only
    proposed in a survey): the whole batch then takes the transaction, which creates them."""
    from events.models import Activity, EndUser

    key = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="live")[1]
    client = Client()

    def send(*messages):
        batch = [{"type": "track", "messageId": str(uuid.uuid4()), **m} for m in messages]
        response = client.post("/v1/batch", json.dumps({"batch": batch, "writeKey": key}), "application/json")
        assert response.status_code == 200, response.content

    send({"userId": "u1", "event": "Logged in"})
    send({"userId": "u1", "event": "Logged in"}, {"userId": "u1", "event": "Logged in"})
    send({"userId": "u1", "event": "Logged in"}, {"userId": "u2", "event": "Logged in"})  # u2 is new
    proposed = Activity.objects.create(tenant=tenant, name="Shared photo")  # from a survey, never received
    send({"userId": "u1", "event": "Logged in"}, {"userId": "u2", "event": "Shared photo"})
    send({"userId": "u2", "event": "Shared photo"})

    assert store_paths == ["transaction", "one statement", "transaction", "transaction", "one statement"]
    proposed.refresh_from_db()
    assert proposed.first_seen_at is not None
    assert Event.objects.for_tenant(tenant).count() == 8
    rollup = DailyActivityCount.objects.for_tenant(tenant).values_list("end_user__user_id", "activity__name")
    counts = {(user, name): n for user, name, n in rollup.annotate(n=Sum("count"))}
    assert counts == {("u1", "Logged in"): 5, ("u2", "Logged in"): 1, ("u2", "Shared photo"): 2}
    assert EndUser.objects.for_tenant(tenant).count() == 2
    rollup_matches_events(tenant)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("extra", [{}, {"anonymousId": "anon-1"}], ids=["one statement", "transaction"])
def test_a_batch_for_an_end_user_being_merged_away_is_stored_under_a_live_one(postgres, tenant, store_paths, extra):
    """An alias merges end user "old" into "new" (moves its events, deletes it) while a batch for "old"
    arrives. The batch waits for the merge, then never points at the deleted end user. Both ways of
    storing a batch: the live one (a user id alone) and the transaction (with an anonymous id)."""
    import time

    from django.db import transaction

    from events import services
    from events.models import EndUser

    key = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="live")[1]
    client = Client()

    def send(*users, **extra):
        batch = [
            {"type": "track", "userId": u, "event": "Logged in", "messageId": str(uuid.uuid4()), **extra} for u in users
        ]
        return client.post("/v1/batch", json.dumps({"batch": batch, "writeKey": key}), "application/json")

    assert send("old", "new").status_code == 200
    old, new = (EndUser.objects.for_tenant(tenant).get(user_id=u).pk for u in ("old", "new"))
    merged = threading.Event()

    def merge():
        try:
            with transaction.atomic(), rls.tenant_context(tenant):  # this thread is an app connection
                services._merge_end_users(tenant, old, new)
                merged.set()
                time.sleep(1)  # holds the lock on "old" (now deleted, not yet committed)
        finally:
            connection.close()

    merging = threading.Thread(target=merge)
    merging.start()
    assert merged.wait(10)
    started = time.monotonic()
    response = send("old", **extra)
    waited = time.monotonic() - started
    merging.join()

    assert response.status_code == 200, response.content
    assert waited > 0.5  # it did wait for the merge's lock
    assert store_paths[-1] == "transaction"  # the one statement found "old" gone and stored nothing
    live = set(EndUser.objects.for_tenant(tenant).values_list("pk", flat=True))
    assert set(Event.objects.for_tenant(tenant).values_list("end_user_id", flat=True)) <= live
    assert Event.objects.for_tenant(tenant).count() == 3
    assert Event.objects.for_tenant(tenant).filter(end_user_id=new).count() == 2  # "new" and the merged "old"
    rollup_matches_events(tenant)


@pytest.mark.django_db(transaction=True)
def test_a_batch_in_flight_while_its_tenant_is_deleted_leaves_no_event_behind(postgres, tenant):
    """Deleting a tenant locks its end users before any DELETE: a batch for one of them waits, then stores
    nothing (its end user and tenant are gone), instead of committing between the deletion's statements."""
    import time

    from django.db.models.signals import pre_delete

    from accounts.models import Tenant
    from accounts.services import tenant_delete
    from events.models import EndUser

    key = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="live")[1]
    client = Client()

    def send():
        batch = [{"type": "identify", "userId": "u1", "traits": {"plan": "paid"}, "messageId": str(uuid.uuid4())}]
        return client.post("/v1/batch", json.dumps({"batch": batch, "writeKey": key}), "application/json")

    assert send().status_code == 200
    tenant_id = tenant.pk
    locked = threading.Event()

    def hold(sender, instance, **kwargs):  # runs after the events app's receiver, before any DELETE
        locked.set()
        time.sleep(1)

    pre_delete.connect(hold, sender=Tenant, dispatch_uid="test.hold")

    def delete():
        try:
            with rls.tenant_context(tenant_id):  # as the settings page does; this thread is an app connection
                tenant_delete(tenant=Tenant.objects.get(pk=tenant_id), confirm_name=tenant.name)
        finally:
            connection.close()

    try:
        deleting = threading.Thread(target=delete)
        deleting.start()
        assert locked.wait(10)
        started = time.monotonic()
        response = send()
        waited = time.monotonic() - started
        deleting.join()
    finally:
        pre_delete.disconnect(dispatch_uid="test.hold", sender=Tenant)

    assert waited > 0.5  # the batch waited for the deletion's lock on its end user
    assert response.status_code == 503, response.content  # then its tenant was gone: the client retries, and gets 401
    assert not Tenant.objects.filter(pk=tenant_id).exists()
    assert not Event.objects.filter(tenant_id=tenant_id).exists()
    assert not EndUser.objects.filter(tenant_id=tenant_id).exists()
