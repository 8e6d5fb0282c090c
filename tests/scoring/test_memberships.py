"""Users in several accounts, through ingestion and the account roll-up (docs/scoring.md).

Hand-computed world (tenant in Europe/Paris, model: Logged in = 1, Shared photo = 5, 30-day
window, sum roll-up). Everyone is grouped on 1 March; dana (a consultant) is in acme and, from
31 March 09:00 UTC, in globex too.

    30 March: dana 1 Logged in + 1 Shared photo                     -> dana 6
    31 March: alice 2 Logged in, bob 1 Shared photo, carol 3 Logged in,
              dana 1 Logged in + 1 Shared photo                     -> alice 2, bob 5, carol 3, dana 12
    acme   (alice, bob, dana):  30 March 6 (1 active, 3 seats);  31 March 2 + 5 + 12 = 19 (3 active, 3 seats)
    globex (carol; dana from 31 March): 30 March 0 (0 active, 1 seat); 31 March 3 + 12 = 15 (2, 2)
"""

from datetime import date

import pytest
from django.utils import timezone

from events import wire
from events.models import AccountMembership, CustomerAccount, EndUser
from events.services import ingest
from scoring import engine
from scoring.models import AccountScore

from .conftest import make_model
from .test_engine import _snapshot

pytestmark = pytest.mark.django_db

DAY1, DAY2 = date(2026, 3, 30), date(2026, 3, 31)
_n = iter(range(10_000))


def send(tenant, *raws) -> None:
    now = timezone.now()
    messages = [wire.normalize({**raw, "messageId": f"m{next(_n)}"}, kind="batch", received_at=now,
                               batch_sent_at=None) for raw in raws]  # fmt: skip
    assert all(isinstance(m, wire.Message) for m in messages), messages
    ingest(tenant=tenant, messages=messages)


def group(user, group_id, ts="2026-03-01T10:00:00Z", **context):
    raw = {"type": "group", "userId": user, "groupId": group_id, "timestamp": ts, "traits": {"name": group_id}}
    return {**raw, "context": context} if context else raw


def track(user, event, ts, times=1, **context):
    raw = {"type": "track", "userId": user, "event": event, "timestamp": ts}
    return [{**raw, "context": context} if context else raw for _ in range(times)]


def world(tenant):
    send(tenant, group("alice", "acme"), group("bob", "acme"), group("carol", "globex"), group("dana", "acme"))
    send(
        tenant,
        *track("dana", "Logged in", "2026-03-30T10:00:00Z"),
        *track("dana", "Shared photo", "2026-03-30T10:00:00Z"),
        *track("alice", "Logged in", "2026-03-31T10:00:00Z", times=2),
        *track("bob", "Shared photo", "2026-03-31T10:00:00Z"),
        *track("carol", "Logged in", "2026-03-31T10:00:00Z", times=3),
        *track("dana", "Logged in", "2026-03-31T10:00:00Z"),
        *track("dana", "Shared photo", "2026-03-31T10:00:00Z"),
    )


def accounts(model, day):
    return {
        r.account.group_id: (float(r.points), r.active_users, r.seats)
        for r in AccountScore.objects.for_tenant(model.tenant).filter(model=model, day=day).select_related("account")
    }


def day_rows(model, day):
    users, accounts_, product = _snapshot(model)
    return [r for r in users if r[0] == day], [r for r in accounts_ if r[0] == day], [r for r in product if r[0] == day]


@pytest.fixture
def model(tenant, acts):
    return make_model(tenant, {acts["Logged in"]: 1, acts["Shared photo"]: 5}, window_days=30, account_rollup="sum")


def test_a_user_in_two_accounts_counts_in_full_in_each(tenant, model):
    world(tenant)
    send(tenant, group("dana", "globex", ts="2026-03-31T09:00:00Z"))
    for day in (DAY1, DAY2):
        engine.compute_day(model, day)
    assert accounts(model, DAY2) == {"acme": (19.0, 3, 3), "globex": (15.0, 2, 2)}
    assert accounts(model, DAY1) == {"acme": (6.0, 1, 3), "globex": (0.0, 0, 1)}
    dana = EndUser.objects.for_tenant(tenant).get(user_id="dana")
    # The primary account (lists, CSV groupId) is the last one grouped; both memberships are open.
    assert dana.account.group_id == "globex"
    assert sorted(m.account.group_id for m in dana.memberships.filter(ended_at=None)) == ["acme", "globex"]


def test_an_old_day_recomputed_after_a_user_joins_a_second_account_gives_the_same_rows(tenant, model):
    world(tenant)
    engine.compute_day(model, DAY1)
    before = day_rows(model, DAY1)
    assert accounts(model, DAY1) == {"acme": (6.0, 1, 3), "globex": (0.0, 0, 1)}

    send(tenant, group("dana", "globex", ts="2026-03-31T09:00:00Z"))
    # A brand-new account, grouped on 31 March, has no row on 30 March either.
    send(tenant, group("erin", "initech", ts="2026-03-31T09:00:00Z"))
    engine.compute_day(model, DAY1)
    assert day_rows(model, DAY1) == before
    engine.compute_day(model, DAY2)
    assert accounts(model, DAY2) == {"acme": (19.0, 3, 3), "globex": (15.0, 2, 2), "initech": (0.0, 0, 1)}


def test_leaving_an_account_takes_an_explicit_call_and_keeps_the_history(tenant, model):
    world(tenant)
    send(tenant, group("dana", "globex", ts="2026-03-31T09:00:00Z"))
    # Another group call changes nothing; only context.membership = "ended" leaves.
    send(tenant, group("dana", "acme", ts="2026-03-31T09:30:00Z"))
    assert AccountMembership.objects.for_tenant(tenant).filter(end_user__user_id="dana").count() == 2
    engine.compute_day(model, DAY1)
    before = day_rows(model, DAY1)

    send(tenant, group("dana", "acme", ts="2026-03-31T11:00:00Z", membership="ended"))
    engine.compute_day(model, DAY1)
    engine.compute_day(model, DAY2)
    assert day_rows(model, DAY1) == before  # dana still counted in acme on 30 March
    # Membership is read as it stood when the day ended: dana left acme during 31 March.
    assert accounts(model, DAY2) == {"acme": (7.0, 2, 2), "globex": (15.0, 2, 2)}
    ended = AccountMembership.objects.for_tenant(tenant).get(end_user__user_id="dana", account__group_id="acme")
    assert ended.ended_at.isoformat() == "2026-03-31T11:00:00+00:00"


def test_leaving_the_primary_account_shows_the_newest_other_one(tenant, model):
    world(tenant)
    send(tenant, group("dana", "globex", ts="2026-03-31T09:00:00Z"))
    send(tenant, group("dana", "globex", ts="2026-03-31T11:00:00Z", membership="ended"))
    assert EndUser.objects.for_tenant(tenant).get(user_id="dana").account.group_id == "acme"
    send(tenant, group("dana", "acme", ts="2026-03-31T12:00:00Z", membership="ended"))
    assert EndUser.objects.for_tenant(tenant).get(user_id="dana").account is None
    # Joining again opens a new membership beside the ended one.
    send(tenant, group("dana", "acme", ts="2026-04-02T12:00:00Z"))
    rows = AccountMembership.objects.for_tenant(tenant).filter(end_user__user_id="dana", account__group_id="acme")
    assert sorted((m.ended_at is None) for m in rows) == [False, True]


def test_a_track_with_context_group_id_makes_the_user_a_member(tenant, model):
    world(tenant)
    send(tenant, *track("alice", "Logged in", "2026-03-31T10:00:00Z", groupId="globex"))
    engine.compute_day(model, DAY2)
    # alice (now 3 points) counts in acme, her account, and in globex, the track's groupId.
    assert accounts(model, DAY2) == {"acme": (20.0, 3, 3), "globex": (6.0, 2, 2)}
    alice = EndUser.objects.for_tenant(tenant).get(user_id="alice")
    assert alice.account.group_id == "acme"  # a context.groupId only fills an empty primary account


def test_an_alias_merge_keeps_the_memberships(tenant, model):
    send(tenant, {"type": "group", "anonymousId": "anon-1", "groupId": "acme", "timestamp": "2026-03-01T10:00:00Z"})
    send(tenant, group("dana", "globex"))
    send(tenant, {"type": "alias", "previousId": "anon-1", "userId": "dana", "timestamp": "2026-03-02T10:00:00Z"})
    dana = EndUser.objects.for_tenant(tenant).get(user_id="dana")
    assert sorted(m.account.group_id for m in dana.memberships.all()) == ["acme", "globex"]
    assert CustomerAccount.objects.for_tenant(tenant).count() == 2
