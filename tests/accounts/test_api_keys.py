"""API keys: created on the page (plaintext shown once), stored hashed, revoked, authenticated."""

import hashlib
import re
import string
from datetime import timedelta

import pytest
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from accounts.models import ApiKey, ApiKeyKind
from accounts.services import api_key_authenticate, api_key_create

URL_SAFE = set(string.ascii_letters + string.digits + "-_")
KEY_RE = re.compile(r"\b[wr]k_[a-z0-9]{12}_[A-Za-z0-9_-]+")


def keys_url(tenant):
    return f"/t/{tenant.slug}/settings/api-keys/"


def revoke_url(tenant, key):
    return f"/t/{tenant.slug}/settings/api-keys/{key.public_id}/revoke/"


def shown_key(response) -> str:
    found = KEY_RE.findall(response.content.decode())
    assert len(found) == 1, found
    return found[0]


def key_rows(tenant):
    return sorted(ApiKey.objects.filter(tenant=tenant).values_list("prefix", "kind", "name", "revoked_at"))


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def write_key(tenant):
    key, plaintext = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="Web app")
    return key, plaintext


@pytest.fixture
def read_key(tenant):
    key, plaintext = api_key_create(tenant=tenant, kind=ApiKeyKind.READ, name="Backend")
    return key, plaintext


def test_it_works(admin_client, admin_user, tenant):
    response = admin_client.post(keys_url(tenant), {"name": "Web app (browser)", "kind": "write"})

    assertContains(response, "shown <strong>only once</strong>", html=False)
    plaintext = shown_key(response)
    assert plaintext.startswith("wk_")
    key = ApiKey.objects.get(tenant=tenant)
    assert (key.name, key.kind, key.created_by) == ("Web app (browser)", ApiKeyKind.WRITE, admin_user)
    assert plaintext.startswith(key.prefix + "_")
    # Only the prefix and a SHA-256 of the key are stored; the plaintext is in no column.
    assert key.secret_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    secret = plaintext[len(key.prefix) + 1 :]
    for field in ApiKey._meta.concrete_fields:
        value = str(getattr(key, field.attname))
        assert plaintext not in value
        assert secret not in value
    # The page may be cached nowhere, and a reload shows only the prefix.
    assert "no-store" in response["Cache-Control"]
    reload = admin_client.get(keys_url(tenant))
    assertContains(reload, key.prefix)
    assertNotContains(reload, secret)
    assertNotContains(reload, "only once")


def test_it_creates_a_read_key(admin_client, tenant):
    response = admin_client.post(keys_url(tenant), {"name": "Backend", "kind": "read"})

    plaintext = shown_key(response)
    assert plaintext.startswith("rk_")
    assert ApiKey.objects.get(tenant=tenant).kind == ApiKeyKind.READ
    assert api_key_authenticate(plaintext, ApiKeyKind.READ).tenant == tenant


@pytest.mark.parametrize("kind", [ApiKeyKind.WRITE, ApiKeyKind.READ])
def test_keys_have_enough_randomness(tenant, kind):
    plaintexts = [api_key_create(tenant=tenant, kind=kind, name=f"k{i}")[1] for i in range(20)]

    for plaintext in plaintexts:
        prefix, lookup, secret = plaintext[:3], plaintext[3:15], plaintext[16:]
        assert prefix == {"write": "wk_", "read": "rk_"}[kind]
        assert plaintext[15] == "_"
        assert set(lookup) <= set(string.ascii_lowercase + string.digits) and len(lookup) == 12
        # URL-safe base64: 6 bits a character; >= 128 bits of randomness in the secret alone.
        assert set(secret) <= URL_SAFE
        assert len(secret) * 6 >= 128
    assert len(set(plaintexts)) == 20
    assert len({p[16:] for p in plaintexts}) == 20
    assert len({p[:15] for p in plaintexts}) == 20


@pytest.mark.parametrize("actor", ["viewer", "editor"])
def test_members_can_see_the_list(client, request, tenant, write_key, actor):
    key, plaintext = write_key
    client.force_login(request.getfixturevalue(actor))

    response = client.get(keys_url(tenant))

    assertContains(response, "Web app")
    assertContains(response, key.prefix)
    assertNotContains(response, plaintext)
    assertNotContains(response, "Create key")
    assertNotContains(response, "Revoke")


@pytest.mark.parametrize("actor", ["viewer", "editor"])
def test_it_checks_role_to_create(client, request, tenant, actor):
    client.force_login(request.getfixturevalue(actor))

    response = client.post(keys_url(tenant), {"name": "Sneaky", "kind": "read"})

    assert response.status_code == 403
    assert not ApiKey.objects.filter(tenant=tenant).exists()
    assert not KEY_RE.search(response.content.decode())


@pytest.mark.parametrize("actor", ["viewer", "editor"])
def test_it_checks_role_to_revoke(client, request, tenant, write_key, actor):
    key, plaintext = write_key
    client.force_login(request.getfixturevalue(actor))

    response = client.post(revoke_url(tenant, key))

    assert response.status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None
    assert api_key_authenticate(plaintext, ApiKeyKind.WRITE) == key


def test_it_revokes(admin_client, tenant, write_key):
    key, plaintext = write_key
    assert api_key_authenticate(plaintext, ApiKeyKind.WRITE) == key

    response = admin_client.post(revoke_url(tenant, key))

    assertRedirects(response, keys_url(tenant), fetch_redirect_response=False)
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert not key.is_active
    assert api_key_authenticate(plaintext, ApiKeyKind.WRITE) is None
    page = admin_client.get(keys_url(tenant))
    assertContains(page, "was revoked")
    assertContains(page, "revoked ")


def test_revoking_twice_keeps_the_first_date(admin_client, tenant, write_key):
    key, _ = write_key
    admin_client.post(revoke_url(tenant, key))
    key.refresh_from_db()
    first = key.revoked_at

    admin_client.post(revoke_url(tenant, key))

    key.refresh_from_db()
    assert key.revoked_at == first


def test_another_tenants_key_is_404(admin_client, tenant, other_tenant):
    foreign, plaintext = api_key_create(tenant=other_tenant, kind=ApiKeyKind.WRITE, name="Globex web")

    response = admin_client.post(revoke_url(tenant, foreign))

    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None
    assert api_key_authenticate(plaintext, ApiKeyKind.WRITE) == foreign
    assertNotContains(admin_client.get(keys_url(tenant)), "Globex web")


def test_the_list_is_404_for_another_tenant(outsider_client, tenant):
    response = outsider_client.post(keys_url(tenant), {"name": "Sneaky", "kind": "read"})

    assert response.status_code == 404
    assert not ApiKey.objects.filter(tenant=tenant).exists()


def test_a_key_authenticates_only_as_its_kind(write_key, read_key):
    (wkey, wplain), (rkey, rplain) = write_key, read_key

    assert api_key_authenticate(wplain, ApiKeyKind.WRITE) == wkey
    assert api_key_authenticate(rplain, ApiKeyKind.READ) == rkey
    assert api_key_authenticate(wplain, ApiKeyKind.READ) is None
    assert api_key_authenticate(rplain, ApiKeyKind.WRITE) is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda p: p[:-1] + ("A" if p[-1] != "A" else "B"),  # wrong secret, right prefix
        lambda p: p[:16],  # prefix only
        lambda p: p[:15],
        lambda p: p + "x",
        lambda p: p.upper(),
        lambda p: "",
        lambda p: None,
        lambda p: "wk_" + "a" * 60,
    ],
)
def test_a_wrong_key_does_not_authenticate(write_key, mangle):
    _key, plaintext = write_key

    assert api_key_authenticate(mangle(plaintext), ApiKeyKind.WRITE) is None


def test_it_records_last_use(write_key):
    key, plaintext = write_key
    assert key.last_used_at is None

    api_key_authenticate(plaintext, ApiKeyKind.WRITE)

    key.refresh_from_db()
    assert key.last_used_at is not None
    assert timezone.now() - key.last_used_at < timedelta(seconds=30)


def test_it_records_last_use_at_most_once_a_minute(write_key):
    key, plaintext = write_key
    api_key_authenticate(plaintext, ApiKeyKind.WRITE)
    key.refresh_from_db()
    first = key.last_used_at

    api_key_authenticate(plaintext, ApiKeyKind.WRITE)
    key.refresh_from_db()
    assert key.last_used_at == first

    # A use more than a minute later is recorded.
    ApiKey.objects.unscoped().filter(pk=key.pk).update(last_used_at=first - timedelta(minutes=2))
    api_key_authenticate(plaintext, ApiKeyKind.WRITE)
    key.refresh_from_db()
    assert key.last_used_at > first - timedelta(seconds=1)


def test_a_failed_authentication_does_not_record_use(write_key):
    key, plaintext = write_key

    api_key_authenticate(plaintext, ApiKeyKind.READ)
    api_key_authenticate(plaintext[:-1] + "?", ApiKeyKind.WRITE)

    key.refresh_from_db()
    assert key.last_used_at is None


@pytest.mark.parametrize(
    "data,message",
    [
        ({"name": "", "kind": "write"}, "This field is required."),
        ({"name": "   ", "kind": "write"}, "This field is required."),
        ({"name": "Web", "kind": "admin"}, "Select a valid choice. admin is not one of the available choices."),
        ({"name": "Web"}, "This field is required."),
        ({"name": "x" * 101, "kind": "write"}, "Ensure this value has at most 100 characters (it has 101)."),
    ],
)
def test_it_rejects_bad_input(admin_client, tenant, data, message):
    response = admin_client.post(keys_url(tenant), data)

    assertContains(response, message, status_code=400)
    assert not ApiKey.objects.filter(tenant=tenant).exists()
    assert not KEY_RE.search(response.content.decode())
