"""Issue 19, the first run: links follow the served address, scores stay fresh without beat."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from events.models import Event
from scoring import services as scoring
from scoring.freshness import freshness, refresh_due_tenants
from scoring.models import UserScore
from surveys import services as surveys
from tests.conftest import client_for
from tests.events.pages_helpers import send, track
from tests.surveys import factories

pytestmark = pytest.mark.django_db
HOST = "127.0.0.1:8107"  # as `make run PORT=8107` serves it


def test_links_carry_the_port_the_site_is_served_on(client, owner, tenant, mailoutbox, settings,
                                                    django_capture_on_commit_callbacks):
    settings.SITE_URL = ""  # the embedded default: no SITE_URL
    member = client_for(client, owner)
    setup = member.get(reverse("events:setup", args=[tenant.slug]), HTTP_HOST=HOST).content.decode()
    assert f"http://{HOST}/v1/track" in setup and f'analytics.host = "http://{HOST}"' in setup
    assert "8000" not in setup

    with django_capture_on_commit_callbacks(execute=True):
        member.post(
            reverse("accounts:members", args=[tenant.slug]),
            {"email": "new@example.com", "role": Role.VIEWER, "department": "other"},
            HTTP_HOST=HOST,
        )
    assert mailoutbox and f"http://{HOST}/invite/" in mailoutbox[-1].body

    survey = factories.survey(tenant)
    member.post(reverse("surveys:create_share_link", args=[tenant.slug, survey.public_id]), HTTP_HOST=HOST)
    detail = member.get(reverse("surveys:detail", args=[tenant.slug, survey.public_id]), HTTP_HOST=HOST)
    assert f"http://{HOST}/s/" in detail.content.decode()


def test_without_a_request_links_use_the_fallback_and_site_url_wins(settings, tenant):
    settings.SITE_URL, settings.SITE_URL_FALLBACK = "", f"http://{HOST}"
    assert surveys.survey_link_url("t").startswith(f"http://{HOST}/s/")
    settings.SITE_URL = "https://engage.example.com/"
    assert surveys.survey_link_url("t").startswith("https://engage.example.com/s/")


@pytest.fixture
def embedded(settings):
    """The embedded default's Celery (tasks in process), also when REDIS_URL turned eager mode off."""
    from engagement_site.celery import app as celery_app

    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER = True
    yield
    celery_app.conf.task_always_eager = previous


def test_scores_stay_fresh_without_beat(tenant, settings, embedded, django_capture_on_commit_callbacks):
    """Send an event after publishing: the in-process refresh scores it, nobody clicks Recompute."""
    send(tenant, track("u1", "Added photo", timezone.now() - timedelta(days=2)))
    draft = scoring.scoring_model_create_draft(tenant=tenant)  # the starting model: publishable as it is
    with django_capture_on_commit_callbacks(execute=True):  # tasks run eagerly once committed
        scoring.scoring_model_publish(model=draft, backfill_days=3)
    assert freshness(tenant).waiting == 0

    send(tenant, track("u2", "Added photo"))  # a new end user, after publishing
    state = freshness(tenant)
    assert state.waiting == 1
    assert refresh_due_tenants(now=timezone.now()) == []  # not settled yet: more may come
    later = timezone.now() + timedelta(seconds=settings.SCORING_REFRESH_SETTLE_SECONDS + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert refresh_due_tenants(now=later) == [tenant.pk]

    u2 = Event.objects.for_tenant(tenant).get(end_user__user_id="u2").end_user
    assert UserScore.objects.for_tenant(tenant).filter(end_user=u2, day=tenant.today(), points__gt=0).exists()
    assert freshness(tenant).waiting == 0
    assert refresh_due_tenants(now=later) == []  # nothing new: no run
