"""`manage.py seed_demo`: the demo a newcomer sees after `make run` — full on first start, idempotent."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.demo import DEMO_EMAIL, DEMO_PASSWORD, DEMO_SLUG
from accounts.models import Membership, Role, Tenant, User
from events.models import DailyActivityCount, EndUser, Event
from scoring.models import ModelStatus, ProductScore, ScoringModel, UserScore
from surveys.demo import DEMO_SURVEY_TITLE
from surveys.models import Survey
from tests.accounts.conftest import log_in

pytestmark = pytest.mark.django_db

USERS = "20"  # the first 20 of the demo's 2,000 end users: the same code path, seconds instead of a minute


def run(*args) -> list[str]:
    out = StringIO()
    call_command("seed_demo", "--users", USERS, *args, stdout=out)
    return out.getvalue().splitlines()


def test_it_creates_a_full_demo():
    lines = run()

    tenant = Tenant.objects.get(slug=DEMO_SLUG)
    assert lines[0].startswith("Created demo tenant")
    # Events went through ingestion: end users, events and the rollup agree.
    assert EndUser.objects.for_tenant(tenant).filter(user_id__startswith="user-").count() == 20
    events = Event.objects.for_tenant(tenant).filter(activity__isnull=False).count()
    assert events > 500
    assert sum(DailyActivityCount.objects.for_tenant(tenant).values_list("count", flat=True)) == events
    # The published model is the one the team survey proposed, and remembers it.
    survey = Survey.objects.for_tenant(tenant).get(title=DEMO_SURVEY_TITLE)
    model = ScoringModel.objects.get(tenant=tenant, status=ModelStatus.PUBLISHED)
    assert survey.scoring_model == model
    points = dict(model.weights.values_list("activity__name", "points"))
    assert points["Invited friend"] > points["Shared photo"] > points["Logged in"] > 0
    # 90 days of scores, with real activity in them.
    today = tenant.today()
    days = ProductScore.objects.unscoped().filter(model=model, day__gt=today - timedelta(days=90), day__lte=today)
    assert days.count() == 90
    assert days.filter(active_users__gt=0).count() > 80
    assert UserScore.objects.unscoped().filter(model=model, day=today, points__gt=0).exists()


def test_it_is_idempotent():
    run()
    counts = (
        User.objects.count(),
        Event.objects.unscoped().count(),
        ScoringModel.objects.unscoped().count(),
        UserScore.objects.unscoped().count(),
    )
    second = run()

    assert second[0].startswith("Refreshed demo tenant")
    assert any(line.endswith("Demo events: already there.") for line in second)
    assert (
        User.objects.count(),
        Event.objects.unscoped().count(),
        ScoringModel.objects.unscoped().count(),
        UserScore.objects.unscoped().count(),
    ) == (counts)
    tenant = Tenant.objects.get(slug=DEMO_SLUG)
    members = Membership.objects.filter(tenant=tenant)
    assert members.count() == 6
    assert members.get(user__email=DEMO_EMAIL).role == Role.OWNER
    assert members.values("department").distinct().count() >= 4
    assert {m.role for m in members} == {Role.OWNER, Role.ADMIN, Role.EDITOR, Role.VIEWER}


def test_the_demo_is_a_believable_company():
    """Issue 19: distinct names, no generator property, no future event, a write key, the album launch."""
    from accounts.models import ApiKey, ApiKeyKind
    from events.demo import ALBUM_LAUNCH_DAY, DAYS, generate_messages

    lines = run()
    tenant = Tenant.objects.get(slug=DEMO_SLUG)
    # Each step is printed with the time it took so far.
    assert sum(line.lstrip().startswith("[") and " s] " in line for line in lines) >= 5
    assert ApiKey.objects.for_tenant(tenant).filter(kind=ApiKeyKind.WRITE, revoked_at=None).exists()
    assert not Event.objects.for_tenant(tenant).filter(timestamp__gt=timezone.now()).exists()
    assert not Event.objects.for_tenant(tenant).filter(payload__properties__has_key="archetype").exists()

    messages = list(generate_messages(tenant.today(), zone=tenant.tzinfo))
    accounts = {m["groupId"]: m["traits"]["name"] for m in messages if m["type"] == "group"}
    assert len(set(accounts.values())) == len(accounts) > 140  # a few small accounts have no user
    people = [m["traits"]["name"] for m in messages if m["type"] == "identify"]
    assert len(set(people)) == len(people) > 1900  # identified at their first visit
    albums = [m for m in messages if m.get("event") == "Created album"]
    launch = tenant.today() - timedelta(days=DAYS - 1 - ALBUM_LAUNCH_DAY)
    assert albums and min(m["timestamp"][:10] for m in albums) >= (launch - timedelta(days=1)).isoformat()
    assert max(m["timestamp"] for m in messages) <= timezone.now().isoformat()


def test_the_demo_login_opens_a_full_dashboard(client):
    lines = run()

    assert lines[-1] == f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}"
    assert log_in(client, DEMO_EMAIL, DEMO_PASSWORD).status_code == 302
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == f"/t/{DEMO_SLUG}/"
    page = response.content.decode()
    assert "PhotoShare" in page
    # Risers, fallers and power users are listed by the names the demo's identify calls gave them.
    names = {u.traits["name"] for u in EndUser.objects.for_tenant(Tenant.objects.get(slug=DEMO_SLUG))}
    assert sum(name in page for name in names) >= 5


def test_it_restores_the_demo_password(client):
    run()
    user = User.objects.get(email=DEMO_EMAIL)
    user.set_password("someone-changed-it-99")
    user.save()

    run()

    assert log_in(client, DEMO_EMAIL, DEMO_PASSWORD).status_code == 302
