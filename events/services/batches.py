"""`ingest()`: one batch of normalised messages, stored atomically (one statement, or a transaction)."""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction

from accounts import rls
from accounts.models import Tenant

from ..models import CustomerAccount, EndUser, RejectedMessage
from ..pg_arrays import DateArray, TextArray, TimestampArray
from ..wire import Message, Rejection
from .customer_accounts import _account_ids, _apply_traits, _attach_accounts, _trait_updates
from .db import _fetch_prepared, _first_statement
from .identities import HISTORY_AGE, IdentityResolver, _backdate_first_seen, _history_starts, _lock_end_users
from .lookups import _activity_ids, _prefetch
from .memberships import ends_membership, membership_changes, record_memberships
from .store import (
    EndUserMerged,
    _add_to_rollup,
    _day_value,
    _insert_events,
    _payload_json,
    _store_events_postgresql,
    store_sql,
)


@dataclass
class IngestResult:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)



@dataclass
class _Survey:
    """What the lookups of a batch need, gathered in one pass over its messages."""

    user_ids: set[str] = field(default_factory=set)
    anonymous_ids: set[str] = field(default_factory=set)
    previous_ids: set[str] = field(default_factory=set)
    linked: set[str] = field(default_factory=set)  # anonymous ids seen with a user id
    unlinked: set[str] = field(default_factory=set)  # anonymous ids seen alone
    groups: set[str] = field(default_factory=set)
    first_seen: dict[str, datetime] = field(default_factory=dict)
    real: set[str] = field(default_factory=set)  # activities in at least one event not marked as a test
    # Only track/page/screen calls of user ids, no account, nothing older than HISTORY_AGE:
    # such a batch changes no end user, only events and the rollup (see `_store_tracking_only`).
    tracking_only: bool = True



def _survey(messages: list[Message]) -> _Survey:
    survey = _Survey()
    first_seen = survey.first_seen
    tracking_only = True
    for m in messages:
        user_id, anonymous_id, activity = m.user_id, m.anonymous_id, m.activity
        if anonymous_id is not None:
            survey.anonymous_ids.add(anonymous_id)
            (survey.linked if user_id is not None else survey.unlinked).add(anonymous_id)
            tracking_only = False
        if user_id is not None:
            survey.user_ids.add(user_id)
        if m.type == "alias" and m.previous_id:
            survey.previous_ids.add(m.previous_id)
        if m.group_id:
            survey.groups.add(m.group_id)
            tracking_only = False
        if activity:
            if activity not in first_seen or m.timestamp < first_seen[activity]:
                first_seen[activity] = m.timestamp
            if not (m.context and m.context.get("testEvent") is True):
                survey.real.add(activity)
            if tracking_only and m.received_at - min(m.timestamp, m.received_at) > HISTORY_AGE:
                tracking_only = False
        else:
            tracking_only = False  # identify, group, alias
    survey.tracking_only = tracking_only
    return survey



def ingest(
    *, tenant: Tenant, messages: Iterable[Message], rejections: Iterable[Rejection] = (), source: str = "api"
) -> IngestResult:
    """Store a batch of normalised messages for `tenant` atomically: all of it or nothing."""
    messages = list(messages)
    rejections = list(rejections)
    result = IngestResult(received=len(messages) + len(rejections), rejected=len(rejections), rejections=rejections)
    survey = _survey(messages) if messages else None
    known_users = known_activities = None
    if survey is not None and not rejections:
        if _store_tracking_only(tenant, messages, survey, result):
            return result
        known_users, known_activities = _prefetch(tenant, survey.user_ids, sorted(survey.first_seen))
    for attempt in range(MERGE_ATTEMPTS):
        try:
            # The batch's transaction, with the tenant set for row-level security.
            with rls.tenant_context(tenant) if rls.enabled() else transaction.atomic():
                _ingest_in_transaction(
                    tenant, messages, rejections, source, result, survey, known_users, known_activities
                )
            return result
        except EndUserMerged:
            if attempt == MERGE_ATTEMPTS - 1:
                raise
            # Rolled back: resolve the batch's ids again, now that the merge is committed.
            known_users = known_activities = None
    return result



# Each attempt fails only if a merge committed while this batch waited for one of its end users.
MERGE_ATTEMPTS = 3



def _store_tracking_only(tenant: Tenant, messages: list[Message], survey: _Survey, result: IngestResult) -> bool:
    """The live tracking of known end users: one statement, lookups included, which is its own transaction.

    Most traffic is track/page/screen calls of end users and activities that
    exist already. Such a batch writes only events and the rollup, so
    `STORE_KNOWN_SQL` looks up its end users and activities and stores it in one
    round trip, with no BEGIN and COMMIT (on PostgreSQL, in autocommit, outside
    any caller's transaction). Anything else — an anonymous id, an account,
    traits, history — returns False at once; a new end user or activity returns
    False after that statement stored nothing. Either way the batch then takes
    the transactional path.
    """
    if not survey.tracking_only or connection.vendor != "postgresql" or connection.in_atomic_block:
        return False
    zone = tenant.tzinfo
    user_ids, names = TextArray(survey.user_ids), TextArray(survey.first_seen)
    params = {
        "tenant": tenant.pk,
        "user_ids": user_ids,
        "names": names,
        "users": len(user_ids),
        "activities": len(names),
        "earliest": min(m.timestamp for m in messages),
        "m": TextArray([m.message_id for m in messages]),
        "ty": TextArray([m.type for m in messages]),
        "uid": TextArray([m.user_id for m in messages]),
        "name": TextArray([m.activity for m in messages]),
        "ts": TimestampArray([m.timestamp for m in messages]),
        "ra": TimestampArray([m.received_at for m in messages]),
        "d": DateArray([m.timestamp.astimezone(zone).date() for m in messages]),
        "p": TextArray([_payload_json(m.raw) for m in messages]),
    }
    sql = store_sql(known=True)
    ((complete, stored, _),) = _first_statement(lambda: _fetch_prepared(sql, params, scope=tenant))
    if not complete:
        return False
    result.stored = stored
    result.duplicates = len(messages) - stored
    return True



def _ingest_in_transaction(
    tenant: Tenant,
    messages: list[Message],
    rejections: list[Rejection],
    source: str,
    result: IngestResult,
    survey: _Survey | None,
    known_users: list[tuple] | None,
    known_activities: list[tuple] | None,
) -> None:
    if rejections:
        RejectedMessage.objects.bulk_create(
            [
                RejectedMessage(
                    tenant=tenant,
                    message_id=(r.message_id or "")[:100],
                    reason=r.reason[:500],
                    field=(r.field or "")[:100],
                    payload=r.raw if isinstance(r.raw, (dict, list, str, int, float, bool)) else repr(r.raw),
                    source=source,
                )
                for r in rejections
            ]
        )
    if not messages:
        return
    if known_users is None:
        known_users, known_activities = _prefetch(tenant, survey.user_ids, sorted(survey.first_seen))
    user_ids, anonymous_ids, previous_ids = survey.user_ids, survey.anonymous_ids, survey.previous_ids
    linked, unlinked, groups, first_seen = survey.linked, survey.unlinked, survey.groups, survey.first_seen

    # 1. Identities: every user id and anonymous id of the batch, then each message's end user.
    resolver = IdentityResolver(tenant)
    resolver.load(user_ids, anonymous_ids | previous_ids, previous_ids, known=known_users)
    if linked:
        for m in messages:
            if m.user_id is not None and m.anonymous_id is not None and m.anonymous_id not in resolver.by_anonymous_id:
                resolver.link(m.anonymous_id, resolver.by_user_id[m.user_id])
    resolver.create_anonymous(unlinked - linked)
    end_users = [resolver.resolve(m) for m in messages]
    resolver.apply()
    if resolver.merged_into:
        end_users = [resolver.final(pk) for pk in end_users]

    # 2. Accounts (group calls and context.groupId); traits are applied once the events are stored.
    accounts = _account_ids(tenant, groups)
    user_traits: list[tuple[int, Message]] = []
    account_traits: list[tuple[int, Message]] = []
    attach: dict[int, int] = {}
    for m, pk in zip(messages, end_users, strict=True):
        if m.type == "identify" and m.traits:
            user_traits.append((pk, m))
        group = m.group_id
        if group:
            if m.type == "group":
                if not ends_membership(m):
                    attach[pk] = accounts[group]
                if m.traits:
                    account_traits.append((accounts[group], m))
            else:
                attach.setdefault(pk, accounts[group])
    history = _history_starts(messages, end_users)
    memberships = membership_changes(messages, end_users, accounts)
    # Every end user this batch changes, locked at once in id order: the statements
    # below each lock some of them, and two batches taking them statement by statement deadlock.
    _lock_end_users(tenant, {pk for pk, _ in user_traits} | attach.keys() | history.keys() | memberships.end_users)
    _backdate_first_seen(tenant, history)
    _attach_accounts(
        tenant, attach, explicit={pk for m, pk in zip(messages, end_users, strict=True) if m.type == "group"}
    )
    record_memberships(tenant, memberships)

    # 3. Catalog, events and rollup.
    activity_ids = _activity_ids(tenant, first_seen, known=known_activities, real=survey.real) if first_seen else {}
    tz = tenant.tzinfo
    rows = []
    for m, end_user_id in zip(messages, end_users, strict=True):
        group = m.group_id
        rows.append(
            (
                m.message_id,
                m.type,
                end_user_id,
                activity_ids.get(m.activity) if m.activity else None,
                accounts.get(group) if group else None,
                m.timestamp,
                m.received_at,
                m.timestamp.astimezone(tz).date(),
                m.raw,
            )
        )
    if connection.vendor == "postgresql":
        result.stored, new_ids = _store_events_postgresql(tenant, rows)
    else:
        rows.sort(key=lambda row: row[0])
        stored = _insert_events(tenant, rows)
        result.stored = len(stored)
        new_ids = {message_id for _, activity, _, message_id in stored if activity is None}
        _add_to_rollup(
            tenant,
            Counter((end_user_id, activity, _day_value(day)) for end_user_id, activity, day, _ in stored if activity),
        )
    result.duplicates = len(messages) - result.stored

    # 4. Traits, from the identify and group calls stored just now: a duplicate message (a retry,
    # a replayed batch) changes nothing, and each key takes its newest value by timestamp.
    if user_traits or account_traits:
        _apply_traits(tenant, EndUser, _trait_updates(user_traits, new_ids))
        _apply_traits(tenant, CustomerAccount, _trait_updates(account_traits, new_ids), name_field="name")
