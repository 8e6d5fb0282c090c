"""Sign-up, new workspaces, the workspace switcher and the home redirect."""

import re

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from accounts.models import Membership, Role, Tenant, User, slug_validator

from .conftest import logged_in_user_id

SIGNUP = "/signup/"


def signup_data(**overrides):
    data = {
        "full_name": "Nina New",
        "email": "nina@newco.test",
        "password": "a-long-unusual-passphrase-42",
        "company_name": "NewCo",
        "product_name": "Lens",
        "time_zone": "Europe/Berlin",
    }
    data.update(overrides)
    return data


def assert_nothing_created(users_before, tenants_before):
    assert User.objects.count() == users_before
    assert Tenant.objects.count() == tenants_before


def test_it_works(client, db):
    response = client.post(SIGNUP, signup_data())

    tenant = Tenant.objects.get(name="NewCo")
    assertRedirects(response, f"/t/{tenant.slug}/", fetch_redirect_response=False)
    user = User.objects.get(email="nina@newco.test")
    assert user.full_name == "Nina New"
    assert user.check_password("a-long-unusual-passphrase-42")
    assert (tenant.product_name, tenant.time_zone) == ("Lens", "Europe/Berlin")
    membership = Membership.objects.get(tenant=tenant)
    assert (membership.user, membership.role) == (user, Role.OWNER)
    # Logged in: the new workspace opens right away.
    assert logged_in_user_id(client) == str(user.pk)
    assertContains(client.get(response["Location"]), "Lens")


def test_it_stores_the_email_lower_cased(client, db):
    client.post(SIGNUP, signup_data(email="Nina.Mixed@NewCo.TEST"))

    assert User.objects.filter(email="nina.mixed@newco.test").exists()


def test_it_rejects_a_duplicate_email_whatever_the_case(client, owner):
    users, tenants = User.objects.count(), Tenant.objects.count()

    response = client.post(SIGNUP, signup_data(email=owner.email.upper()))

    assertContains(response, "An account with this email exists already. Log in instead.", status_code=400)
    assert_nothing_created(users, tenants)
    assert logged_in_user_id(client) is None


@pytest.mark.parametrize(
    "password,message",
    [
        ("short1", "This password is too short."),
        ("password123", "This password is too common."),
        ("83920184756", "This password is entirely numeric."),
        ("nina@newco.test", "The password is too similar to the"),
    ],
)
def test_it_rejects_a_weak_password(client, db, password, message):
    response = client.post(SIGNUP, signup_data(password=password))

    assertContains(response, message, status_code=400)
    assert_nothing_created(0, 0)


def test_it_rejects_an_unknown_time_zone(client, db):
    response = client.post(SIGNUP, signup_data(time_zone="Mars/Olympus_Mons"))

    assertContains(
        response, "Select a valid choice. Mars/Olympus_Mons is not one of the available choices.", status_code=400
    )
    assert_nothing_created(0, 0)


@pytest.mark.parametrize("field", ["full_name", "email", "password", "company_name", "product_name"])
def test_it_rejects_missing_fields(client, db, field):
    data = signup_data()
    del data[field]

    response = client.post(SIGNUP, data)

    assertContains(response, "This field is required.", status_code=400)
    assert_nothing_created(0, 0)


def test_it_rejects_an_invalid_email(client, db):
    response = client.post(SIGNUP, signup_data(email="not-an-email"))

    assertContains(response, "Enter a valid email address.", status_code=400)
    assert_nothing_created(0, 0)


def test_it_derives_distinct_slugs_for_the_same_company_name(client, tenant):
    # `tenant` is already called "Acme" (slug "acme").
    client.post(SIGNUP, signup_data(email="first@other-acme.test", company_name="Acme"))
    client.logout()
    client.post(SIGNUP, signup_data(email="second@yet-another-acme.test", company_name="Acme"))

    slugs = sorted(Tenant.objects.filter(name="Acme").values_list("slug", flat=True))
    assert len(slugs) == 3
    assert len(set(slugs)) == 3
    assert "acme" in slugs


def test_it_never_uses_a_reserved_slug(client, db):
    client.post(SIGNUP, signup_data(company_name="Admin"))

    tenant = Tenant.objects.get(name="Admin")
    assert tenant.slug not in {"admin", "api", "t", "signup", "login"}


def test_it_derives_a_valid_slug_from_a_name_with_underscores(client, db):
    """Company names may contain "_"; the slug must still pass the slug rules (no underscores)."""
    response = client.post(SIGNUP, signup_data(company_name="Acme_Labs"))

    shown_errors = re.findall(r'role="alert">(.*?)</div>', response.content.decode(), re.S)
    assert response.status_code == 302, f"sign-up refused with {shown_errors}"
    tenant = Tenant.objects.get(name="Acme_Labs")
    slug_validator(tenant.slug)
    assertRedirects(response, f"/t/{tenant.slug}/", fetch_redirect_response=False)


def test_it_redirects_a_logged_in_user(client, owner, tenant):
    client.force_login(owner)

    response = client.get(SIGNUP)
    assertRedirects(response, "/", fetch_redirect_response=False)

    response = client.post(SIGNUP, signup_data())
    assertRedirects(response, "/", fetch_redirect_response=False)
    assert not User.objects.filter(email="nina@newco.test").exists()


def test_it_creates_a_second_workspace(owner_client, owner, tenant):
    response = owner_client.post(
        "/tenants/new/", {"company_name": "Acme Labs", "product_name": "Beaker", "time_zone": "Asia/Tokyo"}
    )

    new = Tenant.objects.get(name="Acme Labs")
    assertRedirects(response, f"/t/{new.slug}/", fetch_redirect_response=False)
    assert (new.product_name, new.time_zone) == ("Beaker", "Asia/Tokyo")
    assert Membership.objects.get(tenant=new).user == owner
    assert Membership.objects.get(tenant=new).role == Role.OWNER
    # The first workspace is untouched.
    assert Membership.objects.unscoped().filter(user=owner).count() == 2


def test_it_rejects_a_bad_second_workspace(owner_client, owner, tenant):
    response = owner_client.post(
        "/tenants/new/", {"company_name": "", "product_name": "Beaker", "time_zone": "Nowhere"}
    )

    assertContains(response, "This field is required.", status_code=400)
    assertContains(response, "Select a valid choice. Nowhere is not one of the available choices.", status_code=400)
    assert Tenant.objects.count() == 1


def test_it_needs_a_login_to_create_a_workspace(client, db):
    response = client.post("/tenants/new/", {"company_name": "X", "product_name": "Y", "time_zone": "UTC"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    assert not Tenant.objects.exists()


def test_it_lists_only_my_workspaces(owner_client, tenant, other_tenant):
    response = owner_client.get("/tenants/")

    assertContains(response, "Acme")
    assertContains(response, f'href="/t/{tenant.slug}/"')
    assertNotContains(response, "Globex")
    assertNotContains(response, f"/t/{other_tenant.slug}/")


def test_it_sends_a_one_workspace_user_home(owner_client, tenant):
    response = owner_client.get("/")

    assertRedirects(response, f"/t/{tenant.slug}/", fetch_redirect_response=False)


def test_it_sends_a_several_workspace_user_to_the_switcher(owner_client, owner, tenant):
    owner_client.post("/tenants/new/", {"company_name": "Acme Labs", "product_name": "Beaker", "time_zone": "UTC"})

    response = owner_client.get("/")

    assertRedirects(response, "/tenants/", fetch_redirect_response=False)


def test_it_shows_the_landing_page_to_visitors(client, db):
    response = client.get("/")

    assertContains(response, "Create your workspace")
