"""Segment's Webhook destination (/v1/webhook): single message bodies and batched arrays, each message's
`type` deciding what it is; auth by the Basic header or the write key in the URL; /v1/'s rules."""

import base64
import json

import pytest

from events.models import Activity, CustomerAccount, DailyActivityCount, EndUser, Event, RejectedMessage
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def post(client, body, key=None, path="/v1/webhook", **headers):
    if key:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    data = body if isinstance(body, bytes) else json.dumps(body)
    # What Segment's destination sends: JSON, its user agent, any headers set in its settings.
    return client.post(path, data, content_type="application/json", HTTP_USER_AGENT="Segment.io/1.0", **headers)


# As Segment forwards them: the full message, with its own receivedAt/sentAt and Segment's extra keys.
def segment_message(kind, message_id, **fields):
    return {
        "version": 1, "type": kind, "messageId": message_id, "userId": "u-1", "anonymousId": "anon-1",
        "channel": "server", "projectId": "ws_1", "context": {"library": {"name": "analytics.js", "version": "5.2"}},
        "integrations": {}, "originalTimestamp": "2026-12-01T09:00:00.000Z", "sentAt": "2026-12-01T09:00:00.100Z",
        "receivedAt": "2026-12-01T09:00:00.300Z", "timestamp": "2026-12-01T09:00:00.200Z", **fields,
    }  # fmt: skip


def test_a_single_message_body_is_stored_as_its_type_says(client, tenant, write_key):
    response = post(client, segment_message("track", "m-1", event="Added photo", properties={"n": 1}), key=write_key)
    assert response.status_code == 200 and response.json() == {"success": True}
    event = Event.objects.for_tenant(tenant).get()
    assert (event.type, event.activity.name, event.message_id) == ("track", "Added photo", "m-1")


def test_a_batched_array_body_holds_every_kind_of_call(client, tenant, write_key):
    body = [
        segment_message("identify", "m-1", traits={"email": "ann@example.com"}),
        segment_message("group", "m-2", groupId="acme", traits={"name": "Acme"}),
        segment_message("track", "m-3", event="Added photo"),
        segment_message("page", "m-4", name="Pricing", category="Docs"),
        segment_message("screen", "m-5", name="Feed"),
        segment_message("alias", "m-6", previousId="anon-1"),
    ]
    assert post(client, body, key=write_key).json() == {"success": True}
    assert Event.objects.for_tenant(tenant).count() == 6
    user = EndUser.objects.for_tenant(tenant).get(user_id="u-1")
    assert user.traits == {"email": "ann@example.com"}
    assert user.account == CustomerAccount.objects.for_tenant(tenant).get(group_id="acme", name="Acme")
    names = set(Activity.objects.for_tenant(tenant).values_list("name", flat=True))
    assert names == {"Added photo", "Viewed Docs Pricing Page", "Viewed Feed Screen"}


def test_the_write_key_may_be_in_the_url(client, tenant, write_key):
    assert (
        post(client, [segment_message("track", "m-1", event="e")], path=f"/v1/webhook/{write_key}").status_code == 200
    )
    assert Event.objects.for_tenant(tenant).count() == 1


def test_without_a_known_key_it_is_401(client, tenant, write_key):
    assert_error(post(client, [segment_message("track", "m-1", event="e")]), 401, "unauthorized")
    assert_error(
        post(client, segment_message("track", "m", event="e"), path="/v1/webhook/wk_nope_nope"), 401, "unauthorized"
    )
    assert_error(
        post(client, segment_message("track", "m", event="e"), key="wk_wrongwrongwro_nope"), 401, "unauthorized"
    )
    assert Event.objects.unscoped().count() == 0


def test_a_redelivered_message_is_a_duplicate(client, tenant, write_key):
    body = [segment_message("track", "m-1", event="Added photo"), segment_message("track", "m-2", event="Added photo")]
    post(client, body, key=write_key)
    post(client, body, key=write_key)  # Segment retries a delivery it thinks failed
    post(client, body[0], key=write_key)
    assert Event.objects.for_tenant(tenant).count() == 2
    assert DailyActivityCount.objects.for_tenant(tenant).get().count == 2


def test_a_bad_message_in_an_array_is_rejected_alone(client, tenant, write_key):
    body = [segment_message("track", "m-1", event="e"), segment_message("launch", "m-2"), {"type": "track"}]
    assert post(client, body, key=write_key).status_code == 200
    assert Event.objects.for_tenant(tenant).count() == 1
    reasons = sorted(RejectedMessage.objects.for_tenant(tenant).values_list("field", flat=True))
    assert reasons == ["type", "userId"]


def test_a_bad_single_message_is_400_naming_its_problem(client, tenant, write_key):
    response = post(client, segment_message("launch", "m-1"), key=write_key)
    assert_error(response, 400, "invalid_message")
    assert "type must be one of" in response.json()["message"]
    assert RejectedMessage.objects.for_tenant(tenant).get().message_id == "m-1"


@pytest.mark.parametrize("body", [b"", b"42", b'"track"', b"nonsense", b"[1,", b'{"type":"track"} {}'])
def test_a_body_that_is_no_message_nor_array_is_400(client, tenant, write_key, body):
    response = post(client, body, key=write_key)
    assert response.status_code == 400
    assert response.json()["code"] in {"invalid_body", "invalid_json"}


def test_the_limits_of_v1_apply(client, tenant, write_key):
    big = segment_message("track", "m-big", event="e", properties={"p": "x" * 33_000})
    assert post(client, [big, segment_message("track", "m-1", event="e")], key=write_key).status_code == 200
    assert RejectedMessage.objects.for_tenant(tenant).get().message_id == "m-big"
    assert_error(post(client, big, key=write_key), 400, "message_too_large")
    huge = [segment_message("track", f"m-{i}", event="e", properties={"p": "x" * 20_000}) for i in range(30)]
    assert_error(post(client, huge, key=write_key), 400, "request_too_large")
    many = [{"type": "track", "userId": "u", "event": "e", "messageId": f"n-{i}"} for i in range(2_501)]
    response = post(client, many, key=write_key)
    assert response.status_code == 200 and response.json()["rejected"] == ["n-2500"]


def test_it_answers_with_cors_and_json_like_every_v1_path(client, tenant, write_key):
    response = client.options("/v1/webhook", HTTP_ORIGIN="https://app.example.com")
    assert response.status_code == 200 and response["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert_error(client.get("/v1/webhook"), 405, "method_not_allowed")


def test_the_setup_page_gives_segments_settings_step_by_step(owner_client, tenant, write_key):
    page = owner_client.get(f"/t/{tenant.slug}/events/setup/").content.decode()
    assert "Forward from Segment" in page and "Webhooks (Actions)" in page
    assert "/v1/webhook</code>" in page and "/v1/webhook/wk_" in page  # header or key in the URL
    assert "Batch Size" in page and "Authorization" in page
