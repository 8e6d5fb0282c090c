"""Dates are shown in the workspace's time zone: the closing day chosen on the form is the day people read.

The form stores the end of the chosen day in the tenant's zone; in New York that
is already the next day in UTC, so pages rendered in UTC said "closes 2030-02-01".
"""

import pytest
from django.urls import reverse

from accounts.services import tenant_create
from events.models import Activity
from surveys import services
from surveys.models import Survey

from . import factories
from .test_public_answer import form_data


@pytest.fixture
def ny_tenant(owner):
    return tenant_create(owner=owner, name="Initech", product_name="Stapler", time_zone="America/New_York")


@pytest.fixture
def survey(client, owner, ny_tenant):
    activity = Activity.objects.create(tenant=ny_tenant, name="Stapled")
    client.force_login(owner)
    data = {"title": "Q1 survey", "closes_on": "2030-01-31", "activities": [str(activity.pk)], "allow_proposals": "on"}
    response = client.post(reverse("surveys:create", args=[ny_tenant.slug]), data)
    assert response.status_code == 302
    survey = Survey.objects.get(tenant=ny_tenant)
    # The end of January 31st in New York is already February 1st in UTC.
    assert survey.closes_at.isoformat().startswith("2030-02-01T04:59:59")
    return survey


def test_the_tenant_pages_show_the_chosen_day(client, survey):
    slug = survey.tenant.slug
    detail = client.get(reverse("surveys:detail", args=[slug, survey.public_id])).content.decode()
    # Shown in the workspace zone and labelled with it (core/templatetags/workspace_time.py).
    assert '">2030-01-31 23:59 <abbr class="zone">' in detail
    assert "2030-02-01 " not in detail and ">2030-02-01" not in detail
    listing = client.get(reverse("surveys:list", args=[slug])).content.decode()
    assert '">2030-01-31</time></td>' in listing and ">2030-02-01" not in listing
    form = client.get(reverse("surveys:edit", args=[slug, survey.public_id])).content.decode()
    assert 'value="2030-01-31"' in form


def test_the_emails_show_the_chosen_day(survey, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        factories.invitee(survey, "guest@initech.test")
    with django_capture_on_commit_callbacks(execute=True):
        services.survey_send_reminders(survey=survey)
    invitation, reminder = (m.body for m in mailoutbox)
    assert "until the survey closes on 2030-01-31)" in invitation
    assert "The survey closes on 2030-01-31." in reminder
    assert "2030-02-01" not in invitation + reminder


def test_the_answer_and_thanks_pages_show_the_chosen_day(client, survey):
    client.logout()
    token = factories.invitee(survey, "guest@initech.test").token()
    page = client.get(reverse("surveys:answer", args=[token])).content.decode()
    assert "open until 2030-01-31" in page and "2030-02-01" not in page
    response = client.post(reverse("surveys:answer", args=[token]), form_data(survey), follow=True)
    assert response.status_code == 200
    assert b"until the survey closes on 2030-01-31." in response.content
