"""Django's admin is for platform superusers only: not staff, not tenant owners."""

import pytest
from pytest_django.asserts import assertContains, assertNotContains

from accounts.models import ApiKeyKind, Role, User
from accounts.services import api_key_create, invitation_create

CHANGELISTS = ["tenant", "membership", "apikey", "invitation", "user"]


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser(email="root@platform.test", password="root-passphrase-1234")


@pytest.fixture
def staff_user(db):
    return User.objects.create_user(email="staff@platform.test", password="staff-passphrase-1234", is_staff=True)


@pytest.fixture
def data(tenant, other_tenant, owner, viewer):
    api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="Acme web")
    api_key_create(tenant=other_tenant, kind=ApiKeyKind.READ, name="Globex backend")
    invitation_create(tenant=tenant, email="nora@acme.test", role=Role.VIEWER, department="other", invited_by=owner)


def test_it_works(client, superuser, data):
    client.force_login(superuser)

    response = client.get("/admin/")

    assertContains(response, "engagement_site platform admin")
    for label, model in [("Tenants", "tenant"), ("Memberships", "membership"), ("Api keys", "apikey")]:
        assertContains(response, label)
        assertContains(response, f'href="/admin/accounts/{model}/"')


@pytest.mark.parametrize("model", CHANGELISTS)
def test_changelists_open(client, superuser, data, model):
    client.force_login(superuser)

    assert client.get(f"/admin/accounts/{model}/").status_code == 200


@pytest.mark.parametrize(
    "model,query,found,not_found",
    [
        ("tenant", "glob", "Globex", "Rocket"),
        ("membership", "vic.viewer", "vic.viewer@acme.test", "olivia.owner@acme.test"),
        ("apikey", "Globex", "Globex backend", "Acme web"),
        ("invitation", "nora", "nora@acme.test", "Globex"),
        ("user", "oscar", "oscar.outsider@globex.test", "olivia.owner@acme.test"),
    ],
)
def test_changelists_search(client, superuser, data, model, query, found, not_found):
    client.force_login(superuser)

    response = client.get(f"/admin/accounts/{model}/", {"q": query})

    assertContains(response, found)
    assertNotContains(response, not_found)


def test_it_never_shows_key_secrets(client, superuser, tenant):
    key, plaintext = api_key_create(tenant=tenant, kind=ApiKeyKind.READ, name="Backend")
    client.force_login(superuser)

    response = client.get(f"/admin/accounts/apikey/{key.pk}/change/")

    assert response.status_code == 200
    assertNotContains(response, plaintext)
    assertNotContains(response, plaintext[16:])
    # The hash is shown read-only, never as an editable field.
    assertNotContains(response, 'name="secret_hash"')
    assertNotContains(response, 'name="prefix"')


@pytest.mark.parametrize("actor", ["staff_user", "owner"])
@pytest.mark.parametrize("path", ["/admin/", "/admin/accounts/tenant/", "/admin/accounts/apikey/"])
def test_it_checks_superuser(client, request, tenant, actor, path):
    """Staff without superuser, and tenant owners, are sent to the admin login."""
    client.force_login(request.getfixturevalue(actor))

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_a_staff_user_cannot_change_anything(client, staff_user, tenant):
    client.force_login(staff_user)

    response = client.post(f"/admin/accounts/tenant/{tenant.pk}/change/", {"name": "Hacked", "slug": "acme"})

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    tenant.refresh_from_db()
    assert tenant.name == "Acme"


def test_logging_in_on_the_admin_gives_staff_no_access(client, staff_user):
    client.post("/admin/login/", {"username": staff_user.email, "password": "staff-passphrase-1234", "next": "/admin/"})

    # Django's admin login accepts is_staff, but every admin page still refuses.
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/admin/login/")
    assertContains(response, "not authorized to access this page")
    assertNotContains(response, "/admin/accounts/tenant/")
