"""End users: user and anonymous ids, alias merges, and `first_seen_at` dated by history."""

from collections import Counter
from datetime import datetime, timedelta

from django.db import connection

from accounts.models import Tenant
from accounts.scoping import tenant_sql

from ..models import DailyActivityCount, EndUser, Event, Identity
from ..wire import Message
from .customer_accounts import ATTACH_CHUNK
from .db import _select_by, _server_bound_cursor
from .memberships import merge_memberships
from .store import _add_to_rollup


class IdentityResolver:
    """Maps (userId, anonymousId) to end users for one batch, merging where ids meet.

    - a userId always names one end user (created on first sight);
    - an anonymous id belongs to the end user it was first seen with; an
      anonymous end user is merged into an identified one when a message (or an
      alias) carries both ids, so its earlier events move to the user.
    """

    def __init__(self, tenant: Tenant):
        self.tenant = tenant
        self.by_user_id: dict[str, int] = {}
        self.by_anonymous_id: dict[str, int] = {}
        self.identified: set[int] = set()
        self.merged_into: dict[int, int] = {}
        self.new_identities: dict[str, int] = {}

    def load(self, user_ids: set[str], anonymous_ids: set[str], previous_ids: set[str], known: list[tuple]) -> None:
        """`known`: the (user_id, pk) rows of `user_ids` that `_prefetch` read."""
        tenant = self.tenant
        # An alias's previousId may be an earlier user id: look it up, don't create it.
        lookup = previous_ids - user_ids
        if lookup:
            for pk, uid in EndUser.objects.for_tenant(tenant).filter(user_id__in=lookup).values_list("pk", "user_id"):
                self.by_user_id[uid] = pk
                self.identified.add(pk)
        if user_ids:
            rows = known
            missing = user_ids - {uid for uid, _ in rows}
            if missing:
                EndUser.objects.bulk_create(
                    [EndUser(tenant=tenant, user_id=uid) for uid in sorted(missing)], ignore_conflicts=True
                )
                rows = _select_by(EndUser, "user_id", tenant, user_ids)
            for uid, pk in rows:
                self.by_user_id[uid] = pk
                self.identified.add(pk)
        if anonymous_ids:
            rows = Identity.objects.for_tenant(tenant).filter(anonymous_id__in=anonymous_ids)
            self.by_anonymous_id.update(rows.values_list("anonymous_id", "end_user_id"))
            # Anonymous end users already known by these ids (identified flag matters for merging).
            known = set(self.by_anonymous_id.values()) - self.identified
            if known:
                self.identified.update(
                    EndUser.objects.for_tenant(tenant)
                    .filter(pk__in=known, user_id__isnull=False)
                    .values_list("pk", flat=True)
                )

    def create_anonymous(self, anonymous_ids: set[str]) -> None:
        """Create end users for anonymous ids seen with no user id anywhere."""
        tenant = self.tenant
        missing = sorted(anonymous_ids - self.by_anonymous_id.keys())
        if not missing:
            return
        EndUser.objects.bulk_create(
            [EndUser(tenant=tenant, anonymous_id=aid) for aid in missing], ignore_conflicts=True
        )
        created = dict(
            EndUser.objects.for_tenant(tenant).filter(anonymous_id__in=missing).values_list("anonymous_id", "pk")
        )
        Identity.objects.bulk_create(
            [Identity(tenant=tenant, anonymous_id=aid, end_user_id=created[aid]) for aid in missing],
            ignore_conflicts=True,
        )
        # A concurrent batch may have linked the id first: its mapping wins.
        self.by_anonymous_id.update(
            Identity.objects.for_tenant(tenant)
            .filter(anonymous_id__in=missing)
            .values_list("anonymous_id", "end_user_id")
        )

    def final(self, pk: int) -> int:
        while pk in self.merged_into:
            pk = self.merged_into[pk]
        return pk

    def link(self, anonymous_id: str, pk: int) -> None:
        current = self.by_anonymous_id.get(anonymous_id)
        if current is None:
            self.by_anonymous_id[anonymous_id] = pk
            self.new_identities[anonymous_id] = pk
            return
        current = self.final(current)
        if current != pk and current not in self.identified:
            self.merged_into[current] = pk

    def resolve(self, message: Message) -> int:
        if message.type == "alias":
            target = self.by_user_id[message.user_id]
            previous = message.previous_id
            source = self.by_user_id.get(previous)
            if source is not None and self.final(source) != target:
                self.merged_into[self.final(source)] = target
            else:
                self.link(previous, target)
            return target
        if message.user_id is not None:
            pk = self.by_user_id[message.user_id]
            if message.anonymous_id is not None:
                self.link(message.anonymous_id, pk)
            return pk
        return self.final(self.by_anonymous_id[message.anonymous_id])

    def apply(self) -> None:
        """Persist new anonymous-id links and merge end users in the database."""
        tenant = self.tenant
        for anonymous_id, pk in self.new_identities.items():
            Identity.objects.bulk_create(
                [Identity(tenant=tenant, anonymous_id=anonymous_id, end_user_id=self.final(pk))], ignore_conflicts=True
            )
        for source in sorted(self.merged_into):
            _merge_end_users(tenant, source, self.final(source))



def _merge_end_users(tenant: Tenant, source_pk: int, target_pk: int) -> None:
    """Move everything of `source` to `target` (an alias): events, rollup, ids, traits."""
    # In id order, like every batch: a batch locks both FOR KEY SHARE (the store statements), and
    # the source, deleted below, needs FOR UPDATE. The target only changes non-key columns: FOR NO
    # KEY UPDATE, which batches of the target do not wait for.
    users = EndUser.objects.for_tenant(tenant)
    locked = {}
    for pk in sorted((source_pk, target_pk)):
        rows = users.filter(pk=pk).select_for_update(no_key=pk == target_pk)
        locked[pk] = rows.first()
    source, target = locked[source_pk], locked[target_pk]
    if source is None or target is None:
        return
    Event.objects.for_tenant(tenant).filter(end_user=source).update(end_user=target)
    moved = list(
        DailyActivityCount.objects.for_tenant(tenant).filter(end_user=source).values_list("activity_id", "day", "count")
    )
    DailyActivityCount.objects.for_tenant(tenant).filter(end_user=source).delete()
    _add_to_rollup(tenant, Counter({(target.pk, act, day): n for act, day, n in moved}))
    Identity.objects.for_tenant(tenant).filter(end_user=source).update(end_user=target)
    merge_memberships(tenant, source.pk, target.pk)
    # Per key the newer value by its time; a key with no time on either side keeps the target's.
    source_values = {
        key: (source.trait_times.get(key, ""), value)
        for key, value in source.traits.items()
        if key not in target.traits or source.trait_times.get(key, "") > target.trait_times.get(key, "")
    }
    target.traits = {**target.traits, **{key: value for key, (_, value) in source_values.items()}}
    target.trait_times = {
        **target.trait_times, **{key: when for key, (when, _) in source_values.items() if when}
    }  # fmt: skip
    target.account_id = target.account_id or source.account_id
    target.first_seen_at = min(target.first_seen_at, source.first_seen_at)
    target.save(update_fields=["traits", "trait_times", "account", "first_seen_at"])
    anonymous_id = source.anonymous_id
    source.delete()
    if anonymous_id:
        Identity.objects.bulk_create(
            [Identity(tenant=tenant, anonymous_id=anonymous_id, end_user=target)], ignore_conflicts=True
        )



# Messages older than this when they arrive are history (a CSV backfill, an SDK's retry queue,
# the demo): their end users' first_seen_at moves back to them. Live traffic skips the statement.
HISTORY_AGE = timedelta(hours=1)



# `{scope}`: tenant_sql's predicate.
BACKDATE_SQL = """
WITH v AS (SELECT * FROM unnest(%b::bigint[], %b::timestamptz[]) AS v(id, ts)),
locked AS (
    SELECT u.id, v.ts FROM events_enduser u JOIN v ON v.id = u.id
    WHERE {scope} AND u.first_seen_at > v.ts
    ORDER BY u.id FOR NO KEY UPDATE OF u
)
UPDATE events_enduser u SET first_seen_at = locked.ts FROM locked WHERE u.id = locked.id
"""



def _lock_end_users(tenant: Tenant, pks: set[int]) -> None:
    if pks and connection.vendor == "postgresql":
        list(EndUser.objects.for_tenant(tenant).filter(pk__in=pks).order_by("pk").select_for_update(no_key=True)
             .values_list("pk", flat=True))  # fmt: skip



def _history_starts(messages: list[Message], end_users: list[int]) -> dict[int, datetime]:
    """The earliest event of each end user in the batch whose events arrive as history."""
    earliest: dict[int, datetime] = {}
    for m, pk in zip(messages, end_users, strict=True):
        when = min(m.timestamp, m.received_at)
        if m.received_at - when > HISTORY_AGE and (pk not in earliest or when < earliest[pk]):
            earliest[pk] = when
    return earliest



def _backdate_first_seen(tenant: Tenant, earliest: dict[int, datetime]) -> None:
    """An end user is first seen at their earliest event, not when history about them arrives.

    Signup cohorts (segments by first-seen month) and the grace period read it.
    """
    if not earliest:
        return
    pks = sorted(earliest)
    if connection.vendor == "postgresql":
        scope, scope_params = tenant_sql(tenant, "u", placeholder="%b")
        with _server_bound_cursor() as cursor:
            cursor.execute(BACKDATE_SQL.format(scope=scope), [pks, [earliest[pk] for pk in pks], *scope_params])
        return
    # SQLite: one UPDATE … FROM (VALUES …) per chunk. A CASE with a WHEN per end user, built by the ORM,
    # cost more Python than the whole statement (a third of the demo's seeding time).
    scope, scope_params = tenant_sql(tenant, "events_enduser")
    with connection.cursor() as cursor:
        for start in range(0, len(pks), ATTACH_CHUNK):
            chunk = pks[start : start + ATTACH_CHUNK]
            values = ", ".join(["(%s, %s)"] * len(chunk))
            params = [p for pk in chunk for p in (pk, connection.ops.adapt_datetimefield_value(earliest[pk]))]
            cursor.execute(
                f"UPDATE events_enduser SET first_seen_at = v.column2 FROM (VALUES {values}) AS v "  # noqa: S608
                f"WHERE events_enduser.id = v.column1 AND {scope} AND events_enduser.first_seen_at > v.column2",
                [*params, *scope_params])
