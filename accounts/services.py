"""Writes for tenants, members, invitations and API keys."""

import logging
import re

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from core.site import site_url

from . import key_cache, rls
from .models import (
    RESERVED_SLUGS,
    ApiKey,
    ApiKeyKind,
    Invitation,
    Membership,
    Role,
    Tenant,
    User,
    hash_token,
    role_at_least,
)

log = logging.getLogger(__name__)


# --- Tenants --------------------------------------------------------------------


def unique_slug(name: str) -> str:
    # slugify keeps underscores, which our slug rule forbids.
    base = re.sub(r"[-_]+", "-", slugify(name))[:40].strip("-") or "workspace"
    if base in RESERVED_SLUGS:
        base = f"{base}-co"
    slug, n = base, 2
    while Tenant.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def tenant_create(*, owner: User, name: str, product_name: str, time_zone: str = "UTC", slug: str = "") -> Tenant:
    tenant = Tenant(name=name, product_name=product_name, time_zone=time_zone, slug=slug or unique_slug(name))
    tenant.full_clean()
    tenant.save()
    with rls.tenant_context(tenant):  # the new tenant's first row
        Membership.objects.create(tenant=tenant, user=owner, role=Role.OWNER)
    return tenant


@transaction.atomic
def user_signup(
    *, email: str, password: str, full_name: str, company_name: str, product_name: str, time_zone: str = "UTC"
) -> tuple[User, Tenant]:
    """Create the user, the tenant and the owner membership in one step."""
    user = User.objects.create_user(email=email, password=password, full_name=full_name)
    tenant = tenant_create(owner=user, name=company_name, product_name=product_name, time_zone=time_zone)
    return user, tenant


def tenant_update(
    *, tenant: Tenant, name: str, product_name: str, time_zone: str, events_retention_months: int | None = None
) -> Tenant:
    tenant.name, tenant.product_name, tenant.time_zone = name, product_name, time_zone
    tenant.events_retention_months = events_retention_months  # events.partitions applies it
    tenant.full_clean()
    tenant.save(update_fields=["name", "product_name", "time_zone", "events_retention_months"])
    return tenant


# Sent after the owner or renewal trait names changed and were committed; events maps existing rows.
owner_traits_changed = Signal()


@transaction.atomic
def tenant_update_settings(*, tenant: Tenant, **fields) -> Tenant:
    """Save one section of the workspace settings (risk thresholds, owner and renewal traits)."""
    # From the row: a ModelForm has set the instance's attributes already.
    traits_before = Tenant.objects.filter(pk=tenant.pk).values_list("owner_trait", "renewal_trait").first()
    for name, value in fields.items():
        setattr(tenant, name, value)
    tenant.full_clean()
    tenant.save(update_fields=list(fields))
    if (tenant.owner_trait, tenant.renewal_trait) != traits_before:
        transaction.on_commit(lambda: owner_traits_changed.send(sender=Tenant, tenant=tenant))
    return tenant


def tenant_delete(*, tenant: Tenant, confirm_name: str) -> None:
    if confirm_name.strip() != tenant.name:
        raise ValidationError({"confirm_name": "Type the company name exactly to confirm."})
    tenant.delete()


# --- Members --------------------------------------------------------------------


def _owner_count(tenant: Tenant) -> int:
    return Membership.objects.for_tenant(tenant).filter(role=Role.OWNER).count()


def _check_may_manage(acting: Membership, target_role: str) -> None:
    # Only owners may hand out, take away or touch the owner role.
    if target_role == Role.OWNER and acting.role != Role.OWNER:
        raise ValidationError("Only an owner can change or remove an owner.")


@transaction.atomic
def membership_update(*, membership: Membership, acting: Membership, role: str, department: str) -> Membership:
    # Lock the tenant's owners so two demotions at once can't leave none.
    list(Membership.objects.for_tenant(membership.tenant).filter(role=Role.OWNER).select_for_update())
    _check_may_manage(acting, membership.role)
    _check_may_manage(acting, role)
    if membership.role == Role.OWNER and role != Role.OWNER and _owner_count(membership.tenant) <= 1:
        raise ValidationError("The last owner cannot be demoted. Make someone else an owner first.")
    membership.role, membership.department = role, department
    membership.full_clean()
    membership.save(update_fields=["role", "department"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, acting: Membership) -> None:
    list(Membership.objects.for_tenant(membership.tenant).filter(role=Role.OWNER).select_for_update())
    _check_may_manage(acting, membership.role)
    if membership.role == Role.OWNER and _owner_count(membership.tenant) <= 1:
        raise ValidationError("The last owner cannot be removed.")
    membership.delete()


# --- Invitations ----------------------------------------------------------------


def invitation_url(token: str) -> str:
    return site_url() + reverse("accounts:accept_invitation", args=[token])


@transaction.atomic
def invitation_create(
    *, tenant: Tenant, email: str, role: str, department: str, invited_by: User | None
) -> tuple[Invitation, str]:
    """Invite `email`; a new invitation replaces a pending one. Returns the invitation and its token."""
    email = email.strip().lower()
    if Membership.objects.for_tenant(tenant).filter(user__email__iexact=email).exists():
        raise ValidationError({"email": f"{email} is already a member of {tenant.name}."})
    if role == Role.OWNER and invited_by is not None:
        inviter = Membership.objects.for_tenant(tenant).filter(user=invited_by).first()
        if inviter is None or inviter.role != Role.OWNER:
            raise ValidationError({"role": "Only an owner can invite another owner."})
    now = timezone.now()
    Invitation.objects.for_tenant(tenant).filter(email__iexact=email, accepted_at=None, revoked_at=None).update(
        revoked_at=now
    )
    token = Invitation.new_token()
    invitation = Invitation(
        tenant=tenant,
        email=email,
        role=role,
        department=department,
        token_hash=hash_token(token),
        invited_by=invited_by,
    )
    invitation.full_clean()
    invitation.save()
    context = {"invitation": invitation, "tenant": tenant, "url": invitation_url(token), "inviter": invited_by}
    # Send after commit: a rolled-back invitation must not leave an email behind.
    transaction.on_commit(
        lambda: send_mail(
            subject=f"Join {tenant.name} on engagement_site",
            message=render_to_string("accounts/email/invitation.txt", context),
            from_email=None,
            recipient_list=[email],
        )
    )
    return invitation, token


class InvitationError(Exception):
    pass


def invitation_for_token(token: str) -> Invitation:
    """The invitation a token belongs to, or InvitationError saying why it can't be used."""
    # RLS bypass: the token is what tells the tenant; it is looked up by its hash (unique).
    with rls.bypass("invitation token lookup"):
        invitation = Invitation.objects.unscoped().select_related("tenant").filter(token_hash=hash_token(token)).first()
    if invitation is None:
        raise InvitationError("This invitation link is not valid.")
    if invitation.accepted_at:
        raise InvitationError("This invitation has already been used.")
    if invitation.revoked_at:
        raise InvitationError("This invitation was withdrawn or replaced by a newer one.")
    if invitation.expires_at <= timezone.now():
        raise InvitationError("This invitation has expired. Ask for a new one.")
    return invitation


class InvitationForOtherAddress(InvitationError):
    """The invitation is valid but was sent to another address than the user's."""

    def __init__(self, invitation: Invitation, user: User):
        self.invitation = invitation
        super().__init__(
            f"This invitation is for {invitation.email}, and you are logged in as {user.email}. "
            f"Log out and log in (or sign up) as {invitation.email} to accept it."
        )


def invitation_is_for(invitation: Invitation, user: User) -> bool:
    # An invitation is bound to the address it was mailed to: holding the token
    # is not enough (a forwarded or leaked link must not let another login join,
    # least of all with the admin role it carries).
    return user.email.strip().lower() == invitation.email.strip().lower()


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    invitation = invitation_for_token(token)
    if not invitation_is_for(invitation, user):
        raise InvitationForOtherAddress(invitation, user)
    with rls.tenant_context(invitation.tenant):
        # Lock the row so the same link can't be redeemed twice concurrently.
        invitation = Invitation.objects.for_tenant(invitation.tenant_id).select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at:
            raise InvitationError("This invitation has already been used.")
        membership, created = Membership.objects.get_or_create(
            tenant=invitation.tenant, user=user, defaults={"role": invitation.role, "department": invitation.department}
        )
        invitation.accepted_at, invitation.accepted_by = timezone.now(), user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


@transaction.atomic
def invitation_accept_as_new_user(*, token: str, full_name: str, password: str) -> tuple[User, Membership]:
    invitation = invitation_for_token(token)
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=invitation.email, password=password, full_name=full_name)
    except IntegrityError:
        raise InvitationError("An account with this email exists already: log in to accept.") from None
    return user, invitation_accept(token=token, user=user)


def invitation_revoke(*, invitation: Invitation) -> None:
    if invitation.revoked_at is None and invitation.accepted_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])


# --- API keys -------------------------------------------------------------------


def api_key_create(*, tenant: Tenant, kind: str, name: str, created_by: User | None = None) -> tuple[ApiKey, str]:
    """Create a key; the plaintext is returned once and never stored."""
    plaintext, prefix, secret_hash = ApiKey.generate(kind)
    key = ApiKey(
        tenant=tenant, kind=kind, name=name.strip(), prefix=prefix, secret_hash=secret_hash, created_by=created_by
    )
    key.full_clean()
    key.save()
    return key, plaintext


def api_key_revoke(*, key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])


def api_key_authenticate(plaintext: str | None, kind: str, *, cached: bool = False, generation: str | None = None):
    """The live key of `kind` matching `plaintext`, or None. Constant-time comparison.

    `cached` (the tracking endpoint) reads keys through `key_cache`, with the
    shared cache's current `generation` token when the caller has it.
    """
    if not plaintext:
        return None
    prefix = ApiKey.split_prefix(plaintext)
    if prefix is None:
        return None
    if cached:
        key = key_cache.lookup(prefix, generation)
    else:
        key = lookup_key(prefix)
    if key is None or not key.matches(plaintext) or key.revoked_at is not None or key.kind != kind:
        return None
    api_key_touch(key)
    return key


def lookup_key(prefix: str) -> ApiKey | None:
    """The key with this lookup prefix (tenant loaded), live or not."""
    # RLS bypass: the key is what tells the tenant; it is looked up by its unique prefix, and
    # the caller checks the secret's hash before using it.
    with rls.bypass("API key lookup by prefix"):
        return ApiKey.objects.unscoped().select_related("tenant").filter(prefix=prefix).first()


def api_key_touch(key: ApiKey) -> None:
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > ApiKey.LAST_USED_PRECISION:
        with rls.tenant_context(key.tenant_id):
            ApiKey.objects.for_tenant(key.tenant_id).filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def role_choices_for(acting: Membership) -> list[tuple[str, str]]:
    """The roles `acting` may hand out: owners can grant every role, others up to admin."""
    return [(value, label) for value, label in Role.choices if value != Role.OWNER or acting.role == Role.OWNER]


__all__ = [
    "ApiKeyKind",
    "InvitationError",
    "api_key_authenticate",
    "api_key_create",
    "api_key_revoke",
    "invitation_accept",
    "invitation_accept_as_new_user",
    "invitation_create",
    "invitation_for_token",
    "invitation_revoke",
    "membership_remove",
    "membership_update",
    "role_at_least",
    "tenant_create",
    "tenant_delete",
    "tenant_update",
    "user_signup",
]
