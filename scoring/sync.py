"""Reads behind the read API's lists for sync jobs: the day's snapshots, changes, unscored users.

Small pieces on purpose (each takes and returns a queryset), so the lists'
filtering can move to django-filter without touching them. Rules in docs/api.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Exists, FloatField, OuterRef, Prefetch, Q, QuerySet, Value
from django.db.models.functions import Coalesce

from accounts.models import Tenant
from events.models import AccountMembership, CustomerAccount, EndUser

from .models import AccountScore, ScoringModel, UserScore


def open_memberships(tenant: Tenant, prefix: str = "") -> Prefetch:
    """Prefetch each end user's current accounts (`open_memberships`), for the `groupIds` column."""
    rows = AccountMembership.objects.for_tenant(tenant).filter(ended_at__isnull=True).select_related("account")
    return Prefetch(f"{prefix}memberships", queryset=rows.order_by("started_at", "pk"), to_attr="open_memberships")


def in_account(rows: QuerySet, account: CustomerAccount, user_path: str = "") -> QuerySet:
    """End users (or their snapshots) who are members of `account` now: every member, not only primary ones."""
    member = AccountMembership.objects.for_tenant(account.tenant_id).filter(
        end_user_id=OuterRef(f"{user_path}id" if not user_path else f"{user_path}_id"),
        account=account,
        ended_at__isnull=True,
    )
    return rows.filter(Exists(member))


def base_day(tenant: Tenant, since: datetime) -> date:
    """The day a change feed compares with: the tenant day before `since`'s (docs/api.md)."""
    return since.astimezone(tenant.tzinfo).date() - timedelta(days=1)


_SAME_USER_FIELDS = ("points", "breadth", "active_days", "tier")
_SAME_ACCOUNT_FIELDS = ("points", "active_users", "seats", "tier")


def _unchanged(model_cls, tenant: Tenant, model: ScoringModel, day: date, subject: str, fields) -> Exists:
    same = model_cls.objects.for_tenant(tenant).filter(
        model=model, day=day, **{subject: OuterRef(subject)}, **{f: OuterRef(f) for f in fields}
    )
    # Percentile is nullable (dormant rows): compare it with nulls as -1.
    same = same.annotate(_p=Coalesce("percentile", Value(-1.0), output_field=FloatField())).filter(
        _p=Coalesce(OuterRef("percentile"), Value(-1.0), output_field=FloatField())
    )
    return Exists(same)


def users_changed_since(rows: QuerySet, tenant: Tenant, model: ScoringModel, since: datetime) -> QuerySet:
    """Snapshots that differ from the subject's one on `base_day(since)`, or whose end user changed since."""
    unchanged = _unchanged(UserScore, tenant, model, base_day(tenant, since), "end_user", _SAME_USER_FIELDS)
    return rows.filter(~unchanged | Q(end_user__updated_at__gte=since))


def accounts_changed_since(rows: QuerySet, tenant: Tenant, model: ScoringModel, since: datetime) -> QuerySet:
    unchanged = _unchanged(AccountScore, tenant, model, base_day(tenant, since), "account", _SAME_ACCOUNT_FIELDS)
    return rows.filter(~unchanged | Q(account__updated_at__gte=since))


def unscored_users(tenant: Tenant, model: ScoringModel | None, day: date | None) -> QuerySet:
    """Identified end users (with a userId) with no snapshot on `day` under `model` (all of them when no day)."""
    users = EndUser.objects.for_tenant(tenant).filter(user_id__isnull=False)
    if model is not None and day is not None:
        scored = UserScore.objects.for_tenant(tenant).filter(model=model, day=day, end_user=OuterRef("pk"))
        users = users.filter(~Exists(scored))
    return users


def unscored_changed_since(users: QuerySet, since: datetime) -> QuerySet:
    return users.filter(Q(updated_at__gte=since) | Q(first_seen_at__gte=since))


@dataclass
class Unscored:
    """An unscored end user in a user list: the snapshot columns are null."""

    end_user: EndUser
    day: None = None
    model: None = None
    points: None = None
    breadth: None = None
    active_days: None = None
    percentile: None = None
    tier: None = None
