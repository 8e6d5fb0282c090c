"""Owners and renewal dates of customer accounts and end users (issue 17).

An owner is a member of the workspace. It is set by hand on the account or end
user page, or mapped from a trait the workspace names (`Tenant.owner_trait`,
e.g. `csm_email`, matched to a member's email, case-insensitive); the renewal
date of an account comes from `Tenant.renewal_trait` (a YYYY-MM-DD date, or an
ISO timestamp whose date is taken). Traits are mapped when they arrive
(`map_traits`, called by events.services when it merges traits) and, for rows
that already exist, by `apply_owner_traits` (the task run when the workspace
changes the trait names, and `manage.py apply_owner_traits`).

A trait naming an email that is no member, or a value that is no date, leaves
the row's owner or renewal date as it was: a hand-set owner is never cleared by
a typo in the CRM. `apply_owner_traits` counts those rows so the command says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from celery import shared_task
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts import rls
from accounts.models import Membership, Tenant, User

from .models import CustomerAccount, EndUser

CHUNK = 500


def members_by_email(tenant: Tenant) -> dict[str, int]:
    """Lower-cased email -> user id of the workspace's members."""
    rows = Membership.objects.for_tenant(tenant).values_list("user__email", "user_id")
    return {email.lower(): pk for email, pk in rows}


def parse_renewal(value) -> date | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return date.fromisoformat(text[:10]) if len(text) >= 10 else None
    except ValueError:
        try:
            return datetime.fromisoformat(text).date()
        except ValueError:
            return None


def map_traits(tenant: Tenant, rows: list, members: dict[str, int] | None = None) -> list[str]:
    """Set owner / renewal date on `rows` (accounts or end users, traits merged) from the named traits.

    Returns the fields it may have changed, for the caller's bulk_update (empty: nothing to map).
    """
    owner_trait, renewal_trait = tenant.owner_trait, tenant.renewal_trait
    if not rows or not (owner_trait or renewal_trait):
        return []
    fields = []
    if owner_trait and any(owner_trait in r.traits for r in rows):
        members = members_by_email(tenant) if members is None else members
        for row in rows:
            value = row.traits.get(owner_trait)
            if isinstance(value, str) and value.strip().lower() in members:
                row.owner_id = members[value.strip().lower()]
        fields.append("owner")
    if renewal_trait and isinstance(rows[0], CustomerAccount):
        for row in rows:
            renewal = parse_renewal(row.traits.get(renewal_trait))
            if renewal is not None:
                row.renewal_date = renewal
        fields.append("renewal_date")
    return fields


@dataclass
class Applied:
    accounts: int = 0
    end_users: int = 0
    unknown_owner: int = 0  # rows whose owner trait names no member
    bad_renewal: int = 0  # accounts whose renewal trait is no date


def apply_owner_traits(tenant: Tenant) -> Applied:
    """Map the named traits of every existing account and end user (a one-off, in chunks)."""
    applied = Applied()
    members = members_by_email(tenant)
    for model in (CustomerAccount, EndUser):
        keys = [k for k in (tenant.owner_trait, tenant.renewal_trait if model is CustomerAccount else "") if k]
        if not keys:
            continue
        last = 0
        while True:
            with transaction.atomic():
                rows = list(model.objects.for_tenant(tenant).filter(pk__gt=last).order_by("pk")
                            .select_for_update()[:CHUNK])
                if not rows:
                    break
                last = rows[-1].pk
                rows = [r for r in rows if isinstance(r.traits, dict) and any(k in r.traits for k in keys)]
                before = {r.pk: (r.owner_id, getattr(r, "renewal_date", None)) for r in rows}
                fields = map_traits(tenant, rows, members)
                changed = [r for r in rows if (r.owner_id, getattr(r, "renewal_date", None)) != before[r.pk]]
                if changed:
                    model.objects.for_tenant(tenant).bulk_update(changed, fields)
                _count(applied, model, rows, changed, tenant, members)
    return applied


def _count(applied: Applied, model, rows, changed, tenant: Tenant, members: dict[str, int]) -> None:
    if model is CustomerAccount:
        applied.accounts += len(changed)
    else:
        applied.end_users += len(changed)
    for row in rows:
        owner = row.traits.get(tenant.owner_trait) if tenant.owner_trait else None
        if owner is not None and (not isinstance(owner, str) or owner.strip().lower() not in members):
            applied.unknown_owner += 1
        renewal = row.traits.get(tenant.renewal_trait) if tenant.renewal_trait else None
        if model is CustomerAccount and renewal is not None and parse_renewal(renewal) is None:
            applied.bad_renewal += 1


@shared_task
def apply_owner_traits_task(tenant_id: int) -> None:
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is not None:
        with rls.session_tenant(tenant):
            apply_owner_traits(tenant)


def on_owner_traits_changed(sender, tenant: Tenant, **kwargs) -> None:
    """The workspace named other traits: map the rows it has already (accounts.services signal)."""
    apply_owner_traits_task.delay(tenant.pk)


# --- By hand -----------------------------------------------------------------------------------


def member_choices(tenant: Tenant) -> list[tuple[int, str]]:
    rows = Membership.objects.for_tenant(tenant).select_related("user").order_by("user__email")
    return [(m.user_id, m.user.get_full_name() if m.user.full_name else m.user.email) for m in rows]


@transaction.atomic
def subject_set_owner(*, tenant: Tenant, subject: CustomerAccount | EndUser, owner: User | None,
                      renewal_date: date | None = None) -> None:
    """Set an account's (or end user's) owner, and an account's renewal date. The owner must be a member."""
    if owner is not None and not Membership.objects.for_tenant(tenant).filter(user=owner).exists():
        raise ValidationError({"owner": "The owner must be a member of this workspace."})
    subject.owner = owner
    fields = ["owner"]
    if isinstance(subject, CustomerAccount):
        subject.renewal_date = renewal_date
        fields.append("renewal_date")
    subject.save(update_fields=fields)
