"""Walk every URL under /t/<tenant_slug>/ (from the resolver, no hand list).

As a member of another tenant every one is a 404 for GET and POST; as an
anonymous visitor a redirect to the log-in page. A new tenant URL that is not
wrapped in accounts.scoping.tenant_view fails this test.
"""

import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import ApiKeyKind, Role
from accounts.services import api_key_create, invitation_create

TENANT_PREFIX = "t/<slug:tenant_slug>/"


def walk(patterns, prefix="", namespace=""):
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from walk(p.url_patterns, route, ns)
        elif isinstance(p, URLPattern):
            yield route, (f"{namespace}{p.name}" if p.name else None), p


def tenant_routes():
    return [(route, name, p) for route, name, p in walk(get_resolver().url_patterns) if route.startswith(TENANT_PREFIX)]


def test_there_are_tenant_routes_to_walk():
    assert len(tenant_routes()) >= 8


@pytest.mark.parametrize("route,name,pattern", tenant_routes(), ids=[r[0] for r in tenant_routes()])
def test_every_tenant_route_is_scoped(route, name, pattern):
    assert name, f"{route} has no URL name; every tenant URL must be named"
    assert getattr(pattern.callback, "tenant_scoped", False), f"{route} is not wrapped in accounts.scoping.tenant_view"


@pytest.fixture
def tenant_a_ids(tenant, owner, viewer):
    """Real ids of tenant A's objects, by the URL parameter names that take them."""
    from accounts.models import Membership

    invitation, _ = invitation_create(
        tenant=tenant, email="new@acme.test", role=Role.VIEWER, department="other", invited_by=owner
    )
    key, _ = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="web")
    ids = {
        "member_id": Membership.objects.get(tenant=tenant, user=viewer).public_id,
        "invitation_id": invitation.public_id,
        "key_id": key.public_id,
    }
    # Later apps register their own objects here (see tests/isolation_ids.py).
    from tests.isolation_ids import extra_ids

    ids.update(extra_ids(tenant))
    return ids


def url_for(name, pattern, tenant, ids):
    kwargs = {"tenant_slug": tenant.slug}
    for param, converter in pattern.pattern.converters.items():
        if param in kwargs:
            continue
        if param in ids:
            kwargs[param] = ids[param]
        elif type(converter).__name__ == "UUIDConverter":
            kwargs[param] = uuid.uuid4()
        elif type(converter).__name__ == "IntConverter":
            kwargs[param] = 1
        else:
            kwargs[param] = "sample"
    return reverse(name, kwargs=kwargs)


def _url_params(route, name, pattern, tenant, ids):
    return url_for(name, pattern, tenant, ids)


@pytest.mark.parametrize("method", ["get", "post"])
def test_outsider_gets_404_everywhere(client, outsider, other_tenant, tenant, tenant_a_ids, method):
    client.force_login(outsider)
    for route, name, pattern in tenant_routes():
        url = url_for(name, pattern, tenant, tenant_a_ids)
        response = getattr(client, method)(url)
        assert response.status_code == 404, f"{method.upper()} {url} gave {response.status_code} to an outsider"
        assert tenant.name.encode() not in response.content


def test_anonymous_is_sent_to_login(client, tenant, tenant_a_ids):
    for route, name, pattern in tenant_routes():
        url = url_for(name, pattern, tenant, tenant_a_ids)
        response = client.get(url)
        assert response.status_code == 302, f"GET {url} gave {response.status_code} to an anonymous visitor"
        assert response["Location"].startswith(reverse("accounts:login"))


def test_outsider_sees_own_tenant(client, outsider, other_tenant):
    client.force_login(outsider)
    response = client.get(reverse("tenant_home", args=[other_tenant.slug]))
    assert response.status_code == 200
    assert b"Widget" in response.content
