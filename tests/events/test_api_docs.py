"""The public API reference at /api/docs/: server-rendered from the OpenAPI schema, no login, no CDN."""

from django.urls import reverse


def test_it_works_without_login(client, db):
    response = client.get(reverse("api_docs"))
    content = response.content.decode()
    assert response.status_code == 200
    assert "API reference" in content
    # The Segment tracking endpoints and their limits.
    for text in ("/v1/batch", "/v1/track", "/v1/identify", "/v1/group", "/v1/alias", "2,500 messages per batch"):
        assert text in content, text
    # The read API, from the schema.
    assert "GET /api/v1/tenant" in content
    assert 'href="/api/schema/"' in content


def test_it_loads_nothing_from_elsewhere(client, db):
    content = client.get(reverse("api_docs")).content.decode()
    assert "cdn" not in content.lower()
    assert "swagger" not in content.lower()
    assert "<script>" not in content and "style=" not in content


def test_it_only_answers_get(client, db):
    assert client.post(reverse("api_docs")).status_code == 405
