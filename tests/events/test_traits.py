"""Traits: applied per key in timestamp order, only from messages stored now (a duplicate changes nothing),
taken from context.traits when a call has no traits of its own (RudderStack's SDK)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rudderstack.analytics import request as rudder_request
from rudderstack.analytics.client import Client as RudderClient

from events import wire
from events.models import CustomerAccount, EndUser, Event
from events.services import ingest

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


def send(tenant, *raws):
    now = timezone.now()
    outcomes = wire.normalize_all(list(raws), kind="batch", received_at=now, batch_sent_at=None)
    assert all(isinstance(o, wire.Message) for o in outcomes), outcomes
    return ingest(tenant=tenant, messages=outcomes)


def identify(message_id, when, user="u1", **traits):
    return {
        "type": "identify",
        "userId": user,
        "messageId": message_id,
        "timestamp": when.isoformat(),
        "traits": traits,
    }


def traits_of(tenant, user="u1"):
    return EndUser.objects.for_tenant(tenant).get(user_id=user).traits


@pytest.mark.django_db
def test_a_replayed_older_identify_never_overwrites_newer_traits(tenant):
    send(tenant, identify("new", T0 + timedelta(hours=2), plan="paid", seats=10))
    send(tenant, identify("old", T0, plan="free", email="ann@example.com"))
    # plan keeps its newer value; a key only the old message has is still learnt.
    assert traits_of(tenant) == {"plan": "paid", "seats": 10, "email": "ann@example.com"}
    send(tenant, identify("newest", T0 + timedelta(hours=3), plan="enterprise"))
    assert traits_of(tenant)["plan"] == "enterprise"


@pytest.mark.django_db
def test_within_a_batch_traits_follow_the_timestamps_not_the_order(tenant):
    send(tenant, identify("b", T0 + timedelta(minutes=5), plan="paid"), identify("a", T0, plan="free"))
    assert traits_of(tenant) == {"plan": "paid"}


@pytest.mark.django_db
def test_a_duplicate_message_id_changes_nothing_not_even_traits(tenant):
    send(tenant, identify("m-1", T0, plan="free"))
    send(tenant, identify("m-2", T0 + timedelta(hours=1), plan="paid"))
    # The same message id again, now carrying other traits and a later time: a duplicate.
    result = send(tenant, identify("m-1", T0 + timedelta(hours=5), plan="hacked", extra=1))
    assert (result.stored, result.duplicates) == (0, 1)
    assert traits_of(tenant) == {"plan": "paid"}
    assert Event.objects.for_tenant(tenant).count() == 2


@pytest.mark.django_db
def test_group_traits_follow_the_same_rules(tenant):
    def group(message_id, when, **traits):
        return {"type": "group", "userId": "u1", "groupId": "acme", "messageId": message_id,
                "timestamp": when.isoformat(), "traits": traits}  # fmt: skip

    send(tenant, group("g-2", T0 + timedelta(days=1), name="Acme Inc", plan="paid"))
    send(tenant, group("g-1", T0, name="Acme", plan="trial"))
    send(tenant, group("g-2", T0 + timedelta(days=9), name="Replayed"))
    account = CustomerAccount.objects.for_tenant(tenant).get(group_id="acme")
    assert account.traits == {"name": "Acme Inc", "plan": "paid"}
    assert account.name == "Acme Inc"


@pytest.mark.django_db
def test_context_traits_are_the_traits_of_an_identify_or_group_without_its_own(tenant):
    send(
        tenant,
        {"type": "identify", "userId": "u1", "messageId": "i", "context": {"traits": {"email": "ann@example.com"}}},
        {"type": "group", "userId": "u1", "groupId": "acme", "messageId": "g", "context": {"traits": {"plan": "paid"}}},
        # Its own traits win: context.traits is then only context.
        {"type": "identify", "userId": "u2", "messageId": "j", "traits": {"a": 1}, "context": {"traits": {"b": 2}}},
    )
    assert traits_of(tenant) == {"email": "ann@example.com"}
    assert CustomerAccount.objects.for_tenant(tenant).get(group_id="acme").traits == {"plan": "paid"}
    assert traits_of(tenant, "u2") == {"a": 1}


def test_context_traits_that_are_not_an_object_are_refused_by_name():
    outcome = wire.normalize(
        {"type": "identify", "userId": "u1", "context": {"traits": "x"}},
        kind="batch", received_at=timezone.now(), batch_sent_at=None,
    )  # fmt: skip
    assert isinstance(outcome, wire.Rejection)
    assert outcome.field == "context.traits"


@pytest.mark.django_db
def test_an_alias_merge_keeps_the_newer_value_of_each_trait(tenant):
    send(tenant, {"type": "identify", "anonymousId": "a-1", "messageId": "x", "timestamp": (T0 + timedelta(hours=4))
                  .isoformat(), "traits": {"plan": "paid", "color": "red"}})  # fmt: skip
    send(tenant, identify("y", T0, plan="free", email="ann@example.com"))
    send(tenant, {"type": "alias", "userId": "u1", "previousId": "a-1", "messageId": "z"})
    assert traits_of(tenant) == {"plan": "paid", "color": "red", "email": "ann@example.com"}


# --- RudderStack's Python SDK sends identify traits only in context.traits ------------------------


@pytest.mark.django_db(transaction=True)
def test_rudder_sdk_python_keeps_identify_traits(live_server, tenant, write_key):
    errors = []
    client = RudderClient(
        write_key=write_key, host=live_server.url, sync_mode=True, max_retries=0,
        on_error=lambda error, batch: errors.append(error),
    )  # fmt: skip
    try:
        client.identify("u-1", {"email": "ann@example.com", "plan": "paid"})
        client.group("u-1", "acct-1", {"name": "Acme Photo"})
        client.track("u-1", "Added photo", {"size": 3})
        client.page("u-1", "Docs", "Pricing")
        client.flush()
    finally:
        rudder_request._session.close()
    assert errors == []
    user = EndUser.objects.for_tenant(tenant).get(user_id="u-1")
    assert user.traits == {"email": "ann@example.com", "plan": "paid"}
    assert CustomerAccount.objects.for_tenant(tenant).get(group_id="acct-1").name == "Acme Photo"
    names = set(Event.objects.for_tenant(tenant).exclude(activity=None).values_list("activity__name", flat=True))
    assert names == {"Added photo", "Viewed Docs Pricing Page"}
    payload = Event.objects.for_tenant(tenant).get(type="identify").payload
    assert "traits" not in payload and payload["context"]["traits"]["email"] == "ann@example.com"
