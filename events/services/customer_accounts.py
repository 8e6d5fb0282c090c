"""Customer accounts: ids by group id, traits, and attaching end users to their account (PostgreSQL and portable)."""


from datetime import UTC, datetime

from django.db import connection
from django.utils import timezone

from accounts.models import Tenant
from accounts.scoping import tenant_sql

from .. import owners
from ..models import CustomerAccount
from ..wire import Message
from .db import _server_bound_cursor


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



# A trait's time: its message's timestamp in UTC, fixed width, so the strings order as the times do.
TRAIT_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def trait_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime(TRAIT_TIME_FORMAT)


def _trait_updates(pairs: list[tuple[int, Message]], stored: set[str]) -> dict[int, dict[str, tuple[str, object]]]:
    """Per row, each trait key's newest (time, value) among the messages stored by this batch.

    `stored`: the message ids the insert stored (new ones); a message id the batch holds
    twice counts once, as the store keeps its first row. Equal times: the later message wins.
    """
    updates: dict[int, dict[str, tuple[str, object]]] = {}
    seen: set[str] = set()
    kept = []
    for pk, m in pairs:
        if m.message_id in stored and m.message_id not in seen:
            seen.add(m.message_id)
            kept.append((pk, m))
    kept.sort(key=lambda pair: pair[1].timestamp)  # stable: batch order among equal times
    for pk, m in kept:
        when = trait_time(m.timestamp)
        row = updates.setdefault(pk, {})
        for key, value in m.traits.items():
            row[key] = (when, value)
    return updates


def merge_traits(old: dict, old_times: dict, new: dict[str, tuple[str, object]]) -> tuple[dict, dict, bool]:
    """`new` {key: (time, value)} applied over traits and their times: a key moves only to a time not older."""
    traits, times, changed = dict(old), dict(old_times), False
    for key, (when, value) in new.items():
        before = times.get(key)
        if before is not None and when < before:
            continue  # a replayed older message: the newer value stays
        if traits.get(key, _MISSING) != value or before != when:
            traits[key], times[key], changed = value, when, True
    return traits, times, changed


_MISSING = object()


def _apply_traits(tenant: Tenant, model, updates: dict[int, dict], name_field: str | None = None) -> None:
    """Merge traits into rows, each key only from a message no older than its current value; rows locked in id order."""
    if not updates:
        return
    now = timezone.now()
    rows = list(model.objects.for_tenant(tenant).filter(pk__in=updates).order_by("pk").select_for_update(no_key=True))
    changed_rows = []
    for row in rows:
        row.traits, row.trait_times, changed = merge_traits(row.traits, row.trait_times, updates[row.pk])
        if not changed:
            continue
        row.updated_at = now
        if name_field and isinstance(row.traits.get("name"), str):
            setattr(row, name_field, row.traits["name"][:255])
        changed_rows.append(row)
    fields = ["traits", "trait_times", "updated_at"] + ([name_field] if name_field else [])
    if changed_rows:
        fields += owners.map_traits(tenant, changed_rows)  # owner / renewal date from the traits the workspace names
        model.objects.for_tenant(tenant).bulk_update(changed_rows, fields)



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
# locked in id order first, then updated in one statement. `{scope}`: tenant_sql's predicate.
ATTACH_SQL = """
WITH v AS (SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::bool[]) AS v(id, account_id, explicit)),
locked AS (
    SELECT u.id, v.account_id FROM events_enduser u JOIN v ON v.id = u.id
    WHERE {scope} AND (v.explicit OR u.account_id IS NULL) AND u.account_id IS DISTINCT FROM v.account_id
    ORDER BY u.id FOR NO KEY UPDATE OF u
)
UPDATE events_enduser u SET account_id = locked.account_id FROM locked WHERE u.id = locked.id
"""



def _attach_accounts_postgresql(tenant: Tenant, pks: list[int], attach: dict[int, int], explicit: set[int]) -> None:
    scope, scope_params = tenant_sql(tenant, "u", placeholder="%b")
    with _server_bound_cursor() as cursor:
        cursor.execute(ATTACH_SQL.format(scope=scope),
                       [pks, [attach[pk] for pk in pks], [pk in explicit for pk in pks], *scope_params])



def _attach_accounts_portable(tenant: Tenant, pks: list[int], attach: dict[int, int], explicit: set[int]) -> None:
    """One UPDATE … FROM (VALUES …): a CASE with a WHEN per account, built by the ORM, cost more Python
    than the statement itself on a large import."""
    scope, scope_params = tenant_sql(tenant, "events_enduser")
    values = ", ".join(["(%s, %s, %s)"] * len(pks))
    params = [p for pk in pks for p in (pk, attach[pk], 1 if pk in explicit else 0)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE events_enduser SET account_id = v.column2 FROM (VALUES {values}) AS v "  # noqa: S608
            f"WHERE events_enduser.id = v.column1 AND {scope} AND (v.column3 = 1 AND (events_enduser.account_id "
            "IS NULL OR events_enduser.account_id <> v.column2) OR events_enduser.account_id IS NULL)",
            [*params, *scope_params])
