"""Issue 19's data rules: catalog first seen moves earlier, no future timestamps, test events kept apart."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from events.models import Activity, DailyActivityCount, Event
from scoring.selectors import model_weights
from scoring.services import scoring_model_create_draft
from surveys.forms import SurveyForm
from tests.conftest import client_for

from .pages_helpers import send, track

pytestmark = pytest.mark.django_db

TEST = {"context": {"testEvent": True}}


def catalog(client, tenant) -> str:
    return client.get(reverse("events:catalog", args=[tenant.slug])).content.decode()


def test_older_history_moves_first_seen_earlier(tenant):
    now = timezone.now()
    send(tenant, track("u1", "Added photo", now - timedelta(minutes=5)))
    send(tenant, track("u1", "Added photo", now - timedelta(minutes=30)))  # within the live path's hour
    assert Activity.objects.for_tenant(tenant).get(name="Added photo").first_seen_at == now - timedelta(minutes=30)
    send(tenant, track("u2", "Added photo", now - timedelta(days=40)))  # imported history
    assert Activity.objects.for_tenant(tenant).get(name="Added photo").first_seen_at == now - timedelta(days=40)
    send(tenant, track("u3", "Added photo", now))  # newer: no change
    assert Activity.objects.for_tenant(tenant).get(name="Added photo").first_seen_at == now - timedelta(days=40)


def test_a_future_timestamp_is_stored_at_received_at(tenant, editor, client):
    before = timezone.now()
    send(tenant, track("u1", "Added photo", "2027-06-08T10:00:00Z"), track("u1", "Added photo", before))
    after = timezone.now()
    stored = list(Event.objects.for_tenant(tenant).values_list("timestamp", "payload"))
    assert all(before - timedelta(seconds=1) <= ts <= after for ts, _ in stored)
    assert {p["timestamp"] for _, p in stored} >= {"2027-06-08T10:00:00Z"}  # the client's value is kept
    assert not DailyActivityCount.objects.for_tenant(tenant).filter(day__gt=tenant.today()).exists()
    page = catalog(client_for(client, editor), tenant)
    assert "2027" not in page


def test_a_test_event_stays_out_of_the_catalog_surveys_and_models(tenant, editor, client):
    send(tenant, track("u1", "Signed up", **TEST), track("u1", "Added photo"))
    activity = Activity.objects.for_tenant(tenant).get(name="Signed up")
    assert activity.test_only
    assert Event.objects.for_tenant(tenant).filter(activity=activity).count() == 1  # stored, seen in the debugger

    page = catalog(client_for(client, editor), tenant)
    assert "1 activity" in page and 'id="test-events"' in page
    survey_choices = SurveyForm(tenant=tenant).fields["activities"].queryset
    assert list(survey_choices.values_list("name", flat=True)) == ["Added photo"]
    draft = scoring_model_create_draft(tenant=tenant)
    assert [row["activity"].name for row in model_weights(draft)] == ["Added photo"]

    # The team keeps it: it joins the catalog and the choices.
    response = client_for(client, editor).post(reverse("events:keep_activity", args=[tenant.slug, activity.public_id]))
    assert response.status_code == 302
    assert "2 activities" in catalog(client_for(client, editor), tenant)
    assert "Signed up" in SurveyForm(tenant=tenant).fields["activities"].queryset.values_list("name", flat=True)


def test_a_real_event_makes_a_test_only_name_an_activity(tenant):
    send(tenant, track("u1", "Signed up", **TEST))
    send(tenant, track("u2", "Signed up"))
    assert not Activity.objects.for_tenant(tenant).get(name="Signed up").test_only


def test_a_viewer_cannot_keep_a_test_event(tenant, viewer, client):
    send(tenant, track("u1", "Signed up", **TEST))
    activity = Activity.objects.for_tenant(tenant).get(name="Signed up")
    response = client_for(client, viewer).post(reverse("events:keep_activity", args=[tenant.slug, activity.public_id]))
    assert response.status_code == 403
    activity.refresh_from_db()
    assert activity.test_only
