"""The live debugger: latest events and rejected messages, the JSON feed it polls, the empty state."""

import json
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from accounts.models import ApiKeyKind
from accounts.services import api_key_create
from tests.conftest import client_for

from .pages_helpers import send, track


def debugger_url(tenant):
    return reverse("events:debugger", args=[tenant.slug])


def feed_url(tenant, after=None):
    url = reverse("events:debugger_feed", args=[tenant.slug])
    return url if after is None else f"{url}?after={after}"


@pytest.fixture
def viewer_client(client, viewer):
    return client_for(client, viewer)


def test_the_empty_state_says_how_to_send_the_first_event(owner_client, tenant, settings):
    settings.SITE_URL = "https://engage.example.com"
    key, _ = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="Backend")
    response = owner_client.get(debugger_url(tenant))
    content = response.content.decode()
    assert response.status_code == 200
    assert "Send your first event" in content
    assert f"{key.prefix}_…" in content
    assert reverse("accounts:api_keys", args=[tenant.slug]) in content
    assert f"-u {key.prefix}_...:" in content
    assert "https://engage.example.com/v1/track" in content
    assert "pip install segment-analytics-python" in content
    assert 'analytics.host = "https://engage.example.com"' in content
    assert 'apiHost: "engage.example.com/v1", protocol: "https"' in content
    # CSP: our own script file, no inline script or style.
    assert '<script src="/static/js/debugger.js" defer></script>' in content
    assert "<script>" not in content and "style=" not in content


def test_a_viewer_without_keys_is_told_to_ask_an_admin(viewer_client, tenant):
    content = viewer_client.get(debugger_url(tenant)).content.decode()
    assert "You have no write key yet." in content
    assert "Ask an admin of Acme" in content
    assert "YOUR_WRITE_KEY" in content


def test_it_shows_the_latest_events_and_rejections(viewer_client, tenant):
    send(
        tenant,
        track("u1", "Added photo", datetime(2026, 5, 1, 9, tzinfo=UTC), properties={"filter": "sepia"}),
        {"type": "track", "userId": "u2"},  # no event name: rejected
    )
    response = viewer_client.get(debugger_url(tenant))
    content = response.content.decode()
    assert response.status_code == 200
    assert "Send your first event" in content  # still in the page for the script, but hidden
    assert 'id="debugger-empty" class="card" hidden' in content
    assert "<strong>Added photo</strong>" in content
    assert "&quot;filter&quot;: &quot;sepia&quot;" in content  # the raw JSON, expandable
    assert 'class="feed-item rejected"' in content
    assert "event must be a non-empty string" in content


def test_the_feed_returns_new_items_after_the_cursor(viewer_client, tenant):
    send(tenant, track("u1", "Logged in"))
    first = viewer_client.get(feed_url(tenant)).json()
    assert [item["name"] for item in first["items"]] == ["Logged in"]
    event = first["items"][0]
    assert event["kind"] == "event" and event["user"] == "u1" and event["payload"]["event"] == "Logged in"

    again = viewer_client.get(feed_url(tenant, first["cursor"])).json()
    assert again == {"cursor": first["cursor"], "items": []}

    send(tenant, track("u2", "Shared photo"), {"type": "track", "event": "Oops"})
    later = viewer_client.get(feed_url(tenant, first["cursor"])).json()
    kinds = sorted((item["kind"], item["name"]) for item in later["items"])
    assert kinds == [("event", "Shared photo"), ("rejected", "Rejected")]
    rejected = next(item for item in later["items"] if item["kind"] == "rejected")
    assert rejected["reason"] == "userId or anonymousId is required"
    assert rejected["source"] == "api"
    assert rejected["payload"]["event"] == "Oops"
    assert later["cursor"] != first["cursor"]


def test_the_feed_ignores_a_bad_cursor(viewer_client, tenant):
    send(tenant, track("u1", "Logged in"))
    response = viewer_client.get(feed_url(tenant, "garbage"))
    assert response.status_code == 200
    assert len(response.json()["items"]) == 1


def test_the_feed_is_capped_and_newest_first(viewer_client, tenant):
    send(tenant, *[track(f"u{i}", "Logged in", messageId=f"m-{i:03d}") for i in range(60)])
    items = viewer_client.get(feed_url(tenant)).json()["items"]
    assert len(items) == 50
    assert items[0]["message_id"] == "m-059"


def test_query_counts_are_bounded(viewer_client, tenant, django_assert_max_num_queries):
    send(tenant, *[track(f"u{i}", f"Event {i % 7}", context={"groupId": f"g{i % 3}"}) for i in range(40)])
    send(tenant, *[{"type": "track", "userId": f"bad{i}"} for i in range(20)])
    with django_assert_max_num_queries(6):
        assert viewer_client.get(feed_url(tenant)).status_code == 200
    with django_assert_max_num_queries(9):
        assert viewer_client.get(debugger_url(tenant)).status_code == 200


def test_it_never_shows_another_tenants_events(client, tenant, other_tenant, outsider, owner):
    send(tenant, track("acme-user", "Acme secret"))
    send(other_tenant, track("globex-user", "Globex thing"))
    client.force_login(outsider)
    assert client.get(debugger_url(tenant)).status_code == 404
    assert client.get(feed_url(tenant)).status_code == 404
    items = client.get(feed_url(other_tenant)).json()["items"]
    assert [item["name"] for item in items] == ["Globex thing"]
    assert b"Acme secret" not in client.get(debugger_url(other_tenant)).content


def test_the_feed_only_answers_get(viewer_client, tenant):
    assert viewer_client.post(feed_url(tenant)).status_code == 405
    assert viewer_client.post(debugger_url(tenant)).status_code == 405


def test_the_feed_json_is_plain_data(viewer_client, tenant):
    send(tenant, track("u1", "<script>alert(1)</script>"))
    response = viewer_client.get(feed_url(tenant))
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["items"][0]["name"] == "<script>alert(1)</script>"
    page = viewer_client.get(debugger_url(tenant)).content.decode()
    assert "<script>alert(1)</script>" not in page
