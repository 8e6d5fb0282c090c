"""The onboarding checklist reads real state: each step ticks when its object exists."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse

from accounts.models import ApiKeyKind
from accounts.services import api_key_create, api_key_revoke
from insights import onboarding

from .helpers import product_row, published, send, track

pytestmark = pytest.mark.django_db


def _state(tenant):
    return {step.key: step.done for step in onboarding.checklist(tenant).steps}


def test_a_new_tenant_has_everything_to_do(tenant, django_assert_num_queries):
    with django_assert_num_queries(1):
        state = onboarding.checklist_state(tenant)
    assert state == {"survey": False, "write_key": False, "first_event": False, "published": False, "scores": False}
    checklist = onboarding.checklist(tenant)
    assert not checklist.complete and checklist.next_step.key == "survey"
    assert [s.key for s in checklist.steps] == ["survey", "write_key", "first_event", "published", "scores"]


def test_each_step_reads_real_state(tenant, other_tenant):
    from tests.surveys import factories

    survey = factories.survey(tenant)
    assert not _state(tenant)["survey"]  # a survey nobody answered is not "run"
    factories.answer(survey)
    assert _state(tenant)["survey"]

    key, _ = api_key_create(tenant=tenant, kind=ApiKeyKind.READ, name="reader")
    assert not _state(tenant)["write_key"]  # a read key does not send events
    key, _ = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="web")
    assert _state(tenant)["write_key"]
    api_key_revoke(key=key)
    assert not _state(tenant)["write_key"]
    api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="web 2")

    send(other_tenant, [track("x", "Logged in", other_tenant.today())])
    assert not _state(tenant)["first_event"]  # another tenant's events do not count
    send(tenant, [track("u1", "Logged in", tenant.today())])
    assert _state(tenant)["first_event"]

    model = published(tenant)
    assert _state(tenant)["published"] and not _state(tenant)["scores"]
    product_row(tenant, model, tenant.today() - timedelta(days=1), active_users=1)
    state = _state(tenant)
    assert state["scores"] and all(state.values())
    assert onboarding.checklist(tenant).complete


def test_without_the_surveys_app_the_step_is_left_out(tenant, monkeypatch):
    monkeypatch.setattr(onboarding, "_survey_model", lambda: None)
    assert "survey" not in _state(tenant)


def test_status_json_for_live_updates(client, tenant, viewer):
    client.force_login(viewer)
    status_url = reverse("insights:onboarding_status", args=[tenant.slug])
    assert json.loads(client.get(status_url).content)["steps"]["first_event"] is False
    send(tenant, [track("u1", "Logged in", tenant.today())])
    data = json.loads(client.get(status_url).content)
    assert data["steps"]["first_event"] is True and data["complete"] is False


def test_the_page_ticks_done_steps_and_links_each_step(client, tenant, owner):
    api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="web")
    client.force_login(owner)
    text = client.get(reverse("insights:onboarding", args=[tenant.slug])).content.decode()
    assert 'data-step="write_key"' in text and "step done" in text
    for name in ("surveys:list", "events:setup", "events:debugger", "scoring:models", "scoring:users"):
        assert reverse(name, args=[tenant.slug]) in text
    assert "js/onboarding.js" in text


def test_a_viewer_may_hide_it_for_themselves(client, tenant, viewer):
    client.force_login(viewer)
    response = client.post(reverse("insights:onboarding", args=[tenant.slug]), {"action": "hide"})
    assert response.status_code == 302
    assert "Get started" not in client.get(reverse("tenant_home", args=[tenant.slug])).content.decode()


def test_it_can_be_reopened_from_the_settings(client, tenant, viewer):
    client.force_login(viewer)
    client.post(reverse("insights:onboarding", args=[tenant.slug]), {"action": "hide"})

    settings_page = client.get(reverse("accounts:tenant_settings", args=[tenant.slug])).content.decode()
    link = reverse("insights:onboarding", args=[tenant.slug])
    assert f'href="{link}"' in settings_page
    assert 'data-step="write_key"' in client.get(link).content.decode()
