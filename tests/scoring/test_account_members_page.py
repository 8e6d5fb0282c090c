"""The account page reads AccountMembership: every current member, the seat tiers of the snapshot's
day, and an admin's "Remove from account" (one member, or a list of userIds / a CSV) after a confirmation.

World (today and yesterday, tenant days): acme groups alice, bob and dana; dana is grouped in
globex after acme (globex is her primary account); erin was in acme and left it (an explicit end).
"""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from events import wire
from events.models import AccountMembership, CustomerAccount, EndUser
from events.services import ingest
from scoring import engine, services
from scoring.models import AccountScore
from tests.conftest import client_for

from .conftest import make_model
from .test_memberships import day_rows

pytestmark = pytest.mark.django_db

_n = iter(range(100_000))


def send(tenant, *raws):
    now = timezone.now()
    messages = [wire.normalize({**raw, "messageId": f"p{next(_n)}"}, kind="batch", received_at=now,
                               batch_sent_at=None) for raw in raws]  # fmt: skip
    ingest(tenant=tenant, messages=messages)


@pytest.fixture
def world(tenant, acts):
    now = timezone.now()
    at = (now - timedelta(days=3)).isoformat()
    later = (now - timedelta(days=2)).isoformat()
    groups = [{"type": "group", "userId": u, "groupId": "acme", "timestamp": at}
              for u in ("alice", "bob", "dana", "erin")]
    send(tenant, *groups, {"type": "group", "userId": "dana", "groupId": "globex", "timestamp": later})
    send(tenant, {"type": "group", "userId": "erin", "groupId": "acme", "timestamp": later,
                  "context": {"membership": "ended"}})
    for back in (0, 1):
        ts = (now - timedelta(days=back)).replace(microsecond=0).isoformat()
        send(tenant, *[{"type": "track", "userId": u, "event": "Logged in", "timestamp": ts}
                       for u in ("alice", "bob", "dana", "dana", "erin")])
    model = make_model(tenant, {acts["Logged in"]: 2}, window_days=30, account_rollup="sum")
    services.scoring_model_publish(model=model, backfill_days=2)
    today = tenant.today()
    for day in (today - timedelta(days=1), today):
        engine.compute_day(model, day)
    accounts = {a.group_id: a for a in CustomerAccount.objects.for_tenant(tenant)}
    users = {u.user_id: u for u in EndUser.objects.for_tenant(tenant)}
    return {"model": model, "today": today, "accounts": accounts, "users": users}


def page_url(tenant, account):
    return reverse("scoring:account_detail", args=[tenant.slug, account.public_id])


def remove_url(tenant, account, user):
    return reverse("events:remove_account_member", args=[tenant.slug, account.public_id, user.public_id])


def bulk_url(tenant, account):
    return reverse("events:remove_account_members", args=[tenant.slug, account.public_id])


def member_links(content: str, tenant, users) -> set[str]:
    return {uid for uid, u in users.items()
            if reverse("scoring:user_detail", args=[tenant.slug, u.public_id]) in content}


def seats(model, account, day):
    row = AccountScore.objects.for_tenant(model.tenant).get(model=model, account=account, day=day)
    return row.seats, row.active_users


def test_the_page_lists_every_current_member_and_counts_their_seats(client, viewer, tenant, world):
    acme, users = world["accounts"]["acme"], world["users"]
    response = client_for(client, viewer).get(page_url(tenant, acme))
    content = response.content.decode()
    # dana's primary account is globex: she is listed in acme too; erin left acme.
    assert users["dana"].account == world["accounts"]["globex"]
    assert member_links(content, tenant, users) == {"alice", "bob", "dana"}
    assert "also in another" in content and "3 now" in content
    seat_card = response.context["seats"]
    assert seat_card.seats == 3 and sum(seat_card.tiers.values()) == 3  # the tiers of the same three members
    # A viewer sees no remove action.
    assert "Remove…" not in content and "Remove several members" not in content


def test_an_admin_removes_a_member_after_confirming(client, admin_user, tenant, world):
    acme, globex, dana = world["accounts"]["acme"], world["accounts"]["globex"], world["users"]["dana"]
    model, today = world["model"], world["today"]
    yesterday = day_rows(model, today - timedelta(days=1))
    client_for(client, admin_user)
    page = client.get(page_url(tenant, acme)).content.decode()
    assert remove_url(tenant, acme, dana) in page
    confirm = client.get(remove_url(tenant, acme, dana))
    assert confirm.status_code == 200 and b"Remove 1 from acme" in confirm.content
    assert AccountMembership.objects.for_tenant(tenant).filter(account=acme, end_user=dana, ended_at=None).exists()

    response = client.post(remove_url(tenant, acme, dana), follow=True)
    assert response.redirect_chain[-1][0] == page_url(tenant, acme)
    assert "no longer a member of acme" in response.content.decode()
    assert member_links(response.content.decode(), tenant, world["users"]) == {"alice", "bob"}
    ended = AccountMembership.objects.for_tenant(tenant).get(account=acme, end_user=dana)
    assert ended.ended_at is not None
    assert AccountMembership.objects.for_tenant(tenant).filter(account=globex, end_user=dana, ended_at=None).exists()
    dana.refresh_from_db()
    assert dana.account == globex and dana.updated_at >= ended.ended_at

    # Today recomputed: acme has two seats; yesterday recomputed gives the same rows as before.
    engine.compute_day(model, today)
    assert seats(model, acme, today) == (2, 2) and seats(model, globex, today) == (1, 1)
    engine.compute_day(model, today - timedelta(days=1))
    assert day_rows(model, today - timedelta(days=1)) == yesterday

    # Again: she is not a member now, nothing changes.
    again = client.post(remove_url(tenant, acme, dana), follow=True)
    assert "was not a member" in again.content.decode()
    assert AccountMembership.objects.for_tenant(tenant).filter(account=acme, end_user=dana).count() == 1


def test_removing_needs_an_admin_and_a_csrf_token(client, editor, admin_user, tenant, world):
    acme, alice = world["accounts"]["acme"], world["users"]["alice"]
    client_for(client, editor)
    assert client.get(remove_url(tenant, acme, alice)).status_code == 403
    assert client.post(remove_url(tenant, acme, alice)).status_code == 403
    assert client.post(bulk_url(tenant, acme), {"user_ids": "alice"}).status_code == 403
    strict = client_for(Client(enforce_csrf_checks=True), admin_user)
    assert strict.post(remove_url(tenant, acme, alice)).status_code == 403
    assert AccountMembership.objects.for_tenant(tenant).filter(account=acme, end_user=alice, ended_at=None).exists()


def test_a_list_of_user_ids_is_confirmed_then_removed(client, admin_user, tenant, world):
    acme, users = world["accounts"]["acme"], world["users"]
    client_for(client, admin_user)
    review = client.post(bulk_url(tenant, acme), {"user_ids": "alice\n bob \nnobody\nerin\n"})
    content = review.content.decode()
    assert review.status_code == 200 and "Remove 2 from acme" in content
    assert "nobody, erin" in content  # unknown, and not a member now: left alone
    open_members = AccountMembership.objects.for_tenant(tenant).filter(account=acme, ended_at=None)
    assert open_members.count() == 3  # nothing changed before the confirmation
    done = client.post(bulk_url(tenant, acme), {"user_id": ["alice", "bob"], "confirm": "on"}, follow=True)
    assert "2 end users removed from acme" in done.content.decode()
    assert [m.end_user.user_id for m in open_members] == ["dana"]
    assert member_links(done.content.decode(), tenant, users) == {"dana"}


def test_a_csv_of_user_ids(client, admin_user, tenant, world):
    acme = world["accounts"]["acme"]
    client_for(client, admin_user)
    upload = SimpleUploadedFile("leavers.csv", "\ufeffemail,User_ID\na@x,dana\n".encode(), content_type="text/csv")
    review = client.post(bulk_url(tenant, acme), {"file": upload})
    assert b"Remove 1 from acme" in review.content and b"dana" in review.content
    for body, reason in ((b"email\na@x\n", "no user_id column"), (b"\xff\xfe\x00", "not UTF-8"), (b"", "at least one")):
        bad = SimpleUploadedFile("x.csv", body, content_type="text/csv")
        response = client.post(bulk_url(tenant, acme), {"file": bad}, follow=True)
        assert reason in response.content.decode(), reason
    assert AccountMembership.objects.for_tenant(tenant).filter(account=acme, ended_at=None).count() == 3


def test_another_workspace_cannot_remove(client, outsider, tenant, world):
    acme, alice = world["accounts"]["acme"], world["users"]["alice"]
    client_for(client, outsider)
    assert client.get(remove_url(tenant, acme, alice)).status_code == 404
    assert client.post(bulk_url(tenant, acme), {"user_ids": "alice", "confirm": "on"}).status_code == 404
    assert AccountMembership.objects.for_tenant(tenant).filter(account=acme, ended_at=None).count() == 3
