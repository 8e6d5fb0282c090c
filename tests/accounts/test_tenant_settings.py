"""Workspace settings (name, product, time zone) and deleting a workspace."""

import pytest
from pytest_django.asserts import assertContains, assertRedirects

from accounts.models import ApiKey, ApiKeyKind, Membership, Tenant
from accounts.services import api_key_create


def settings_url(tenant):
    return f"/t/{tenant.slug}/settings/"


def delete_url(tenant):
    return f"/t/{tenant.slug}/settings/delete/"


def tenant_row(tenant):
    return Tenant.objects.filter(pk=tenant.pk).values("name", "product_name", "time_zone", "slug").first()


NEW_VALUES = {"name": "Acme Inc", "product_name": "Rocket 2", "time_zone": "America/Chicago"}


@pytest.mark.parametrize("actor", ["viewer", "editor"])
def test_members_can_read_the_settings(client, request, tenant, actor):
    client.force_login(request.getfixturevalue(actor))

    response = client.get(settings_url(tenant))

    assertContains(response, "Europe/Paris")
    assertContains(response, "Only admins and owners can change these settings.")
    assertContains(response, "A change applies to events received from then on")


@pytest.mark.parametrize("actor", ["viewer", "editor"])
def test_it_checks_role(client, request, tenant, actor):
    client.force_login(request.getfixturevalue(actor))
    before = tenant_row(tenant)

    response = client.post(settings_url(tenant), NEW_VALUES)

    assert response.status_code == 403
    assert tenant_row(tenant) == before


def test_it_is_404_for_another_tenant(outsider_client, tenant):
    before = tenant_row(tenant)

    response = outsider_client.post(settings_url(tenant), NEW_VALUES)

    assert response.status_code == 404
    assert tenant_row(tenant) == before


@pytest.mark.parametrize("actor", ["admin_user", "owner"])
def test_it_works(client, request, tenant, actor):
    client.force_login(request.getfixturevalue(actor))

    response = client.post(settings_url(tenant), NEW_VALUES)

    assertRedirects(response, settings_url(tenant), fetch_redirect_response=False)
    tenant.refresh_from_db()
    assert (tenant.name, tenant.product_name, tenant.time_zone) == ("Acme Inc", "Rocket 2", "America/Chicago")
    # The slug (and so every URL) stays the same.
    assert tenant.slug == "acme"
    assertContains(client.get(settings_url(tenant)), "Settings saved.")


def test_it_rejects_an_invalid_time_zone(client, admin_user, tenant):
    client.force_login(admin_user)
    before = tenant_row(tenant)

    response = client.post(settings_url(tenant), {**NEW_VALUES, "time_zone": "Europe/Atlantis"})

    assertContains(
        response, "Select a valid choice. Europe/Atlantis is not one of the available choices.", status_code=400
    )
    assert tenant_row(tenant) == before
    # The page still shows the saved name, not the rejected input's side effects.
    assertContains(response, "<title>Settings · Acme · Engage</title>", status_code=400, html=False)


def test_it_rejects_missing_fields(client, admin_user, tenant):
    client.force_login(admin_user)
    before = tenant_row(tenant)

    response = client.post(settings_url(tenant), {"name": "", "product_name": "", "time_zone": "UTC"})

    assertContains(response, "This field is required.", count=2, status_code=400)
    assert tenant_row(tenant) == before


# --- Delete ---------------------------------------------------------------------


@pytest.mark.parametrize("actor", ["admin_user", "editor", "viewer"])
def test_delete_checks_role(client, request, tenant, actor):
    client.force_login(request.getfixturevalue(actor))
    memberships = Membership.objects.filter(tenant=tenant).count()

    response = client.post(delete_url(tenant), {"confirm_name": "Acme"})

    assert response.status_code == 403
    assert Tenant.objects.filter(pk=tenant.pk).exists()
    assert Membership.objects.filter(tenant=tenant).count() == memberships


def test_delete_is_404_for_another_tenant(outsider_client, tenant):
    response = outsider_client.post(delete_url(tenant), {"confirm_name": "Acme"})

    assert response.status_code == 404
    assert Tenant.objects.filter(pk=tenant.pk).exists()


@pytest.mark.parametrize("typed", ["acme", "Acme Inc", ""])
def test_delete_rejects_a_wrong_name(owner_client, tenant, typed):
    response = owner_client.post(delete_url(tenant), {"confirm_name": typed})

    message = "This field is required." if typed == "" else "Type “Acme” exactly to delete this workspace."
    assertContains(response, message, status_code=400)
    assert Tenant.objects.filter(pk=tenant.pk).exists()
    assert Membership.objects.filter(tenant=tenant).exists()


def test_delete_is_post_only(owner_client, tenant):
    assert owner_client.get(delete_url(tenant)).status_code == 405
    assert Tenant.objects.filter(pk=tenant.pk).exists()


def test_delete_works(owner_client, owner, tenant, admin_user, viewer, other_tenant):
    api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="web")

    response = owner_client.post(delete_url(tenant), {"confirm_name": " Acme "})

    assertRedirects(response, "/", fetch_redirect_response=False)
    assert not Tenant.objects.filter(pk=tenant.pk).exists()
    assert not Membership.objects.filter(tenant_id=tenant.pk).exists()
    assert not ApiKey.objects.filter(tenant_id=tenant.pk).exists()
    # The people keep their accounts; the other tenant is untouched.
    assert owner.__class__.objects.filter(pk__in=[owner.pk, admin_user.pk, viewer.pk]).count() == 3
    assert Tenant.objects.filter(pk=other_tenant.pk).exists()
    assert Membership.objects.filter(tenant=other_tenant).count() == 1
    assertContains(owner_client.get("/tenants/"), "Acme and all its data were deleted.")
