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


TRACKING_PATHS = ["/v1/batch", "/v1/track", "/v1/identify", "/v1/group", "/v1/page", "/v1/screen", "/v1/alias"]


def schema_json(client):
    response = client.get(reverse("schema"), {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_the_schema_describes_the_tracking_api(client, db):
    schema = schema_json(client)
    for path in TRACKING_PATHS:
        operation = schema["paths"][path]["post"]
        assert set(operation["responses"]) == {"200", "400", "401", "429", "503"}, path
        body = operation["requestBody"]["content"]
        assert set(body) == {"application/json", "text/plain"}
        assert body["application/json"]["schema"]["$ref"].startswith("#/components/schemas/Segment")
        assert "Retry-After" in operation["responses"]["429"]["headers"]
    assert "/v1/import, /v1/b" in schema["paths"]["/v1/batch"]["post"]["description"]
    assert "/v1/t" in schema["paths"]["/v1/track"]["post"]["description"]
    assert schema["components"]["schemas"]["SegmentTrack"]["required"] == ["event"]
    assert schema["components"]["securitySchemes"]["writeKey"]["scheme"] == "basic"
    assert set(schema["paths"]["/v1/projects/{writeKey}/settings"]) == {"get"}
    assert "/api/v1/tenant" in schema["paths"]  # the read API is still there


def test_the_schema_is_valid_openapi(client, db):
    from drf_spectacular.validation import validate_schema

    validate_schema(schema_json(client))


def test_tracking_operations_are_not_repeated_as_read_api(client, db):
    content = client.get(reverse("api_docs")).content.decode()
    assert "tracking_batch" not in content  # the schema's operation ids are only shown for the read API
    assert "/v1/projects/&lt;write key&gt;/settings" in content
