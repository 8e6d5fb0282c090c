"""The Segment-compatible HTTP API: endpoints, auth, limits, errors, and what messages do to the data."""

import base64
import gzip
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.urls import reverse

from accounts.models import ApiKeyKind
from accounts.services import api_key_create, api_key_revoke
from core import ratelimit
from events import api
from events.models import Activity, CustomerAccount, DailyActivityCount, EndUser, Event, RejectedMessage
from tests.helpers import assert_error

ROOT = Path(__file__).resolve().parents[2]


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def post(client, path, body, key=None, content_type="application/json", **headers):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    if key:
        headers["HTTP_AUTHORIZATION"] = basic(key)
    return client.post(path, data, content_type=content_type, **headers)


def track(user="u1", event="Added photo", **extra):
    return {"type": "track", "userId": user, "event": event, "messageId": str(uuid.uuid4()), **extra}


# --- Endpoints ----------------------------------------------------------------------

SINGLE = {
    "track": {"event": "Added photo"},
    "identify": {"traits": {"email": "a@example.com"}},
    "group": {"groupId": "g1"},
    "page": {"name": "Home"},
    "screen": {"name": "Feed"},
    "alias": {"previousId": "anon-9"},
}
SHORT = {"track": "t", "identify": "i", "group": "g", "page": "p", "screen": "s", "alias": "a"}


@pytest.mark.parametrize("kind", list(SINGLE))
@pytest.mark.parametrize("form", ["long", "short", "slash"])
def test_every_single_endpoint_stores_its_message(client, tenant, write_key, kind, form):
    path = {"long": f"/v1/{kind}", "short": f"/v1/{SHORT[kind]}", "slash": f"/v1/{kind}/"}[form]
    message_id = str(uuid.uuid4())
    response = post(client, path, {"userId": "u1", "messageId": message_id, **SINGLE[kind]}, key=write_key)
    assert response.status_code == 200, response.content
    assert response.json() == {"success": True}
    event = Event.objects.for_tenant(tenant).get(message_id=message_id)
    assert event.type == kind


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/batch/", "/v1/import", "/v1/b", "/v1/b/"])
def test_batch_endpoints(client, tenant, write_key, path):
    response = post(client, path, {"batch": [track(), track(event="Shared photo")]}, key=write_key)
    assert response.status_code == 200
    assert Event.objects.for_tenant(tenant).count() == 2


def test_no_path_redirects(client, tenant, write_key):
    for path in ["/v1/batch", "/v1/batch/", "/v1/track", "/v1/t/"]:
        response = post(client, path, {"batch": [track()]} if "batch" in path else track(), key=write_key)
        assert response.status_code == 200, path


def test_text_plain_json_is_accepted(client, tenant, write_key):
    response = post(client, "/v1/batch", {"batch": [track()]}, key=write_key, content_type="text/plain")
    assert response.status_code == 200
    assert Event.objects.for_tenant(tenant).count() == 1


def test_gzip_body_is_decompressed(client, tenant, write_key):
    body = gzip.compress(json.dumps({"batch": [track(), track()]}).encode())
    response = post(client, "/v1/batch", body, key=write_key, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200
    assert Event.objects.for_tenant(tenant).count() == 2


def test_get_is_405_with_cors(client):
    response = client.get("/v1/batch", HTTP_ORIGIN="https://app.example.com")
    assert_error(response, 405, "method_not_allowed")
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"


def test_cors_preflight(client):
    response = client.options(
        "/v1/batch",
        HTTP_ORIGIN="https://app.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type,x-retry-count",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"
    allowed = response["Access-Control-Allow-Headers"].lower()
    for header in ("content-type", "authorization", "x-retry-count"):
        assert header in allowed
    assert "POST" in response["Access-Control-Allow-Methods"]


# --- Authentication ---------------------------------------------------------------------


def test_write_key_in_batch_body(client, tenant, write_key):
    response = post(client, "/v1/batch", {"batch": [track()], "writeKey": write_key})
    assert response.status_code == 200
    assert Event.objects.for_tenant(tenant).count() == 1


def test_write_key_in_single_message(client, tenant, write_key):
    response = post(client, "/v1/track", {**track(), "writeKey": write_key})
    assert response.status_code == 200
    assert Event.objects.for_tenant(tenant).count() == 1


def test_missing_key_is_401(client, tenant):
    assert_error(post(client, "/v1/batch", {"batch": [track()]}), 401, "unauthorized")
    assert Event.objects.unscoped().count() == 0


def test_unknown_key_is_401(client, tenant, write_key):
    forged = write_key[:-4] + "AAAA"
    assert_error(post(client, "/v1/batch", {"batch": [track()]}, key=forged), 401, "unauthorized")
    assert_error(post(client, "/v1/batch", {"batch": [track()]}, key="not-a-key"), 401, "unauthorized")
    assert Event.objects.unscoped().count() == 0


def test_read_key_is_refused(client, tenant):
    _, read_key = api_key_create(tenant=tenant, kind=ApiKeyKind.READ, name="reader")
    assert_error(post(client, "/v1/batch", {"batch": [track()]}, key=read_key), 401, "unauthorized")
    assert Event.objects.unscoped().count() == 0


def test_revoked_key_is_401(client, tenant):
    key, plaintext = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="old")
    assert post(client, "/v1/batch", {"batch": [track()]}, key=plaintext).status_code == 200
    api_key_revoke(key=key)
    assert_error(post(client, "/v1/batch", {"batch": [track()]}, key=plaintext), 401, "unauthorized")
    assert Event.objects.for_tenant(tenant).count() == 1


def test_a_key_writes_only_to_its_tenant(client, tenant, other_tenant, write_key):
    post(client, "/v1/batch", {"batch": [track(user="shared-id")]}, key=write_key)
    assert Event.objects.for_tenant(tenant).count() == 1
    assert Event.objects.for_tenant(other_tenant).count() == 0
    assert not EndUser.objects.for_tenant(other_tenant).exists()


# --- Bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,code",
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_body"),
        (b'"a string"', "invalid_body"),
        (b'{"batch": {"not": "a list"}}', "invalid_body"),
        (b"\xff\xfe garbage", "invalid_json"),
        (b"[" * 100_000, "invalid_json"),
    ],
)
def test_malformed_bodies_are_400(client, tenant, write_key, body, code):
    assert_error(post(client, "/v1/batch", body, key=write_key), 400, code)
    assert Event.objects.unscoped().count() == 0


def test_request_over_512000_bytes_is_400(client, tenant, write_key):
    messages = [track(properties={"pad": "x" * 20_000}) for _ in range(26)]
    body = json.dumps({"batch": messages})
    assert len(body) > 512_000
    assert_error(post(client, "/v1/batch", body, key=write_key), 400, "request_too_large")
    assert Event.objects.unscoped().count() == 0


def test_gzip_bomb_is_400(client, tenant, write_key):
    bomb = gzip.compress(b'{"batch": [' + b" " * 5_000_000 + b"]}")
    assert_error(post(client, "/v1/batch", bomb, key=write_key, HTTP_CONTENT_ENCODING="gzip"), 400, "request_too_large")


def test_invalid_gzip_is_400(client, tenant, write_key):
    assert_error(
        post(client, "/v1/batch", b"not gzip", key=write_key, HTTP_CONTENT_ENCODING="gzip"), 400, "invalid_gzip"
    )


def test_more_than_2500_messages_stores_the_first_2500_and_rejects_the_rest_by_name(
    client, owner_client, tenant, write_key
):
    batch = [{"type": "track", "userId": "u", "event": "e", "messageId": f"m-{i}"} for i in range(2502)]
    response = post(client, "/v1/batch", {"batch": batch}, key=write_key)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["code"] == "too_many_messages"
    assert body["rejected"] == ["m-2500", "m-2501"]
    assert "the first 2,500 were processed and the 2 after them rejected" in body["message"]
    assert Event.objects.for_tenant(tenant).count() == 2500
    assert not Event.objects.for_tenant(tenant).filter(message_id__in=["m-2500", "m-2501"]).exists()
    rejected = RejectedMessage.objects.for_tenant(tenant).order_by("message_id")
    assert [(r.message_id, r.field) for r in rejected] == [("m-2500", "batch"), ("m-2501", "batch")]
    assert rejected[0].payload["event"] == "e"
    # The debugger shows them, in red, with their reason.
    page = owner_client.get(reverse("events:debugger", args=[tenant.slug])).content.decode()
    assert "m-2501" in page and "a batch holds at most 2,500 messages" in page


def test_oversized_single_message_is_400(client, tenant, write_key):
    message = track(properties={"pad": "x" * 33_000})
    assert_error(post(client, "/v1/track", message, key=write_key), 400, "message_too_large")


def test_invalid_single_message_is_400_naming_the_field(client, tenant, write_key):
    response = post(client, "/v1/track", {"event": "Added photo"}, key=write_key)
    assert_error(response, 400, "invalid_message")
    assert "userId" in response.json()["message"]
    assert Event.objects.unscoped().count() == 0
    assert RejectedMessage.objects.for_tenant(tenant).count() == 1


def test_batch_keeps_valid_messages_and_records_invalid_ones(client, tenant, write_key):
    good = track()
    batch = [
        good,
        {"type": "track", "event": "No user"},
        {"type": "track", "userId": "u1"},
        {"type": "group", "userId": "u1"},
        {"type": "track", "userId": "u1", "event": "x", "timestamp": "yesterday"},
        track(properties={"pad": "x" * 33_000}),
        "not an object",
        {"type": "unknown", "userId": "u1"},
    ]
    response = post(client, "/v1/batch", {"batch": batch}, key=write_key)
    assert response.status_code == 200
    assert list(Event.objects.for_tenant(tenant).values_list("message_id", flat=True)) == [good["messageId"]]
    reasons = list(RejectedMessage.objects.for_tenant(tenant).values_list("reason", flat=True))
    assert len(reasons) == 7
    joined = " | ".join(reasons)
    for word in ("userId", "event", "groupId", "timestamp", "type"):
        assert word in joined


def rejected_by_id(tenant):
    return {r.message_id: (r.field, r.reason) for r in RejectedMessage.objects.for_tenant(tenant)}


def test_values_postgresql_cannot_store_reject_only_their_message(postgres, client, tenant, write_key):
    """One over-long id or one NUL used to fail the whole batch's transaction (503 forever)."""
    good = track()
    long_user = track(user="u" * 256)
    nul_property = track(properties={"note": "a\u0000b"})
    nul_event = track(event="Added\u0000photo")
    long_group = {"type": "group", "userId": "u1", "groupId": "g" * 256, "messageId": str(uuid.uuid4())}
    batch = [long_user, good, nul_property, nul_event, long_group]
    response = post(client, "/v1/batch", {"batch": batch}, key=write_key)
    assert response.status_code == 200, response.content
    assert list(Event.objects.for_tenant(tenant).values_list("message_id", flat=True)) == [good["messageId"]]
    nul_reason = "contains a NUL character (\\u0000), which cannot be stored"
    assert rejected_by_id(tenant) == {
        long_user["messageId"]: ("userId", "userId must be at most 255 characters"),
        nul_property["messageId"]: ("properties.note", f"properties.note {nul_reason}"),
        nul_event["messageId"]: ("event", f"event {nul_reason}"),
        long_group["messageId"]: ("groupId", "groupId must be at most 255 characters"),
    }
    stored = RejectedMessage.objects.for_tenant(tenant).get(message_id=nul_property["messageId"])
    assert stored.payload["properties"] == {"note": "a\ufffdb"}  # kept for the debugger, NUL replaced


def test_a_single_call_holding_a_nul_is_400_and_recorded(postgres, client, tenant, write_key):
    response = post(client, "/v1/identify", {"userId": "u1", "traits": {"name": "\u0000"}}, key=write_key)
    assert_error(response, 400, "invalid_message")
    assert "traits.name" in response.json()["message"]
    assert RejectedMessage.objects.for_tenant(tenant).get().field == "traits.name"
    assert Event.objects.unscoped().count() == 0


def test_times_out_of_range_are_rejected_and_the_rest_kept(client, tenant, write_key):
    """Year 1 or 9999 overflowed when converted to the tenant zone: a 500 that lost the whole batch."""
    tenant.time_zone = "America/New_York"
    tenant.save(update_fields=["time_zone"])
    good = track(timestamp="2026-05-01T10:00:00Z")
    year_1 = track(timestamp="0001-01-01T00:00:00Z")
    year_9999 = track(originalTimestamp="9999-12-31T23:59:59Z")
    skewed = track(timestamp="2199-06-01T00:00:00Z", sentAt="1970-01-01T00:00:00Z")
    response = post(client, "/v1/batch", {"batch": [year_1, good, year_9999, skewed]}, key=write_key)
    assert response.status_code == 200, response.content
    assert list(Event.objects.for_tenant(tenant).values_list("message_id", flat=True)) == [good["messageId"]]
    assert rejected_by_id(tenant) == {
        year_1["messageId"]: (
            "timestamp",
            "timestamp is out of range: '0001-01-01T00:00:00Z' (years 1970 to 2199 UTC are accepted)",
        ),
        year_9999["messageId"]: (
            "originalTimestamp",
            "originalTimestamp is out of range: '9999-12-31T23:59:59Z' (years 1970 to 2199 UTC are accepted)",
        ),
        skewed["messageId"]: ("timestamp", "timestamp is out of range after clock-skew correction"),
    }


# --- Data ---------------------------------------------------------------------------------


def test_duplicates_within_and_across_requests_are_stored_once(client, tenant, write_key):
    message = track()
    post(client, "/v1/batch", {"batch": [message, message]}, key=write_key)
    post(client, "/v1/batch", {"batch": [message]}, key=write_key)
    post(client, "/v1/track", message, key=write_key)
    assert Event.objects.for_tenant(tenant).count() == 1
    assert DailyActivityCount.objects.for_tenant(tenant).get().count == 1


def test_same_message_id_in_two_tenants_is_two_events(client, tenant, other_tenant, write_key):
    other_key = api_key_create(tenant=other_tenant, kind=ApiKeyKind.WRITE, name="w")[1]
    message = track()
    post(client, "/v1/batch", {"batch": [message]}, key=write_key)
    post(client, "/v1/batch", {"batch": [message]}, key=other_key)
    assert Event.objects.for_tenant(tenant).count() == 1
    assert Event.objects.for_tenant(other_tenant).count() == 1


def test_missing_message_id_is_assigned(client, tenant, write_key):
    message = track()
    del message["messageId"]
    post(client, "/v1/batch", {"batch": [message]}, key=write_key)
    event = Event.objects.for_tenant(tenant).get()
    assert 0 < len(event.message_id) <= 100


def test_clock_skew_is_corrected(client, tenant, write_key):
    # The client's clock is 2 h behind: it says it sent at 10:00:05 an event of 10:00:00.
    message = track(timestamp="2026-01-01T10:00:00Z")
    before = datetime.now(UTC)
    post(client, "/v1/batch", {"batch": [message], "sentAt": "2026-01-01T10:00:05Z"}, key=write_key)
    event = Event.objects.for_tenant(tenant).get()
    assert event.timestamp == event.received_at - timedelta(seconds=5)
    assert event.received_at >= before


def test_timestamp_without_sent_at_is_kept(client, tenant, write_key):
    post(client, "/v1/batch", {"batch": [track(timestamp="2026-03-01T12:30:00+02:00")]}, key=write_key)
    event = Event.objects.for_tenant(tenant).get()
    assert event.timestamp == datetime(2026, 3, 1, 10, 30, tzinfo=UTC)


def test_day_is_in_the_tenant_time_zone(client, tenant, write_key):
    # Acme is in Europe/Paris: 23:30 UTC on Mar 1 is already Mar 2 there.
    post(client, "/v1/batch", {"batch": [track(timestamp="2026-03-01T23:30:00Z")]}, key=write_key)
    assert str(DailyActivityCount.objects.for_tenant(tenant).get().day) == "2026-03-02"


def test_numeric_user_id_becomes_a_string(client, tenant, write_key):
    post(client, "/v1/batch", {"batch": [track(user=12345)]}, key=write_key)
    assert EndUser.objects.for_tenant(tenant).get().user_id == "12345"


def test_identify_merges_traits(client, tenant, write_key):
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "a@x.com", "plan": "free"}}, key=write_key)
    post(client, "/v1/identify", {"userId": "u1", "traits": {"plan": "paid", "name": "Ann"}}, key=write_key)
    user = EndUser.objects.for_tenant(tenant).get(user_id="u1")
    assert user.traits == {"email": "a@x.com", "plan": "paid", "name": "Ann"}


def test_group_creates_account_and_attaches_user(client, tenant, write_key):
    post(
        client,
        "/v1/group",
        {"userId": "u1", "groupId": "acct-1", "traits": {"name": "BigCo", "plan": "paid"}},
        key=write_key,
    )
    post(client, "/v1/group", {"userId": "u1", "groupId": "acct-1", "traits": {"mrr": 99}}, key=write_key)
    account = CustomerAccount.objects.for_tenant(tenant).get(group_id="acct-1")
    assert account.name == "BigCo"
    assert account.traits == {"name": "BigCo", "plan": "paid", "mrr": 99}
    assert EndUser.objects.for_tenant(tenant).get(user_id="u1").account == account


def test_track_with_context_group_creates_account(client, tenant, write_key):
    post(client, "/v1/track", {**track(user="u7"), "context": {"groupId": "acct-7"}}, key=write_key)
    user = EndUser.objects.for_tenant(tenant).get(user_id="u7")
    assert user.account.group_id == "acct-7"
    assert Event.objects.for_tenant(tenant).get().account == user.account


def test_alias_moves_anonymous_history_to_the_user(client, tenant, write_key):
    anonymous = {"type": "track", "anonymousId": "anon-1", "event": "Added photo", "messageId": "m-anon"}
    post(client, "/v1/batch", {"batch": [anonymous, {**anonymous, "messageId": "m-anon-2"}]}, key=write_key)
    post(client, "/v1/batch", {"batch": [track(user="u1")]}, key=write_key)
    assert EndUser.objects.for_tenant(tenant).count() == 2
    post(client, "/v1/alias", {"previousId": "anon-1", "userId": "u1"}, key=write_key)
    user = EndUser.objects.for_tenant(tenant).get()
    assert user.user_id == "u1"
    assert Event.objects.for_tenant(tenant).filter(end_user=user, activity__isnull=False).count() == 3
    assert DailyActivityCount.objects.for_tenant(tenant).get().count == 3
    # Later anonymous events with that id now belong to the user too.
    post(client, "/v1/track", {**anonymous, "messageId": "m-anon-3"}, key=write_key)
    assert DailyActivityCount.objects.for_tenant(tenant).get().count == 4


def test_identify_with_anonymous_id_links_earlier_events(client, tenant, write_key):
    post(client, "/v1/track", {"anonymousId": "a-5", "event": "Opened email"}, key=write_key)
    post(client, "/v1/identify", {"anonymousId": "a-5", "userId": "u5"}, key=write_key)
    user = EndUser.objects.for_tenant(tenant).get()
    assert user.user_id == "u5"
    assert Event.objects.for_tenant(tenant).filter(end_user=user).count() == 2


def test_page_and_screen_names(client, tenant, write_key):
    batch = [
        {"type": "page", "userId": "u1", "name": "Pricing"},
        {"type": "page", "userId": "u1", "name": None},
        {"type": "screen", "userId": "u1", "name": "Feed"},
    ]
    post(client, "/v1/batch", {"batch": batch}, key=write_key)
    names = set(Activity.objects.for_tenant(tenant).values_list("name", flat=True))
    assert names == {"Viewed Pricing Page", "Viewed Page", "Viewed Feed Screen"}


def test_catalog_records_first_seen(client, tenant, write_key):
    post(client, "/v1/batch", {"batch": [track(event="Edited photo", timestamp="2026-02-01T00:00:00Z")]}, key=write_key)
    activity = Activity.objects.for_tenant(tenant).get(name="Edited photo")
    assert activity.first_seen_at == datetime(2026, 2, 1, tzinfo=UTC)


def test_untracked_activity_becomes_tracked(client, tenant, write_key):
    Activity.objects.create(tenant=tenant, name="Invited friend")
    post(client, "/v1/batch", {"batch": [track(event="Invited friend")]}, key=write_key)
    assert Activity.objects.for_tenant(tenant).get(name="Invited friend").first_seen_at is not None


def test_batch_context_merges_into_messages(client, tenant, write_key):
    body = {
        "batch": [track(context={"page": {"path": "/x"}})],
        "context": {"library": {"name": "curl"}, "page": {"path": "/y"}},
    }
    post(client, "/v1/batch", body, key=write_key)
    payload = Event.objects.for_tenant(tenant).get().payload
    assert payload["context"]["library"] == {"name": "curl"}
    assert payload["context"]["page"] == {"path": "/x"}


def test_properties_beyond_64_bit_numbers_or_deeply_nested_are_stored_as_sent(client, tenant, write_key):
    # The PostgreSQL store serialises batches with orjson, which refuses both: they take json.dumps.
    deep = node = {}
    for _ in range(300):
        node["n"] = {}
        node = node["n"]
    properties = {"big": 2**70, "deep": deep, "when": "2026-12-01"}
    assert post(client, "/v1/batch", {"batch": [track(properties=properties)]}, key=write_key).status_code == 200
    assert Event.objects.for_tenant(tenant).get().payload["properties"] == properties


def test_rate_limit_answers_429_with_retry_after(client, tenant, write_key, settings):
    settings.INGEST_RATE_LIMIT_PER_SECOND = 1
    statuses = [post(client, "/v1/batch", {"batch": [track()]}, key=write_key) for _ in range(3)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    assert_error(limited[0], 429, "rate_limited")
    assert int(limited[0]["Retry-After"]) >= 1
    # Nothing of a refused request was stored.
    assert Event.objects.for_tenant(tenant).count() == len(statuses) - len(limited)


@pytest.fixture
def cache_state(monkeypatch):
    # The limiter remembers a cache outage per process: start and end each test without one.
    ratelimit.reset_outages()
    yield
    ratelimit.reset_outages()


UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}


def test_ingestion_keeps_working_when_redis_is_down(client, tenant, write_key, settings, cache_state, caplog):
    settings.CACHES = UNREACHABLE_REDIS
    first = post(client, "/v1/batch", {"batch": [track()]}, key=write_key)
    second = post(client, "/v1/track", track(), key=write_key)
    assert (first.status_code, second.status_code) == (200, 200), first.content
    assert Event.objects.for_tenant(tenant).count() == 2
    # Logged once, then the limiter stays off for a while instead of failing on every request.
    assert caplog.text.count("rate limit skipped") == 1


def test_the_limiter_tries_the_cache_again_after_a_while(tenant, write_key, cache_state, monkeypatch):
    calls = []

    def broken_cache(*args, **kwargs):
        calls.append(args)
        raise ConnectionError("redis is down")

    monkeypatch.setattr(ratelimit.CacheStore, "hit", broken_cache)
    monkeypatch.setattr(ratelimit.RedisStore, "hit", broken_cache)
    assert api.shared_state("wk_x") == (None, None)
    assert api.shared_state("wk_x") == (None, None)
    assert len(calls) == 1
    ratelimit.reset_outages()  # the retry delay has passed
    assert api.shared_state("wk_x") == (None, None)
    assert len(calls) == 2


def test_one_window_counts_every_request_of_a_key(tenant, write_key, settings, cache_state):
    settings.INGEST_RATE_LIMIT_PER_SECOND = 100
    counts = [api.shared_state("wk_counted")[0] for _ in range(3)]
    # Three calls in the same second count 1, 2, 3 (a window boundary may restart the count).
    assert counts in ([1, 2, 3], [1, 2, 1], [1, 1, 2]), counts


def test_unexpected_errors_are_a_json_500_with_cors(client, tenant, write_key, monkeypatch):
    def broken_ingest(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(api, "ingest", broken_ingest)
    response = post(client, "/v1/batch", {"batch": [track()]}, key=write_key, HTTP_ORIGIN="https://app.example.com")
    assert_error(response, 500, "internal_error")
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"


def test_a_database_error_is_a_json_503_with_retry_after(client, tenant, write_key, monkeypatch):
    from django.db import DataError

    def failing_ingest(**kwargs):
        raise DataError("value too long")

    monkeypatch.setattr(api, "ingest", failing_ingest)
    response = post(client, "/v1/batch", {"batch": [track()]}, key=write_key)
    assert_error(response, 503, "unavailable")
    assert response["Retry-After"].isdigit()


@pytest.mark.parametrize("path", ["/v1/nope", "/v1/batch/extra", "/v1/", "/v1/projects/wk_x"])
def test_other_v1_paths_are_a_json_404_with_cors(client, path):
    for response in (client.get(path), client.post(path, "{}", content_type="application/json")):
        assert_error(response, 404, "not_found")


def test_a_write_key_holding_a_nul_is_401(client, tenant):
    response = post(client, "/v1/batch", {"batch": [track()], "writeKey": "wk_abcdefghij\u0000l_secret"})
    assert_error(response, 401, "unauthorized")


def test_plain_http_posts_are_not_redirected_to_https(client, tenant, write_key, settings):
    # With DEBUG=False, SECURE_SSL_REDIRECT is on: a 301 would be replayed as a GET and the events lost.
    settings.SECURE_SSL_REDIRECT = True
    assert client.get(reverse("accounts:login")).status_code == 301  # the redirect is on for pages
    for path in ("/v1/batch", "/v1/b/"):
        response = post(client, path, {"batch": [track()]}, key=write_key)
        assert response.status_code == 200, (path, response.status_code)
    assert client.get(f"/v1/projects/{write_key}/settings").status_code == 200
    assert Event.objects.for_tenant(tenant).count() == 2


# --- analytics-next settings ------------------------------------------------------------


def settings_url(key):
    return f"/v1/projects/{key}/settings"


def test_project_settings_point_analytics_next_here(client, tenant, write_key, settings):
    settings.SITE_URL = "https://events.example.com/"
    response = client.get(settings_url(write_key), HTTP_ORIGIN="https://shop.example.com")
    assert response.status_code == 200
    assert response.json() == {
        "integrations": {
            "Segment.io": {"apiKey": write_key, "apiHost": "events.example.com/v1", "protocol": "https"},
        },
        "plan": {"track": {"__default": {"enabled": True}}},
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "metrics": {"sampleRate": 0},
    }
    assert response["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "GET" in response["Access-Control-Allow-Methods"]
    assert "max-age=300" in response["Cache-Control"]


def test_project_settings_follow_site_url(client, tenant, write_key, settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    integration = client.get(settings_url(write_key) + "/").json()["integrations"]["Segment.io"]
    assert (integration["apiHost"], integration["protocol"]) == ("127.0.0.1:8000/v1", "http")


def test_project_settings_need_a_live_write_key(client, tenant, write_key):
    read_key = api_key_create(tenant=tenant, kind=ApiKeyKind.READ, name="r")[1]
    revoked, revoked_plain = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="old")
    api_key_revoke(key=revoked)
    for key in (write_key[:-4] + "AAAA", "not-a-key", read_key, revoked_plain, "wk_abcdefghij%00l_secret"):
        response = client.get(settings_url(key), HTTP_ORIGIN="https://shop.example.com")
        assert_error(response, 404, "not_found")


def test_project_settings_only_answer_get(client, tenant, write_key):
    response = client.post(settings_url(write_key))
    assert_error(response, 405, "method_not_allowed")
    assert client.options(settings_url(write_key), HTTP_ORIGIN="https://shop.example.com").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_database_connection_lost_between_requests_is_replaced(postgres, tenant, write_key):
    """A restart or an idle timeout kills the worker's persistent connection: the next batches are stored.

    The live tracking path has no per-request `SELECT 1`; a dead connection used to
    answer 500 to every batch until it aged out (CONN_MAX_AGE).
    """
    from django.db import connection
    from django.test import Client

    client = Client()

    def kill_connection():
        with connection.get_new_connection(connection.get_connection_params()) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
            admin.commit()

    assert post(client, "/v1/batch", {"batch": [track("u1")]}, key=write_key).status_code == 200
    kill_connection()  # u1 and "Added photo" are known now: the one-statement path
    response = post(client, "/v1/batch", {"batch": [track("u1"), track("u1")]}, key=write_key)
    assert response.status_code == 200, response.content
    kill_connection()  # a new end user: the transaction
    response = post(client, "/v1/batch", {"batch": [track("u2")]}, key=write_key)
    assert response.status_code == 200, response.content
    assert Event.objects.for_tenant(tenant).count() == 4
    assert sorted(DailyActivityCount.objects.for_tenant(tenant).values_list("end_user__user_id", "count")) == [
        ("u1", 3),
        ("u2", 1),
    ]


def test_database_down_is_503_with_retry_after(tenant):
    """A real unreachable database (closed port), in a separate process: 503, never 2xx or 500."""
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client().post('/v1/batch', json.dumps({'batch': [{'type': 'track', 'userId': 'u', 'event': 'e'}]}),"
        " content_type='application/json', HTTP_AUTHORIZATION='Basic d2tfYWJjZGVmZ2hpamtsX3h4eHh4eHh4eHh4eDo=');"
        "print(r.status_code, r.get('Retry-After'), r.content.decode())"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "engagement_site.settings", "DB_CONNECT_TIMEOUT": "2"}
    env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:1/nowhere"
    env.pop("REDIS_URL", None)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    status, retry_after, body = out.stdout.strip().splitlines()[-1].split(" ", 2)
    assert status == "503", out.stdout + out.stderr
    assert retry_after.isdigit()
    assert json.loads(body)["code"] == "unavailable"


def test_schema_is_served(client):
    response = client.get(reverse("schema"))
    assert response.status_code == 200
    assert b"/v1/batch:" in response.content


@pytest.mark.django_db(transaction=True)
def test_a_failed_first_connection_is_not_tried_twice(tenant):
    """Only a persistent connection that died is replaced: an unreachable database answers 503 after one
    connect timeout, not two."""
    from django.db import OperationalError, connection

    from events import services

    connection.close()
    calls = []

    def unreachable():
        calls.append(1)
        raise OperationalError("connection refused")

    with pytest.raises(OperationalError):
        services._first_statement(unreachable)
    assert calls == [1]
