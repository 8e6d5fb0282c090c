"""The digest email (issue 17): content, sending in the workspace's time zone, unsubscribe, preview."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from accounts.models import Membership
from alerts import digest as digests
from alerts.demo import assign_demo_owners
from alerts.models import DigestFrequency, DigestSubscription
from alerts.tasks import send_tenant_digests
from events.models import CustomerAccount
from tests.insights.helpers import account, account_scores, published
from tests.insights.test_risk import silent_seats  # noqa: F401 - the issue's world, as a fixture

# Monday 7 December 2026, 07:30 UTC: 08:30 in Paris (tenant "Acme"), 07:30 in UTC (tenant "Globex").
MONDAY_0730_UTC = datetime(2026, 12, 7, 7, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = "https://engage.example.com"
    settings.DIGEST_HOUR, settings.DIGEST_WEEKDAY = 8, 0


def membership(tenant, user):
    return Membership.objects.for_tenant(tenant).select_related("tenant", "user").get(user=user)


def scored(tenant, name="Falling Co"):
    """A published model and an account that lost half its points in 14 days (at risk)."""
    model = published(tenant)
    falling = account(tenant, name)
    day = tenant.today() - timedelta(days=1)
    account_scores(tenant, model, day - timedelta(days=14), [(falling, 1200.0, "high")])
    account_scores(tenant, model, day - timedelta(days=7), [(falling, 1100.0, "high")])
    account_scores(tenant, model, day, [(falling, 600.0, "high")])
    return falling


def test_digest_content_on_the_issues_world(tenant, silent_seats, owner, editor, viewer):  # noqa: F811
    northwind = CustomerAccount.objects.for_tenant(tenant).get(group_id="northwind")
    northwind.owner = editor
    northwind.save()
    # Admins and owners: every account.
    full = digests.digest_for(membership(tenant, owner))
    assert full.all_accounts and [a.name for a in full.at_risk] == ["Northwind"]
    assert "Northwind" not in [m.name for m in full.risers]
    text, html = digests.render_digest(full)
    assert "4 of 8 seats silent for 8+ days" in text and "4 of 8 seats silent for 8+ days" in html
    link = f"https://engage.example.com/t/{tenant.slug}/scoring/accounts/{northwind.public_id}/"
    assert link in text and f'href="{link}"' in html
    assert "ACCOUNTS AT RISK: 1" in text and "NEW POWER USERS" in text and "WHAT CHANGED IN ADOPTION" in text
    # An editor: the accounts they own; a viewer owning none: nothing at risk.
    assert [a.name for a in digests.digest_for(membership(tenant, editor)).at_risk] == ["Northwind"]
    mine = digests.digest_for(membership(tenant, viewer))
    assert not mine.all_accounts and mine.at_risk == [] and mine.risers == [] and mine.fallers == []
    assert "None of your accounts is at risk." in digests.render_digest(mine)[0]


def test_numbers_are_formatted(tenant, owner):
    scored(tenant)
    text, html = digests.render_digest(digests.digest_for(membership(tenant, owner)))
    assert "Points fell 50.0% in 14 days (1,200.0 → 600.0)" in text
    assert "-500.0 points (-45.5%)" in text and "-500.0 points (-45.5%)" in html


def test_sent_in_each_workspaces_time_zone_once(tenant, other_tenant, owner, outsider, mailoutbox):
    scored(tenant)
    scored(other_tenant, "Globex Falling")
    assert send_tenant_digests(tenant.pk, MONDAY_0730_UTC.isoformat()) == 1  # 08:30 in Paris
    assert send_tenant_digests(other_tenant.pk, MONDAY_0730_UTC.isoformat()) == 0  # 07:30 in UTC: not yet
    assert [m.to for m in mailoutbox] == [[owner.email]]
    later = (MONDAY_0730_UTC + timedelta(hours=1)).isoformat()
    assert send_tenant_digests(tenant.pk, later) == 0  # a second beat, or a redelivered task: sent already
    assert send_tenant_digests(other_tenant.pk, later) == 1
    assert [m.to for m in mailoutbox] == [[owner.email], [outsider.email]]
    mail = mailoutbox[0]
    assert mail.subject.startswith("Rocket digest for") and "1 account at risk" in mail.subject
    assert "Falling Co" in mail.body and "Globex Falling" not in mail.body  # isolation
    html, mimetype = mail.alternatives[0]
    assert mimetype == "text/html" and "Falling Co" in html
    assert mail.extra_headers["List-Unsubscribe"].startswith("<https://engage.example.com/alerts/unsubscribe/")
    assert mail.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_weekly_on_mondays_daily_every_day(tenant, owner, editor, mailoutbox):
    scored(tenant)
    digests.digest_set_frequency(membership=membership(tenant, editor), frequency=DigestFrequency.DAILY)
    tuesday = (MONDAY_0730_UTC + timedelta(days=1)).isoformat()
    assert send_tenant_digests(tenant.pk, tuesday) == 1
    assert [m.to for m in mailoutbox] == [[editor.email]]
    assert "your daily digest" in mailoutbox[0].alternatives[0][0]


def test_no_scores_nothing_sent(tenant, owner, mailoutbox):
    assert send_tenant_digests(tenant.pk, MONDAY_0730_UTC.isoformat()) == 0  # no model
    published(tenant)
    assert send_tenant_digests(tenant.pk, MONDAY_0730_UTC.isoformat()) == 0  # a model, no scored day
    assert mailoutbox == []


def test_unsubscribe_link_works_once_and_cannot_be_forged(tenant, owner, client, mailoutbox):
    scored(tenant)
    sub = digests.subscription_of(membership(tenant, owner))
    url = digests.unsubscribe_url(sub).removeprefix("https://engage.example.com")
    page = client.get(url)  # a mail scanner fetching the link unsubscribes nobody
    assert page.status_code == 200 and "Unsubscribe from digests?" in page.content.decode()
    sub.refresh_from_db()
    assert sub.frequency == DigestFrequency.WEEKLY
    done = client.post(url)  # RFC 8058 one-click: a POST without a CSRF token
    assert done.status_code == 200 and "Unsubscribed" in done.content.decode()
    sub.refresh_from_db()
    assert sub.frequency == DigestFrequency.NEVER and sub.unsubscribed_at is not None
    again = client.post(url)
    assert again.status_code == 400 and "used already" in again.content.decode()
    assert send_tenant_digests(tenant.pk, MONDAY_0730_UTC.isoformat()) == 0 and mailoutbox == []
    # Forged: another id under a made-up signature, or a valid token edited.
    digests.digest_set_frequency(membership=membership(tenant, owner), frequency=DigestFrequency.WEEKLY)
    token = digests.unsubscribe_token(DigestSubscription.objects.for_tenant(tenant).get(pk=sub.pk))
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "eyJzIjoiMSJ9:forged:sig"):
        r = client.post(reverse("alerts:unsubscribe", args=[bad]))
        assert r.status_code == 400 and "not valid" in r.content.decode()
    sub.refresh_from_db()
    assert sub.frequency == DigestFrequency.WEEKLY


def test_preview_in_the_browser(tenant, owner_client):
    r = owner_client.get(reverse("alerts:digest_preview", args=[tenant.slug]))
    assert r.status_code == 200 and "No scores yet, so no digest is sent" in r.content.decode()
    scored(tenant)
    html = owner_client.get(reverse("alerts:digest_preview", args=[tenant.slug])).content.decode()
    assert "Accounts at risk" in html and "Falling Co" in html and "Points fell 50.0%" in html
    text = owner_client.get(reverse("alerts:digest_preview", args=[tenant.slug]), {"format": "text"})
    assert text["Content-Type"].startswith("text/plain") and "ACCOUNTS AT RISK: 1" in text.content.decode()


def test_members_choose_their_frequency(tenant, viewer, client):
    client.force_login(viewer)
    url = reverse("alerts:digest_settings", args=[tenant.slug])
    assert client.get(url).status_code == 200
    assert client.post(url, {"frequency": "daily"}).status_code == 302
    assert digests.subscription_of(membership(tenant, viewer)).frequency == "daily"
    bad = client.post(url, {"frequency": "hourly"})
    assert bad.status_code == 400 and "Select a valid choice" in bad.content.decode()


def test_outsiders_see_no_digest_page(tenant, outsider_client):
    for name in ("digest_settings", "digest_preview"):
        assert outsider_client.get(reverse(f"alerts:{name}", args=[tenant.slug])).status_code == 404


def test_beat_runs_the_digests_hourly():
    entry = django_settings.CELERY_BEAT_SCHEDULE["alerts-digests"]
    assert entry == {"task": "alerts.tasks.send_digests", "schedule": 3600}


def test_demo_owners_go_to_editors_and_admins(tenant, editor, admin_user):
    a, b, c = (account(tenant, g) for g in ("a", "b", "c"))
    c.owner = admin_user
    c.save()
    assert assign_demo_owners(tenant) == "Demo owners: 2 account(s) given an owner."
    owners = dict(CustomerAccount.objects.for_tenant(tenant).values_list("group_id", "owner_id"))
    assert owners == {"a": admin_user.pk, "b": editor.pk, "c": admin_user.pk}
