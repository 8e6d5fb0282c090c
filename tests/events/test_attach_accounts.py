"""Attaching end users to customer accounts (`services._attach_accounts`).

A group call always sets the end user's account; a context.groupId (or a CSV
`account_id`) only fills an empty one. The function is one set-based statement
per batch; these tests pin its semantics on SQLite and on PostgreSQL, through
`ingest` and against a reference model of the old one-UPDATE-per-account code.
"""

import random
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events import services, wire
from events.models import CustomerAccount, EndUser, Event
from events.services import ingest
from tests.conftest import _missing

TS = datetime(2026, 6, 1, 12, tzinfo=UTC).isoformat()


def send(tenant, *raws) -> None:
    now = timezone.now()
    messages = [wire.normalize(raw, kind="batch", received_at=now, batch_sent_at=None) for raw in raws]
    assert all(isinstance(m, wire.Message) for m in messages)
    ingest(tenant=tenant, messages=messages)


def track(user: str, group: str | None = None, n: int = 0) -> dict:
    raw = {"type": "track", "userId": user, "event": "Logged in", "timestamp": TS, "messageId": f"t-{user}-{n}"}
    if group:
        raw["context"] = {"groupId": group}
    return raw


def group(user: str, group_id: str, n: int = 0) -> dict:
    return {"type": "group", "userId": user, "groupId": group_id, "timestamp": TS, "messageId": f"g-{user}-{n}"}


def account_of(tenant, user: str) -> str | None:
    account = EndUser.objects.for_tenant(tenant).get(user_id=user).account
    return account.group_id if account else None


@pytest.fixture(params=["portable", "postgres"])
def backend(request, monkeypatch):
    """Each test runs the portable statement (on any database) and, on PostgreSQL, the native one."""
    if request.param == "postgres":
        if connection.vendor != "postgresql":
            # Skips with the reason on a bare machine; fails when REQUIRE_SERVICES=1 (CI).
            _missing("PostgreSQL", "DATABASE_URL does not point at PostgreSQL (the native statement)")
    else:
        monkeypatch.setattr(services.customer_accounts, "_attach_accounts_postgresql", portable_in_chunks)
    return request.param


def portable_in_chunks(tenant, pks, attach, explicit):
    for start in range(0, len(pks), services.ATTACH_CHUNK):
        services._attach_accounts_portable(tenant, pks[start : start + services.ATTACH_CHUNK], attach, explicit)


@pytest.mark.django_db
def test_context_group_fills_an_empty_account_only(tenant, backend):
    send(tenant, track("u1", "acct-1"))
    assert account_of(tenant, "u1") == "acct-1"
    send(tenant, track("u1", "acct-2", n=1))
    assert account_of(tenant, "u1") == "acct-1"
    assert Event.objects.for_tenant(tenant).get(message_id="t-u1-1").account.group_id == "acct-2"


@pytest.mark.django_db
def test_group_call_always_moves_the_user(tenant, backend):
    send(tenant, track("u1", "acct-1"))
    send(tenant, group("u1", "acct-2"))
    assert account_of(tenant, "u1") == "acct-2"
    send(tenant, group("u1", "acct-2", n=1))  # the same account again: nothing changes
    assert account_of(tenant, "u1") == "acct-2"


@pytest.mark.django_db
def test_within_a_batch_the_group_call_wins_over_context(tenant, backend):
    send(tenant, track("u1", "acct-1"), group("u1", "acct-2"), track("u2", "acct-3"))
    send(tenant, group("u3", "acct-4"), track("u3", "acct-5"))
    assert account_of(tenant, "u1") == "acct-2"
    assert account_of(tenant, "u2") == "acct-3"
    assert account_of(tenant, "u3") == "acct-4"


@pytest.mark.django_db
def test_a_big_batch_attaches_every_user(tenant, backend):
    # More end users than one portable statement takes (ATTACH_CHUNK), some already attached.
    send(tenant, *[track(f"u{i}", "old") for i in range(0, 900, 3)])
    raws = [track(f"u{i}", f"acct-{i % 300}", n=1) for i in range(900)]
    raws += [group(f"u{i}", "moved") for i in range(0, 900, 10)]
    send(tenant, *raws)
    got = dict(EndUser.objects.for_tenant(tenant).values_list("user_id", "account__group_id"))
    for i in range(900):
        expected = "moved" if i % 10 == 0 else "old" if i % 3 == 0 else f"acct-{i % 300}"
        assert got[f"u{i}"] == expected, i


@pytest.mark.django_db
def test_matches_the_reference_semantics_on_random_input(tenant, backend):
    rng = random.Random(11)
    accounts = [CustomerAccount.objects.create(tenant=tenant, group_id=f"g{i}").pk for i in range(8)]
    users = [EndUser.objects.create(tenant=tenant, user_id=f"u{i}").pk for i in range(60)]
    for _ in range(25):
        current = dict(EndUser.objects.for_tenant(tenant).values_list("pk", "account_id"))
        attach = {pk: rng.choice(accounts) for pk in rng.sample(users, rng.randrange(1, 40))}
        explicit = {pk for pk in attach if rng.random() < 0.3} | {rng.choice(users)}  # may name an unattached user
        expected = {pk: attach[pk] if pk in attach and (pk in explicit or current[pk] is None) else current[pk]
                    for pk in current}  # fmt: skip
        services._attach_accounts(tenant, attach, explicit)
        assert dict(EndUser.objects.for_tenant(tenant).values_list("pk", "account_id")) == expected


@pytest.mark.django_db
def test_never_touches_another_tenants_users(tenant, other_tenant, backend):
    theirs = EndUser.objects.create(tenant=other_tenant, user_id="u1")
    mine = CustomerAccount.objects.create(tenant=tenant, group_id="g")
    services._attach_accounts(tenant, {theirs.pk: mine.pk}, explicit={theirs.pk})
    theirs.refresh_from_db()
    assert theirs.account_id is None


@pytest.mark.django_db
def test_one_statement_per_batch_not_one_per_account(tenant, backend, monkeypatch):
    accounts = [CustomerAccount.objects.create(tenant=tenant, group_id=f"g{i}").pk for i in range(50)]
    users = [EndUser.objects.create(tenant=tenant, user_id=f"u{i}").pk for i in range(200)]
    attach = {pk: accounts[i % 50] for i, pk in enumerate(users)}
    executed = []
    if backend == "postgres":
        # The statement goes through a psycopg cursor of its own, which Django does not log.
        make_cursor = services._server_bound_cursor

        class Counting:
            def __init__(self, cursor):
                self.cursor = cursor

            def execute(self, query, params=None, **kwargs):
                executed.append(query)
                return self.cursor.execute(query, params, **kwargs)

        @contextmanager
        def counting_cursor():
            with make_cursor() as cursor:
                yield Counting(cursor)

        monkeypatch.setattr(services.customer_accounts, "_server_bound_cursor", counting_cursor)
        services._attach_accounts(tenant, attach, explicit=set(users[:20]))
    else:
        with CaptureQueriesContext(connection) as queries:
            services._attach_accounts(tenant, attach, explicit=set(users[:20]))
        executed = [q["sql"] for q in queries.captured_queries]
    assert len(executed) == 1
    assert EndUser.objects.for_tenant(tenant).filter(account__isnull=True).count() == 0
