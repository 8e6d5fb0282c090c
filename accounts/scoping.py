"""Tenant scoping for HTML views: the one place that decides who sees a tenant.

Every view under `/t/<tenant_slug>/` is wrapped in `tenant_view`. It resolves
the tenant from the URL, answers 404 when the visitor is not a member (so the
existence of another tenant never leaks), 403 when the member's role is too low,
and hands the view `request.tenant` and `request.membership`. Objects inside
the tenant are fetched with `get_tenant_object`, which is a 404 for any other
tenant's row.

On PostgreSQL the view also runs inside `rls.tenant_context(tenant)`: one
transaction with the tenant set for row-level security, which includes the
rendering of a TemplateResponse (lazy querysets are evaluated there) and, for a
streaming response (CSV), a second tenant transaction while it streams.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse

from . import rls
from .models import Membership, Role, Tenant, TenantScopeError, role_at_least

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def membership_for(user, tenant_slug: str) -> Membership:
    """The visitor's membership of the URL's tenant, or 404.

    With row-level security this runs inside `rls.tenant_context(slug=...)`:
    the URL's tenant is set first, so the gate needs no bypass (a visitor who
    is not a member finds no row, and the transaction ends with the 404).
    """
    try:
        # Unscoped: this gate is what finds the tenant (by its slug, for this user only).
        return Membership.objects.unscoped().select_related("tenant").get(tenant__slug=tenant_slug, user=user)
    except Membership.DoesNotExist:
        raise Http404("No such workspace.") from None


def require_role(request, minimum: str) -> None:
    """403 unless the current member has at least `minimum` role."""
    if not role_at_least(request.membership.role, minimum):
        raise PermissionDenied(f"This needs the {Role(minimum).label.lower()} role or higher.")


def tenant_view(role: str = Role.VIEWER, write_role: str | None = None, read_key: bool = False):
    """Decorate a view taking `tenant_slug`: login, membership (404) and role (403).

    `role` applies to every method; `write_role`, when given, to unsafe methods.
    `read_key` (the CSV exports): a GET with `Authorization: Bearer rk_…` of this
    tenant is let in without a login, as a viewer (`request.membership` is None).
    """

    def decorator(view):
        logged_in = login_required(_member_view(view, role, write_role))

        @wraps(view)
        def wrapper(request, tenant_slug: str, *args, **kwargs):
            if read_key and request.headers.get("Authorization"):
                return _read_key_view(view, request, tenant_slug, *args, **kwargs)
            return logged_in(request, tenant_slug, *args, **kwargs)

        # The URL sweep test checks this mark on every /t/ route.
        wrapper.tenant_scoped = True
        return wrapper

    return decorator


def _read_key_view(view, request, tenant_slug: str, *args, **kwargs):
    """A read key instead of a login: its tenant must be the URL's (else 404), GET only (else 403)."""
    from core.api_errors import error_body

    from .api import key_from_request
    from .models import ApiKeyKind
    from .services import api_key_authenticate

    key = api_key_authenticate(key_from_request(request), ApiKeyKind.READ)
    if key is None:
        response = JsonResponse(error_body("not_authenticated", "Unknown or revoked read key."), status=401)
        response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response
    if key.tenant.slug != tenant_slug:
        return JsonResponse(error_body("not_found", "No such workspace for this key."), status=404)
    if request.method not in ("GET", "HEAD"):
        return JsonResponse(error_body("permission_denied", "A read key can only read."), status=403)
    request.tenant, request.membership = key.tenant, None
    return run_in_tenant(key.tenant, view, request, *args, **kwargs)


def _member_view(view, role: str, write_role: str | None):
    """The login path: membership (404) and role (403), in the tenant's transaction with RLS."""

    @wraps(view)
    def wrapper(request, tenant_slug: str, *args, **kwargs):
        def scoped():
            membership = membership_for(request.user, tenant_slug)
            request.membership = membership
            request.tenant = membership.tenant
            needed = write_role if (write_role and request.method not in SAFE_METHODS) else role
            require_role(request, needed)
            return view(request, *args, **kwargs)

        if not rls.enabled():
            return scoped()
        # One transaction with the URL's tenant set: the membership gate, the view and the
        # rendering of its response (see `run_in_tenant`).
        with rls.tenant_context(slug=tenant_slug, user=request.user):
            response = _rendered(scoped())
        return _stream_in_tenant(request.tenant, response)

    return wrapper


def run_in_tenant(tenant, view, request, *args, **kwargs):
    """Call `view` and render its response inside the tenant's transaction (RLS).

    Django renders a TemplateResponse after the view returns, outside any
    transaction the view opened, and a streaming response is read later still:
    both would see no row at all. So the TemplateResponse is rendered here and a
    streaming body is read in a tenant transaction of its own.
    """
    if not rls.enabled():
        return view(request, *args, **kwargs)
    with rls.tenant_context(tenant):
        response = _rendered(view(request, *args, **kwargs))
    return _stream_in_tenant(tenant, response)


def _rendered(response):
    if hasattr(response, "render") and not getattr(response, "is_rendered", True):
        response.render()
    return response


def _stream_in_tenant(tenant, response):
    if getattr(response, "streaming", False) and not getattr(response, "is_async", False):
        response.streaming_content = _streamed_in_tenant(tenant, response.streaming_content)
    return response


def _streamed_in_tenant(tenant, chunks):
    with rls.tenant_context(tenant):
        yield from chunks


def get_tenant_object(tenant, model, **lookup):
    """Fetch one row of `model` inside `tenant`, or 404 (never another tenant's row)."""
    try:
        return model.objects.for_tenant(tenant).get(**lookup)
    except (model.DoesNotExist, ValueError):
        raise Http404(f"No such {model._meta.verbose_name}.") from None


def tenant_sql(tenant: Tenant | int, alias: str = "", *, placeholder: str = "%s") -> tuple[str, list[int]]:
    """The tenant predicate of a raw statement and its parameter: `("r.tenant_id = %s", [id])`.

    The raw-SQL twin of `for_tenant`: it refuses a missing tenant instead of
    writing a predicate that matches nothing or everything. Splice the SQL into the
    WHERE clause and put the parameter where its `%s` falls. `placeholder`: `%b` for
    psycopg's binary parameters (the ingestion statements).
    """
    tenant_id = tenant if isinstance(tenant, int) and not isinstance(tenant, bool) else getattr(tenant, "pk", None)
    if tenant_id is None:
        raise TenantScopeError("A raw statement over tenant rows needs a tenant.")
    column = f"{alias}.tenant_id" if alias else "tenant_id"
    return f"{column} = {placeholder}", [tenant_id]
