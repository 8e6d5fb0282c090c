"""The read API's base: read-key authentication, one error shape, and the guard on TenantAPIView."""

import base64

import pytest
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny

from accounts.api import TenantAPIView
from accounts.models import ApiKeyKind
from accounts.services import api_key_create, api_key_revoke
from tests.helpers import assert_error

URL = "/api/v1/tenant"


@pytest.fixture
def read_key(tenant):
    return api_key_create(tenant=tenant, kind=ApiKeyKind.READ, name="Backend")


@pytest.fixture
def write_key(tenant):
    return api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="Web")


def bearer(plaintext):
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}


def basic(user, password=""):
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_it_works(client, tenant, read_key):
    _key, plaintext = read_key

    response = client.get(URL, **bearer(plaintext))

    assert response.status_code == 200
    assert response.json() == {"name": "Acme", "slug": "acme", "product_name": "Rocket", "time_zone": "Europe/Paris"}


def test_it_answers_for_the_keys_own_tenant(client, tenant, other_tenant):
    _key, plaintext = api_key_create(tenant=other_tenant, kind=ApiKeyKind.READ, name="Globex backend")

    response = client.get(URL, **bearer(plaintext))

    assert response.json()["name"] == "Globex"


def test_it_takes_the_key_as_basic_user_name(client, tenant, read_key):
    _key, plaintext = read_key

    assert client.get(URL, **basic(plaintext)).json()["slug"] == "acme"
    # Whatever is sent as the password is ignored, as with Segment's write key.
    assert client.get(URL, **basic(plaintext, "ignored")).json()["slug"] == "acme"


def test_it_needs_a_key(client, db):
    response = client.get(URL)

    error = assert_error(response, 401, "not_authenticated", field=None)
    assert "read key" in error["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "headers",
    [
        bearer("rk_aaaaaaaaaaaa_" + "b" * 43),
        bearer("nonsense"),
        basic("rk_aaaaaaaaaaaa_" + "b" * 43),
        {"HTTP_AUTHORIZATION": "Basic !!!not-base64!!!"},
    ],
    ids=["unknown-bearer", "garbage-bearer", "unknown-basic", "broken-basic"],
)
def test_it_refuses_an_unknown_key(client, db, headers):
    response = client.get(URL, **headers)

    assert_error(response, 401, field=None)


def test_it_refuses_a_revoked_key(client, tenant, read_key):
    key, plaintext = read_key
    api_key_revoke(key=key)

    response = client.get(URL, **bearer(plaintext))

    error = assert_error(response, 401, "authentication_failed", field=None)
    assert "revoked" in error["message"]


def test_it_refuses_a_write_key(client, tenant, write_key):
    _key, plaintext = write_key

    response = client.get(URL, **bearer(plaintext))

    error = assert_error(response, 403, "permission_denied", field=None)
    assert "use a read key" in error["message"]
    assert "Acme" not in response.content.decode()


@pytest.mark.parametrize("param", ["key", "api_key"])
def test_it_refuses_a_key_in_the_url(client, tenant, read_key, param):
    _key, plaintext = read_key

    response = client.get(URL, {param: plaintext})
    assert_error(response, 401, field=None)
    assert "Acme" not in response.content.decode()

    # Even alongside a good header: the key in the URL has leaked into logs already.
    response = client.get(URL, {param: plaintext}, **bearer(plaintext))
    error = assert_error(response, 401, field=None)
    assert "Authorization header" in error["message"]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_it_is_read_only(client, tenant, read_key, method):
    _key, plaintext = read_key

    response = getattr(client, method)(URL, {"name": "Hacked"}, content_type="application/json", **bearer(plaintext))

    assert_error(response, 405, "method_not_allowed", field=None)
    tenant.refresh_from_db()
    assert tenant.name == "Acme"


def test_it_ignores_a_session(client, owner, tenant):
    client.force_login(owner)

    assert_error(client.get(URL), 401, field=None)


def test_it_publishes_an_openapi_schema(client, db):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    text = response.content.decode()
    assert text.startswith("openapi: 3")
    assert "/api/v1/tenant:" in text
    assert "readKey" in text


def test_it_publishes_the_schema_as_json(client, db):
    response = client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert "/api/v1/tenant" in schema["paths"]
    assert schema["components"]["securitySchemes"]["readKey"]["scheme"] == "bearer"


# --- The guard on TenantAPIView subclasses ---------------------------------------


@pytest.mark.parametrize("hook", ["initial", "get_permissions", "get_authenticators", "perform_authentication"])
def test_subclasses_cannot_override_scoping_hooks(hook):
    with pytest.raises(TypeError, match="may not override tenant scoping"):
        type("Sneaky", (TenantAPIView,), {hook: lambda self, *a, **k: None})


@pytest.mark.parametrize(
    "attribute,value",
    [
        ("permission_classes", [AllowAny]),
        ("permission_classes", []),
        ("authentication_classes", [SessionAuthentication]),
        ("authentication_classes", []),
    ],
    ids=["permission-AllowAny", "permission-empty", "authentication-session", "authentication-empty"],
)
def test_subclasses_cannot_replace_auth_classes(attribute, value):
    with pytest.raises(TypeError, match="may not override tenant scoping"):
        type("Sneaky", (TenantAPIView,), {attribute: value})


def test_subclasses_cannot_replace_hooks_through_a_mixin():
    class OpenMixin:
        permission_classes = [AllowAny]

        def initial(self, request, *args, **kwargs):
            pass

    with pytest.raises(TypeError, match="may not override tenant scoping"):
        type("Sneaky", (OpenMixin, TenantAPIView), {})


def test_ordinary_subclasses_are_fine():
    class Fine(TenantAPIView):
        def get(self, request):
            return None

    assert Fine.permission_classes == TenantAPIView.permission_classes
