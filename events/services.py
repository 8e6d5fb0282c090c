"""Storing normalised messages: identities, accounts, the catalog, events and the rollup.

`ingest()` is the one write path for events — the HTTP API, the CSV import and
the demo all go through it. A batch is stored atomically, so a caller
acknowledges only committed events: in one transaction, or, for live tracking of
known end users on PostgreSQL, in one statement (`_store_tracking_only`). Events are inserted with
`ON CONFLICT (tenant, message_id) DO NOTHING RETURNING ...`: the rollup is
incremented from the rows actually stored, which keeps it equal to the event
count per (end user, activity, day) with duplicates, retries and concurrent
requests. Rows are written in a sorted order so concurrent batches take row
locks in the same order and don't deadlock.
"""

import json
from collections import Counter
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import BigIntegerField, Case, F, Q, Value, When
from django.db.models.functions import Least
from django.utils import timezone

from accounts import rls
from accounts.models import Tenant
from accounts.scoping import tenant_sql

from .models import Activity, CustomerAccount, DailyActivityCount, EndUser, Event, Identity, RejectedMessage
from .pg_arrays import DateArray, TextArray, TimestampArray
from .wire import Message, Rejection

INSERT_CHUNK = 500


@dataclass
class IngestResult:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)


# --- Activity ids -------------------------------------------------------------------


def _activity_ids(tenant: Tenant, first_seen: dict[str, datetime], known: list[tuple]) -> dict[str, int]:
    """Ids of the batch's activities, adding new names to the catalog.

    `known`: the (name, pk, first_seen_at) rows `_prefetch` read. An in-process
    cache was measured as not worth the staleness risk (ids from rolled-back
    transactions).
    """
    names = sorted(first_seen)
    rows = known
    if len(rows) < len(names):
        known = {name for name, _, _ in rows}
        Activity.objects.bulk_create(
            [Activity(tenant=tenant, name=name, first_seen_at=first_seen[name]) for name in names if name not in known],
            ignore_conflicts=True,
        )
        rows = _select_by(Activity, "name", tenant, names, "first_seen_at")
    untracked = [(pk, name) for name, pk, seen in rows if seen is None]
    for pk, name in untracked:
        # Proposed in a survey, now received: it leaves the tracking plan.
        Activity.objects.for_tenant(tenant).filter(pk=pk, first_seen_at__isnull=True).update(
            first_seen_at=first_seen[name]
        )
    return {name: pk for name, pk, _ in rows}


def _select_by(model, column: str, tenant: Tenant, values, *extra: str) -> list[tuple]:
    """(column, id, *extra) of the tenant's rows whose `column` is one of `values`.

    The lookup of every batch: on PostgreSQL a prepared statement with one
    array parameter; the ORM's IN list of literals was re-planned each time
    and cost more than the event insert.
    """
    values = list(values)
    if connection.vendor == "postgresql":
        fields = ", ".join([column, "id", *extra])
        where, params = tenant_sql(tenant)
        sql = f"SELECT {fields} FROM {model._meta.db_table} WHERE {where} AND {column} = ANY(%s)"  # noqa: S608
        return _fetch_prepared(sql, [*params, values])
    return list(model.objects.for_tenant(tenant).filter(**{f"{column}__in": values}).values_list(column, "pk", *extra))


PREFETCH_SQL = """
SELECT 'u', user_id, id, NULL::timestamptz FROM events_enduser WHERE tenant_id = %s AND user_id = ANY(%s)
UNION ALL
SELECT 'a', name, id, first_seen_at FROM events_activity WHERE tenant_id = %s AND name = ANY(%s)
"""


def _prefetch(tenant: Tenant, user_ids: set[str], names) -> tuple[list[tuple], list[tuple]]:
    """The batch's known end users (user_id, pk) and activities (name, pk, first_seen_at).

    One round trip on PostgreSQL: every statement of a batch costs both sides
    ~0.1 ms of CPU on top of its own work.
    """
    if connection.vendor != "postgresql":
        users = _select_by(EndUser, "user_id", tenant, user_ids) if user_ids else []
        return users, (_select_by(Activity, "name", tenant, names, "first_seen_at") if names else [])
    params = [tenant.pk, TextArray(user_ids), tenant.pk, TextArray(names)]
    rows = _first_statement(lambda: _fetch_prepared(PREFETCH_SQL, params, scope=tenant))
    return [(key, pk) for kind, key, pk, _ in rows if kind == "u"], [row[1:] for row in rows if row[0] == "a"]


def _first_statement(run):
    """Run the first statement of a batch; a connection that died since the last request is replaced, once.

    The ingestion path skips Django's per-request health check (a `SELECT 1`
    round trip), so a persistent connection killed by a restart or an idle
    timeout is found here. Running the statement again is safe: each is
    all-or-nothing, and one that did commit before its answer was lost only
    finds duplicates the second time.
    """
    reused = connection.connection is not None  # else the failure was connecting: no second wait
    try:
        return run()
    except (OperationalError, InterfaceError):
        if not reused or connection.in_atomic_block or connection.is_usable():
            raise  # unreachable, a live connection that failed, or a transaction to keep: 503
        connection.close()
        return run()  # on a new connection


def _fetch_prepared(sql: str, params, scope: Tenant | None = None) -> list[tuple]:
    """Run a prepared statement and fetch its rows.

    `scope`: the statement may run outside a transaction (autocommit), so it
    sets the tenant for row-level security itself, in the same round trip
    (`rls.autocommit_scope`). Inside a transaction the tenant is set already.
    """
    with _server_bound_cursor() as cursor:
        if scope is None:
            cursor.execute(sql, params, prepare=True)
        else:
            with rls.autocommit_scope(scope):
                cursor.execute(sql, params, prepare=True)
        return cursor.fetchall()


# --- Identities ---------------------------------------------------------------------


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
    target.traits = {**source.traits, **target.traits}
    target.account_id = target.account_id or source.account_id
    target.first_seen_at = min(target.first_seen_at, source.first_seen_at)
    target.save(update_fields=["traits", "account", "first_seen_at"])
    anonymous_id = source.anonymous_id
    source.delete()
    if anonymous_id:
        Identity.objects.bulk_create(
            [Identity(tenant=tenant, anonymous_id=anonymous_id, end_user=target)], ignore_conflicts=True
        )


# --- Accounts and traits ------------------------------------------------------------


def _account_ids(tenant: Tenant, group_ids: set[str]) -> dict[str, int]:
    if not group_ids:
        return {}
    qs = CustomerAccount.objects.for_tenant(tenant).filter(group_id__in=group_ids)
    missing = group_ids - set(qs.values_list("group_id", flat=True))
    if missing:
        CustomerAccount.objects.bulk_create(
            [CustomerAccount(tenant=tenant, group_id=gid) for gid in sorted(missing)], ignore_conflicts=True
        )
    return dict(qs.values_list("group_id", "pk"))


def _apply_traits(tenant: Tenant, model, updates: dict[int, dict], name_field: str | None = None) -> None:
    """Merge traits into rows (new keys win), locking rows in id order."""
    if not updates:
        return
    now = timezone.now()
    rows = list(model.objects.for_tenant(tenant).filter(pk__in=updates).order_by("pk").select_for_update(no_key=True))
    for row in rows:
        row.traits = {**row.traits, **updates[row.pk]}
        row.updated_at = now
        if name_field and isinstance(row.traits.get("name"), str):
            setattr(row, name_field, row.traits["name"][:255])
    fields = ["traits", "updated_at"] + ([name_field] if name_field else [])
    model.objects.for_tenant(tenant).bulk_update(rows, fields)


# --- Events and the rollup ----------------------------------------------------------


def _placeholders(columns: int, rows: int) -> str:
    row = ", ".join(["%s"] * columns)
    return ", ".join([f"({row})"] * rows)


@contextmanager
def _server_bound_cursor():
    """A psycopg cursor with server-side parameter binding, inside Django's current transaction.

    Django's psycopg backend binds parameters client-side, quoting each array
    element into the SQL text; server-side binding sends the arrays as they are.
    Errors come out as Django's (OperationalError, IntegrityError, ...), and
    mark the connection for Django's end-of-request check, as with its own cursors.
    """
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


EVENT_COLUMNS = (
    "tenant_id, message_id, type, end_user_id, activity_id, account_id, timestamp, received_at, day, payload"
)


def _insert_events(tenant: Tenant, rows: list[tuple]) -> list[tuple[int, int | None, object]]:
    """Insert event rows (without tenant), skipping duplicate message ids.

    Returns (end_user, activity, day) of the rows actually stored. The portable
    path (SQLite); PostgreSQL stores a batch with `STORE_SQL`.
    """
    table = Event._meta.db_table
    conflict = "ON CONFLICT (tenant_id, message_id) DO NOTHING RETURNING end_user_id, activity_id, day"
    stored: list[tuple] = []
    with connection.cursor() as cursor:
        ops = connection.ops
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            params = []
            for message_id, type_, eu, act, acc, ts, received, day, payload in chunk:
                ts, received = ops.adapt_datetimefield_value(ts), ops.adapt_datetimefield_value(received)
                params += [tenant.pk, message_id, type_, eu, act, acc, ts, received, ops.adapt_datefield_value(day)]
                params.append(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))
            values = _placeholders(10, len(chunk))
            cursor.execute(
                f"INSERT INTO {table} ({EVENT_COLUMNS}) VALUES {values} {conflict}",  # noqa: S608
                params,
            )
            stored.extend(cursor.fetchall())
    return stored


def _add_to_rollup(tenant: Tenant, counts: Counter) -> None:
    """Add counts to the rollup, in key order so concurrent batches lock rows in the same order."""
    if not counts:
        return
    table = DailyActivityCount._meta.db_table
    upsert = f"ON CONFLICT (end_user_id, activity_id, day) DO UPDATE SET count = {table}.count + excluded.count"
    keys = sorted(counts)
    if connection.vendor == "postgresql":
        with _server_bound_cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (tenant_id, end_user_id, activity_id, day, count) "  # noqa: S608
                "SELECT %b, eu, act, d, n FROM unnest(%b::bigint[], %b::bigint[], %b::date[], %b::int[]) "
                f"AS u(eu, act, d, n) {upsert}",
                [
                    tenant.pk,
                    [k[0] for k in keys],
                    [k[1] for k in keys],
                    [k[2] for k in keys],
                    [counts[k] for k in keys],
                ],
            )
            return
    with connection.cursor() as cursor:
        ops = connection.ops
        for start in range(0, len(keys), INSERT_CHUNK):
            chunk = keys[start : start + INSERT_CHUNK]
            params = []
            for end_user_id, activity_id, day in chunk:
                count = counts[(end_user_id, activity_id, day)]
                params += [tenant.pk, end_user_id, activity_id, ops.adapt_datefield_value(day), count]
            cursor.execute(
                f"INSERT INTO {table} (tenant_id, end_user_id, activity_id, day, count) "  # noqa: S608
                f"VALUES {_placeholders(5, len(chunk))} {upsert}",
                params,
            )


def _day_value(value):
    # Rows come back from RETURNING as date (PostgreSQL) or ISO text (SQLite).
    return value if not isinstance(value, str) else datetime.fromisoformat(value).date()


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
        "m": TextArray([m.message_id for m in messages]),
        "ty": TextArray([m.type for m in messages]),
        "uid": TextArray([m.user_id for m in messages]),
        "name": TextArray([m.activity for m in messages]),
        "ts": TimestampArray([m.timestamp for m in messages]),
        "ra": TimestampArray([m.received_at for m in messages]),
        "d": DateArray([m.timestamp.astimezone(zone).date() for m in messages]),
        "p": TextArray([_payload_json(m.raw) for m in messages]),
    }
    ((complete, stored),) = _first_statement(lambda: _fetch_prepared(STORE_KNOWN_SQL, params, scope=tenant))
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

    # 2. Accounts (group calls and context.groupId) and traits.
    accounts = _account_ids(tenant, groups)
    user_traits: dict[int, dict] = {}
    account_traits: dict[int, dict] = {}
    attach: dict[int, int] = {}
    for m, pk in zip(messages, end_users, strict=True):
        if m.type == "identify" and m.traits:
            user_traits.setdefault(pk, {}).update(m.traits)
        group = m.group_id
        if group:
            if m.type == "group":
                attach[pk] = accounts[group]
                if m.traits:
                    account_traits.setdefault(accounts[group], {}).update(m.traits)
            else:
                attach.setdefault(pk, accounts[group])
    history = _history_starts(messages, end_users)
    # Every end user this batch changes, locked at once in id order: the three statements
    # below each lock some of them, and two batches taking them statement by statement deadlock.
    _lock_end_users(tenant, user_traits.keys() | attach.keys() | history.keys())
    _backdate_first_seen(tenant, history)
    _apply_traits(tenant, EndUser, user_traits)
    _apply_traits(tenant, CustomerAccount, account_traits, name_field="name")
    _attach_accounts(
        tenant, attach, explicit={pk for m, pk in zip(messages, end_users, strict=True) if m.type == "group"}
    )

    # 3. Catalog, events and rollup.
    activity_ids = _activity_ids(tenant, first_seen, known=known_activities) if first_seen else {}
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
        result.stored = _store_events_postgresql(tenant, rows)
    else:
        rows.sort(key=lambda row: row[0])
        stored = _insert_events(tenant, rows)
        result.stored = len(stored)
        _add_to_rollup(
            tenant,
            Counter((end_user_id, activity, _day_value(day)) for end_user_id, activity, day in stored if activity),
        )
    result.duplicates = len(messages) - result.stored


# The end of both store statements: the rollup adds exactly the rows the insert returned
# (duplicates are skipped by ON CONFLICT), in key order so concurrent batches lock in the same
# order; the answer is (whether every end user and activity was there, how many were stored).
_ROLLUP_STORED = """
), counted AS (
    INSERT INTO events_dailyactivitycount AS r (tenant_id, end_user_id, activity_id, day, count)
    SELECT %(tenant)b, end_user_id, activity_id, day, count(*) FROM stored WHERE activity_id IS NOT NULL
    GROUP BY end_user_id, activity_id, day ORDER BY end_user_id, activity_id, day
    ON CONFLICT (end_user_id, activity_id, day) DO UPDATE SET count = r.count + excluded.count
)
SELECT (SELECT ok FROM complete), count(*) FROM stored
"""


# One statement: the batch as one binary array per column (psycopg sends these without quoting
# each element; json_to_recordset() was measured at 3x the PostgreSQL CPU for the same rows).
# Events are inserted in message-id order and the rollup rows in key order, so concurrent batches
# take their locks in the same order; the rollup adds exactly the rows the insert stored
# (duplicates are skipped by ON CONFLICT).
#
# The event table has no database foreign key to its end user (a check per row: 0.6 ms of
# PostgreSQL CPU per batch of 100): the statement locks the batch's end users itself, FOR KEY
# SHARE, as the key check would, in one pass. A merge (`_merge_end_users`) locks its source FOR
# UPDATE, moves its events and deletes it: a batch that took its lock first is moved with it,
# and a batch that waited finds the end user gone and stores nothing (`complete` is false).
STORE_SQL = """
WITH users AS (
    SELECT id FROM events_enduser WHERE tenant_id = %(tenant)b AND id = ANY(%(end_users)b::bigint[])
    ORDER BY id FOR KEY SHARE
), complete AS (
    SELECT count(*) = cardinality(%(end_users)b::bigint[]) AS ok FROM users
), stored AS (
    INSERT INTO events_event (tenant_id, message_id, type, end_user_id, activity_id, account_id,
                              timestamp, received_at, day, payload)
    SELECT %(tenant)b, m, ty, eu, act, acc, ts, ra, d, p::jsonb
    FROM unnest(%(m)b::text[], %(ty)b::text[], %(eu)b::bigint[], %(act)b::bigint[], %(acc)b::bigint[],
                %(ts)b::timestamptz[], %(ra)b::timestamptz[], %(d)b::date[], %(p)b::text[])
        AS b(m, ty, eu, act, acc, ts, ra, d, p)
    WHERE (SELECT ok FROM complete)
    ORDER BY m
    ON CONFLICT (tenant_id, message_id) DO NOTHING
    RETURNING end_user_id, activity_id, day
""" + _ROLLUP_STORED  # noqa: S608 (constants only)


# `STORE_SQL` for a batch of known end users and activities, given by user id and name: the lookups
# join in (and lock the end users), so the batch takes one round trip. `complete` is false when one
# of them is missing, merged away meanwhile, or the activity was proposed in a survey and never
# received; then nothing is inserted and the batch takes the transactional path, which creates them.
STORE_KNOWN_SQL = """
WITH users AS (
    SELECT user_id, id FROM events_enduser
    WHERE tenant_id = %(tenant)b AND user_id = ANY(%(user_ids)b::text[])
    ORDER BY id FOR KEY SHARE
), activities AS (
    SELECT name, id FROM events_activity
    WHERE tenant_id = %(tenant)b AND name = ANY(%(names)b::text[]) AND first_seen_at IS NOT NULL
), complete AS (
    SELECT (SELECT count(*) FROM users) = %(users)b AND (SELECT count(*) FROM activities) = %(activities)b AS ok
), stored AS (
    INSERT INTO events_event (tenant_id, message_id, type, end_user_id, activity_id, account_id,
                              timestamp, received_at, day, payload)
    SELECT %(tenant)b, b.m, b.ty, u.id, a.id, NULL, b.ts, b.ra, b.d, b.p::jsonb
    FROM unnest(%(m)b::text[], %(ty)b::text[], %(uid)b::text[], %(name)b::text[],
                %(ts)b::timestamptz[], %(ra)b::timestamptz[], %(d)b::date[], %(p)b::text[])
        AS b(m, ty, uid, name, ts, ra, d, p)
    JOIN users u ON u.user_id = b.uid
    JOIN activities a ON a.name = b.name
    WHERE (SELECT ok FROM complete)
    ORDER BY b.m
    ON CONFLICT (tenant_id, message_id) DO NOTHING
    RETURNING end_user_id, activity_id, day
""" + _ROLLUP_STORED  # noqa: S608 (constants only)


class EndUserMerged(OperationalError):
    """An end user of the batch was merged into another (and deleted) by a concurrent batch.

    Like a serialization failure: `ingest` runs the batch again, up to
    `MERGE_ATTEMPTS` times; then the API answers 503 and the client retries.
    """

    def __init__(self, message="an end user of the batch was merged or deleted while it was stored; retry"):
        super().__init__(message)


def _store_events_postgresql(tenant: Tenant, rows: list[tuple]) -> int:
    """Insert the rows and add them to the rollup; returns how many were stored (not duplicates)."""
    m, ty, eu, act, acc, ts, ra, d, payloads = zip(*rows, strict=True)
    payloads = TextArray([_payload_json(payload) for payload in payloads])
    params = {"tenant": tenant.pk, "end_users": sorted(set(eu)), "m": TextArray(m), "ty": TextArray(ty),
              "eu": [*eu], "act": [*act], "acc": [*acc], "ts": TimestampArray(ts), "ra": TimestampArray(ra),
              "d": DateArray(d), "p": payloads}  # fmt: skip
    ((complete, stored),) = _fetch_prepared(STORE_SQL, params)
    if not complete:
        raise EndUserMerged
    return stored


def _payload_json(payload) -> str:
    # orjson: ~10x faster than json.dumps. It refuses integers beyond 64 bits (which jsonb
    # keeps) and nesting beyond 255 levels: json.dumps writes those.
    try:
        return orjson.dumps(payload).decode()
    except orjson.JSONEncodeError:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


# Row locks on end users and accounts are FOR NO KEY UPDATE (what a plain UPDATE of a non-key
# column takes): FOR UPDATE would also block the FOR KEY SHARE lock that every event insert takes
# on its end user through the foreign key, and two concurrent batches would deadlock.

# Messages older than this when they arrive are history (a CSV backfill, an SDK's retry queue,
# the demo): their end users' first_seen_at moves back to them. Live traffic skips the statement.
HISTORY_AGE = timedelta(hours=1)

BACKDATE_SQL = """
WITH v AS (SELECT * FROM unnest(%b::bigint[], %b::timestamptz[]) AS v(id, ts)),
locked AS (
    SELECT u.id, v.ts FROM events_enduser u JOIN v ON v.id = u.id
    WHERE u.tenant_id = %b AND u.first_seen_at > v.ts
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
        with _server_bound_cursor() as cursor:
            cursor.execute(BACKDATE_SQL, [pks, [earliest[pk] for pk in pks], tenant.pk])
        return
    for start in range(0, len(pks), ATTACH_CHUNK):
        chunk = pks[start : start + ATTACH_CHUNK]
        EndUser.objects.for_tenant(tenant).filter(pk__in=chunk).update(
            first_seen_at=Least(
                F("first_seen_at"),
                Case(*(When(pk=pk, then=Value(earliest[pk])) for pk in chunk), default=F("first_seen_at")),
            )
        )


def _attach_accounts(tenant: Tenant, attach: dict[int, int], explicit: set[int]) -> None:
    """Set end users' account: a group call always does; context.groupId only fills an empty one.

    One set-based statement per call (a batch or a CSV chunk) instead of one
    UPDATE per account. Rows that would not change (already in that account)
    are not rewritten. On PostgreSQL the candidate rows are locked in id order
    first, like `_apply_traits`, so concurrent batches don't deadlock.
    """
    if not attach:
        return
    pks = sorted(attach)
    if connection.vendor == "postgresql":
        _attach_accounts_postgresql(tenant, pks, attach, explicit)
        return
    for start in range(0, len(pks), ATTACH_CHUNK):
        _attach_accounts_portable(tenant, pks[start : start + ATTACH_CHUNK], attach, explicit)


ATTACH_CHUNK = 300  # the portable statement has ~2 parameters per end user: stay under SQLite's 999

# The candidate rows (a group call: any other account; a context.groupId: no account yet) are
# locked in id order first, then updated in one statement.
ATTACH_SQL = """
WITH v AS (SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::bool[]) AS v(id, account_id, explicit)),
locked AS (
    SELECT u.id, v.account_id FROM events_enduser u JOIN v ON v.id = u.id
    WHERE u.tenant_id = %b AND (v.explicit OR u.account_id IS NULL) AND u.account_id IS DISTINCT FROM v.account_id
    ORDER BY u.id FOR NO KEY UPDATE OF u
)
UPDATE events_enduser u SET account_id = locked.account_id FROM locked WHERE u.id = locked.id
"""


def _attach_accounts_postgresql(tenant: Tenant, pks: list[int], attach: dict[int, int], explicit: set[int]) -> None:
    with _server_bound_cursor() as cursor:
        cursor.execute(ATTACH_SQL, [pks, [attach[pk] for pk in pks], [pk in explicit for pk in pks], tenant.pk])


def _attach_accounts_portable(tenant: Tenant, pks: list[int], attach: dict[int, int], explicit: set[int]) -> None:
    by_account: dict[int, list[int]] = {}
    for pk in pks:
        by_account.setdefault(attach[pk], []).append(pk)
    forced = [pk for pk in pks if pk in explicit]
    filling = [pk for pk in pks if pk not in explicit]
    (
        EndUser.objects.for_tenant(tenant)
        .filter(Q(pk__in=forced) | Q(pk__in=filling, account__isnull=True))
        .update(
            account_id=Case(
                *(When(pk__in=members, then=Value(account_id)) for account_id, members in sorted(by_account.items())),
                default=F("account_id"),
                output_field=BigIntegerField(),
            )
        )
    )
