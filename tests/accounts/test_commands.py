"""Operator commands: create_tenant and create_api_key (seed_demo: tests/surveys/test_seed_demo.py)."""

from io import StringIO
from urllib.parse import urlparse

import pytest
from django.core.management import CommandError, call_command

from accounts.models import ApiKey, ApiKeyKind, Membership, Role, Tenant, User
from accounts.services import api_key_authenticate
from tests.conftest import PASSWORD

from .conftest import log_in, logged_in_user_id


def run(*args, **options) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue().splitlines()


def create_tenant(**options):
    options = {"name": "Initech", "product": "TPS", "owner": "peter@initech.test", **options}
    return run("create_tenant", *[f"--{k.replace('_', '-')}={v}" for k, v in options.items()])


def value_of(lines, label):
    found = [line.split(": ", 1)[1] for line in lines if line.startswith(f"{label}: ")]
    assert len(found) == 1, lines
    return found[0]


# --- create_tenant ----------------------------------------------------------------


def test_create_tenant_works(db):
    lines = create_tenant(time_zone="America/Denver")

    slug = value_of(lines, "slug")
    tenant = Tenant.objects.get(slug=slug)
    assert (tenant.name, tenant.product_name, tenant.time_zone) == ("Initech", "TPS", "America/Denver")
    user = User.objects.get(email="peter@initech.test")
    assert Membership.objects.get(tenant=tenant).user == user
    assert Membership.objects.get(tenant=tenant).role == Role.OWNER
    # The new owner has no password until they use the link.
    assert not user.has_usable_password()
    assert value_of(lines, "password_link").startswith("http")
    # The write key is alone on the last line and authenticates for this tenant.
    key = lines[-1]
    assert key.startswith("wk_") and " " not in key
    found = api_key_authenticate(key, ApiKeyKind.WRITE)
    assert found is not None and found.tenant == tenant
    assert api_key_authenticate(key, ApiKeyKind.READ) is None


def test_create_tenant_password_link_works(client, db):
    lines = create_tenant()
    link = urlparse(value_of(lines, "password_link")).path

    response = client.get(link)

    assert response.status_code == 302
    form_url = response["Location"]
    assert form_url.endswith("/set-password/")
    new_password = "peters-new-passphrase-11"
    response = client.post(form_url, {"new_password1": new_password, "new_password2": new_password})
    assert response.status_code == 302
    response = log_in(client, "peter@initech.test", new_password)
    assert response.status_code == 302
    assert logged_in_user_id(client) == str(User.objects.get(email="peter@initech.test").pk)


def test_create_tenant_reuses_an_existing_owner(owner, tenant):
    users = User.objects.count()

    lines = create_tenant(owner=owner.email.upper())

    assert User.objects.count() == users
    new = Tenant.objects.get(slug=value_of(lines, "slug"))
    assert Membership.objects.get(tenant=new).user == owner
    assert value_of(lines, "owner") == owner.email
    # Their password is left alone.
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_create_tenant_takes_a_slug(db):
    lines = create_tenant(slug="initech-hq")

    assert value_of(lines, "slug") == "initech-hq"


def test_create_tenant_derives_a_unique_slug(tenant):
    lines = create_tenant(name="Acme")

    assert value_of(lines, "slug") != tenant.slug
    assert Tenant.objects.filter(name="Acme").count() == 2


@pytest.mark.parametrize(
    "options,message",
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"slug": "admin"}, "reserved"),
        ({"slug": "Not A Slug"}, "slug"),
    ],
)
def test_create_tenant_rejects_bad_input(db, options, message):
    with pytest.raises(CommandError, match=message):
        create_tenant(**options)

    assert not Tenant.objects.exists()
    assert not User.objects.exists()
    assert not ApiKey.objects.unscoped().exists()


def test_create_tenant_rejects_a_taken_slug(tenant):
    with pytest.raises(CommandError, match="slug"):
        create_tenant(slug=tenant.slug)

    assert Tenant.objects.count() == 1


# --- create_api_key ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["read", "write"])
def test_create_api_key_works(tenant, kind):
    lines = run("create_api_key", "--tenant", tenant.slug, "--kind", kind, "--name", "Reporting")

    assert len(lines) == 1
    plaintext = lines[0]
    assert plaintext.startswith({"read": "rk_", "write": "wk_"}[kind])
    key = api_key_authenticate(plaintext, kind)
    assert key is not None
    assert (key.tenant, key.name) == (tenant, "Reporting")


def test_create_api_key_rejects_an_unknown_tenant(tenant):
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        run("create_api_key", "--tenant", "nope", "--kind", "read", "--name", "X")

    assert not ApiKey.objects.unscoped().exists()


def test_create_api_key_rejects_an_unknown_kind(tenant):
    with pytest.raises(CommandError, match="invalid choice"):
        run("create_api_key", "--tenant", tenant.slug, "--kind", "admin", "--name", "X")

    assert not ApiKey.objects.unscoped().exists()
