"""Customer accounts: ids by group id, traits, and attaching end users to their account (PostgreSQL and portable)."""


from django.db import connection
from django.db.models import BigIntegerField, Case, F, Q, Value, When
from django.utils import timezone

from accounts.models import Tenant

from .. import owners
from ..models import CustomerAccount, EndUser
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
    fields += owners.map_traits(tenant, rows)  # owner / renewal date from the traits the workspace names
    model.objects.for_tenant(tenant).bulk_update(rows, fields)



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
