"""Tenant scoping for HTML views: the one place that decides who sees a tenant.

Every view under `/t/<tenant_slug>/` is wrapped in `tenant_view`. It resolves
the tenant from the URL, answers 404 when the visitor is not a member (so the
existence of another tenant never leaks), 403 when the member's role is too low,
and hands the view `request.tenant` and `request.membership`. Objects inside
the tenant are fetched with `get_tenant_object`, which is a 404 for any other
tenant's row.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404

from .models import Membership, Role, role_at_least

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def membership_for(user, tenant_slug: str) -> Membership:
    try:
        return Membership.objects.select_related("tenant").get(tenant__slug=tenant_slug, user=user)
    except Membership.DoesNotExist:
        raise Http404("No such workspace.") from None


def require_role(request, minimum: str) -> None:
    """403 unless the current member has at least `minimum` role."""
    if not role_at_least(request.membership.role, minimum):
        raise PermissionDenied(f"This needs the {Role(minimum).label.lower()} role or higher.")


def tenant_view(role: str = Role.VIEWER, write_role: str | None = None):
    """Decorate a view taking `tenant_slug`: login, membership (404) and role (403).

    `role` applies to every method; `write_role`, when given, to unsafe methods.
    """

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, tenant_slug: str, *args, **kwargs):
            membership = membership_for(request.user, tenant_slug)
            request.membership = membership
            request.tenant = membership.tenant
            needed = write_role if (write_role and request.method not in SAFE_METHODS) else role
            require_role(request, needed)
            return view(request, *args, **kwargs)

        # The URL sweep test checks this mark on every /t/ route.
        wrapper.tenant_scoped = True
        return wrapper

    return decorator


def get_tenant_object(tenant, model, **lookup):
    """Fetch one row of `model` inside `tenant`, or 404 (never another tenant's row)."""
    try:
        return model.objects.for_tenant(tenant).get(**lookup)
    except (model.DoesNotExist, ValueError):
        raise Http404(f"No such {model._meta.verbose_name}.") from None


def tenant_queryset(tenant, model):
    return model.objects.for_tenant(tenant)
