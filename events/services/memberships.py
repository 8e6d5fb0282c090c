"""Account memberships: an end user belongs to every account that grouped them, with history.

A group call, or a `context.groupId` on any message, makes the end user a member
of that account from the message's time (an open membership; a second call
changes nothing, an older one moves the start back: history arriving late). A
membership ends only on an explicit group call carrying
`context.membership = "ended"`, or on the account page's "Remove from account"
(`membership_end`, one member or a list of userIds); the row stays with its `ended_at`, so the
account roll-up of an old day (docs/scoring.md, "Users in several accounts")
reads the memberships as they stood then. `EndUser.account` stays the primary
account for display: the last one grouped (set by `_attach_accounts`), or,
when that membership ends, the most recently started open one.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Tenant

from ..models import AccountMembership, EndUser
from ..wire import Message

ENDED = "ended"


def ends_membership(message: Message) -> bool:
    """A group call that ends the end user's membership of its account (`context.membership`)."""
    return message.type == "group" and message.context.get("membership") == ENDED


@dataclass
class MembershipChanges:
    """A batch's membership starts and ends per (end user, account), in time order."""

    steps: list[tuple[datetime, bool, int, int]] = field(default_factory=list)  # (at, ends, end user, account)

    @property
    def end_users(self) -> set[int]:
        return {pk for _, _, pk, _ in self.steps}


def membership_changes(messages: list[Message], end_users: list[int], accounts: dict[str, int]) -> MembershipChanges:
    changes = MembershipChanges()
    for m, pk in zip(messages, end_users, strict=True):
        if m.group_id:
            changes.steps.append((min(m.timestamp, m.received_at), ends_membership(m), pk, accounts[m.group_id]))
    # Ends after starts at the same instant: a "join then leave" batch leaves.
    changes.steps.sort(key=lambda step: (step[0], step[1], step[2], step[3]))
    return changes


def record_memberships(tenant: Tenant, changes: MembershipChanges) -> None:
    """Apply a batch's starts and ends; the end users are locked by the caller (id order)."""
    if not changes.steps:
        return
    pks = changes.end_users
    rows = AccountMembership.objects.for_tenant(tenant)
    open_rows = {
        (m.end_user_id, m.account_id): m for m in rows.filter(end_user_id__in=pks, ended_at__isnull=True).order_by("pk")
    }
    created, changed, ended_accounts = [], {}, {}
    for at, ends, pk, account_id in changes.steps:
        key = (pk, account_id)
        current = open_rows.get(key)
        if ends:
            if current is not None:
                current.ended_at = max(at, current.started_at)
                changed[id(current)] = current
                del open_rows[key]
                ended_accounts.setdefault(pk, set()).add(account_id)
        elif current is None:
            current = AccountMembership(tenant=tenant, end_user_id=pk, account_id=account_id, started_at=at)
            open_rows[key] = current
            created.append(current)
        elif at < current.started_at:
            current.started_at = at
            if current.pk is not None:
                changed[id(current)] = current
    existing = [m for m in changed.values() if m.pk is not None]
    if existing:
        rows.bulk_update(existing, ["started_at", "ended_at"])
    if created:
        # A concurrent batch of the same end user waits on its lock; the conflict clause is for
        # paths that hold no lock (CSV chunks of other users never share a pair with this one).
        rows.bulk_create(created, ignore_conflicts=True)
    if ended_accounts:
        _repoint_primary(tenant, ended_accounts)


def _repoint_primary(tenant: Tenant, ended_accounts: dict[int, set[int]]) -> None:
    """An end user whose primary account's membership ended shows their newest other one (or none)."""
    users = EndUser.objects.for_tenant(tenant)
    for pk, accounts in sorted(ended_accounts.items()):
        user = users.filter(pk=pk, account_id__in=accounts).first()
        if user is None:
            continue
        newest = (
            AccountMembership.objects.for_tenant(tenant)
            .filter(end_user_id=pk, ended_at__isnull=True)
            .order_by("-started_at", "-pk")
            .values_list("account_id", flat=True)
            .first()
        )
        users.filter(pk=pk).update(account_id=newest)


def merge_memberships(tenant: Tenant, source_pk: int, target_pk: int) -> None:
    """An alias merge: `source`'s memberships become `target`'s (one open row per account kept)."""
    rows = AccountMembership.objects.for_tenant(tenant)
    target_open = {m.account_id: m for m in rows.filter(end_user_id=target_pk, ended_at__isnull=True)}
    for m in rows.filter(end_user_id=source_pk).order_by("pk"):
        twin = target_open.get(m.account_id) if m.ended_at is None else None
        if twin is not None:
            if m.started_at < twin.started_at:
                rows.filter(pk=twin.pk).update(started_at=m.started_at)
            m.delete()
        else:
            rows.filter(pk=m.pk).update(end_user_id=target_pk)


def accounts_of(tenant: Tenant, end_user: EndUser, *, at: datetime | None = None) -> list[int]:
    """The account ids `end_user` belongs to at `at` (now when None): the engine's rule, in Python."""
    rows = AccountMembership.objects.for_tenant(tenant).filter(end_user=end_user)
    if at is None:
        rows = rows.filter(ended_at__isnull=True)
    else:
        rows = rows.filter(Q(started_at__lt=at) & (Q(ended_at__isnull=True) | Q(ended_at__gte=at)))
    return sorted(set(rows.values_list("account_id", flat=True)))


def membership_end(tenant: Tenant, account, end_users: list[EndUser], *, at: datetime | None = None) -> list[EndUser]:
    """End these end users' open memberships of `account` now: what a group call with
    `context.membership = "ended"` does, from the account page. Returns those who were members.

    Their points stop counting in the account from the day it ends (a day already computed
    keeps them, and recomputing it gives the same rows); their primary account moves to their
    newest other one; `updated_at` moves, so a sync's `updated_since` lists their new `groupIds`.
    """
    at = at or timezone.now()
    with transaction.atomic():
        # Locked in id order, as ingestion locks a batch's end users, so a batch of theirs waits.
        pks = list(EndUser.objects.for_tenant(tenant).select_for_update()
                   .filter(pk__in=[u.pk for u in end_users]).order_by("pk").values_list("pk", flat=True))
        members = set(AccountMembership.objects.for_tenant(tenant).filter(
            account=account, end_user_id__in=pks, ended_at__isnull=True).values_list("end_user_id", flat=True))
        if not members:
            return []
        record_memberships(tenant, MembershipChanges([(at, True, pk, account.pk) for pk in sorted(members)]))
        EndUser.objects.for_tenant(tenant).filter(pk__in=members).update(updated_at=at)
    return [u for u in end_users if u.pk in members]
