"""The "Send events" page: snippets for the tenant's host and key, endpoints, limits, error codes."""

from django.urls import reverse

from accounts.models import ApiKeyKind
from accounts.services import api_key_create
from tests.conftest import client_for


def setup_url(tenant):
    return reverse("events:setup", args=[tenant.slug])


def test_it_works(client, viewer, tenant, settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    key, _ = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="Web")
    api_key_create(tenant=tenant, kind=ApiKeyKind.READ, name="Reports")
    response = client_for(client, viewer).get(setup_url(tenant))
    content = response.content.decode()
    assert response.status_code == 200
    assert f"-u {key.prefix}_...:" in content
    # The snippets give up within seconds when the host does not answer, and mark a test event.
    assert "--connect-timeout 5 --max-time 10" in content
    assert "analytics.timeout = 5" in content and "analytics.sync_mode = True" in content
    assert '"context":{"testEvent":true}' in content
    assert "http://127.0.0.1:8000/v1/track" in content
    assert 'analytics.host = "http://127.0.0.1:8000"' in content
    assert 'apiHost: "127.0.0.1:8000/v1", protocol: "http"' in content
    # analytics-next loads its settings from cdnURL (our /v1/projects/<key>/settings), not Segment's CDN.
    assert f'{{writeKey: "{key.prefix}_...", cdnURL: "http://127.0.0.1:8000"}}' in content
    assert 'analytics._cdn = "http://127.0.0.1:8000";' in content
    # Segment's standard snippet, loading analytics.js from us (events/cdn.py), never from Segment's CDN.
    assert 't.src="http://127.0.0.1:8000/analytics.js/v1/" + key + "/analytics.min.js"' in content
    assert "cdn.segment.com/analytics" not in content
    assert "rk_" not in content  # read keys are secret: never suggested here
    for text in (
        "/v1/batch",
        "/v1/import, /v1/b",
        "/v1/alias",
        "32 KB per message",
        "512,000 bytes per request",
        "2,500 messages per batch",
        "event names up to 255 characters",
        "in the years 1970–2199",
        "request_too_large",
        "rate_limited",
        "Retry-After",
    ):
        assert text in content, text
    assert 'href="/api/schema/"' in content and 'href="/api/docs/"' in content


def test_without_a_key_it_uses_a_placeholder(owner_client, tenant):
    content = owner_client.get(setup_url(tenant)).content.decode()
    assert "-u YOUR_WRITE_KEY:" in content
    assert "Create a write key" in content


def test_a_revoked_key_is_not_suggested(owner_client, tenant):
    from accounts.services import api_key_revoke

    key, _ = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="Old")
    api_key_revoke(key=key)
    assert key.prefix not in owner_client.get(setup_url(tenant)).content.decode()


def test_it_checks_the_tenant(outsider_client, tenant):
    assert outsider_client.get(setup_url(tenant)).status_code == 404


def test_it_only_answers_get(owner_client, tenant):
    assert owner_client.post(setup_url(tenant)).status_code == 405
