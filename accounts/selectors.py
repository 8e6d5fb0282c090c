"""Reads shared by the accounts pages and APIs."""

from django.db.models import QuerySet

from . import rls
from .models import ApiKey, Invitation, Membership, Tenant


def tenants_for_user(user) -> list[Membership]:
    """The user's own memberships in every tenant (the switcher), evaluated at once.

    Memberships are under row-level security like every tenant table, with one
    more clause: a user sees their own (`rls.user_context`; inside a page's
    tenant transaction the user is set already, at no extra statement).
    """
    with rls.user_context(user):
        # Unscoped on purpose: the switcher lists the user's own workspaces, before any tenant.
        return list(Membership.objects.unscoped().filter(user=user).select_related("tenant").order_by("tenant__name"))


def members_of(tenant: Tenant) -> QuerySet[Membership]:
    return Membership.objects.for_tenant(tenant).select_related("user").order_by("user__email")


def invitations_of(tenant: Tenant) -> QuerySet[Invitation]:
    return Invitation.objects.for_tenant(tenant).filter(accepted_at__isnull=True, revoked_at__isnull=True)


def api_keys_of(tenant: Tenant) -> QuerySet[ApiKey]:
    return ApiKey.objects.for_tenant(tenant).select_related("created_by").order_by("revoked_at", "-created_at")
