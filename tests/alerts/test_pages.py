"""The alerts pages: editors write, viewers read, other workspaces see nothing, secrets show once."""

import pytest
from django.urls import reverse

from alerts.models import AlertRule, Delivery, DeliveryAttempt, WebhookEndpoint
from tests.conftest import client_for

from .conftest import endpoint_for, falling_accounts, webhook_rule


def url(name, tenant, *args):
    return reverse(f"alerts:{name}", args=[tenant.slug, *args])


@pytest.fixture
def endpoint(tenant, owner, receiver):
    return endpoint_for(tenant, receiver.url, owner)[0]


def test_the_list_shows_rules_and_firings(client, tenant, viewer, endpoint, django_capture_on_commit_callbacks):
    from alerts import services

    falling_accounts(tenant)
    webhook_rule(tenant, endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        services.evaluate_days(tenant, [tenant.today()])
    response = client_for(client, viewer).get(url("list", tenant))
    assert response.status_code == 200
    text = response.content.decode()
    assert "Tier dropped to low" in text and "tier changed to low" in text and "Falling Co" in text
    assert "New rule" not in text and "Replay" not in text  # read-only for a viewer


def test_an_editor_creates_a_rule_with_actions(client, tenant, editor, endpoint):
    response = client_for(client, editor).post(url("rule_create", tenant), {
        "name": "Falling accounts", "subject": "accounts", "trigger": "points_fell", "percent": "30", "days": "7",
        "webhook": endpoint.pk, "email_owner": "on", "filter_plan": "paid",
    })
    rule = AlertRule.objects.get(tenant=tenant)
    assert response.status_code == 302 and response["Location"] == url("rule", tenant, rule.public_id)
    assert (rule.trigger, rule.percent, rule.days, rule.filter_plan) == ("points_fell", 30, 7, "paid")
    assert sorted(a.kind for a in rule.actions.all()) == ["email", "webhook"]
    page = client.get(url("rule", tenant, rule.public_id)).content.decode()
    assert "points fell by 30% or more in 7 days" in page and "email to the owner" in page


def test_bad_input_is_a_form_error(client, tenant, editor):
    response = client_for(client, editor).post(url("rule_create", tenant), {
        "name": "x", "subject": "users", "trigger": "at_risk", "slack_url": "ftp://nope",
    })
    assert response.status_code == 400
    text = response.content.decode()
    assert "Use an https:// URL." in text
    assert not AlertRule.objects.filter(tenant=tenant).exists()
    response = client.post(url("rule_create", tenant), {"name": "x", "subject": "accounts", "trigger": "at_risk"})
    assert response.status_code == 400 and "at least one action" in response.content.decode()
    response = client.post(url("rule_create", tenant), {"name": "x", "subject": "users", "trigger": "at_risk",
                                                         "email_owner": "on"})
    assert response.status_code == 400 and "about customer accounts" in response.content.decode()


def test_a_viewer_cannot_write(client, tenant, viewer, endpoint):
    rule = webhook_rule(tenant, endpoint)
    client_for(client, viewer)
    assert client.get(url("rule_create", tenant)).status_code == 403
    assert client.post(url("rule", tenant, rule.public_id), {"name": "hacked"}).status_code == 403
    assert client.post(url("rule_pause", tenant, rule.public_id)).status_code == 403
    assert client.get(url("rule_test", tenant, rule.public_id)).status_code == 403
    assert client.post(url("endpoints", tenant), {"name": "x", "url": "https://93.184.216.34/"}).status_code == 403
    rule.refresh_from_db()
    assert rule.name == "Tier dropped to low" and not rule.paused
    assert WebhookEndpoint.objects.for_tenant(tenant).count() == 1


def test_pause_and_resume(client, tenant, editor, endpoint):
    rule = webhook_rule(tenant, endpoint)
    client_for(client, editor).post(url("rule_pause", tenant, rule.public_id), {"paused": "1"})
    rule.refresh_from_db()
    assert rule.paused
    client.post(url("rule_pause", tenant, rule.public_id), {"paused": "0"})
    rule.refresh_from_db()
    assert not rule.paused


def test_the_test_page_lists_last_weeks_subjects(client, tenant, editor, endpoint):
    falling_accounts(tenant)
    rule = webhook_rule(tenant, endpoint)
    response = client_for(client, editor).get(url("rule_test", tenant, rule.public_id))
    text = response.content.decode()
    assert "1 alert on 1 day." in text and "Falling Co" in text and "tier dropped from medium to low" in text
    assert not rule.firings.exists()


def test_the_secret_is_shown_once(client, tenant, editor):
    client_for(client, editor)
    response = client.post(url("endpoints", tenant), {"name": "CRM", "url": "https://93.184.216.34/hooks"})
    endpoint = WebhookEndpoint.objects.get(tenant=tenant)
    assert response.status_code == 200 and endpoint.secret in response.content.decode()
    for page in (url("endpoints", tenant), url("endpoint", tenant, endpoint.public_id), url("list", tenant)):
        assert endpoint.secret not in client.get(page).content.decode()
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_an_unsafe_endpoint_url_is_a_form_error(client, tenant, editor, settings):
    settings.ALERTS_ALLOW_LOCAL_TARGETS = False
    response = client_for(client, editor).post(url("endpoints", tenant), {"name": "x",
                                                                          "url": "https://169.254.169.254/"})
    assert response.status_code == 400 and "metadata" in response.content.decode()
    assert not WebhookEndpoint.objects.filter(tenant=tenant).exists()


def test_the_delivery_log_and_replay(client, tenant, editor, endpoint, receiver, django_capture_on_commit_callbacks):
    from alerts import services

    falling_accounts(tenant)
    webhook_rule(tenant, endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        services.evaluate_days(tenant, [tenant.today()])
    delivery = Delivery.objects.get(tenant=tenant)
    client_for(client, editor)
    page = client.get(url("endpoint", tenant, endpoint.public_id)).content.decode()
    assert "Falling Co" in page and ">200<" in page and " ms" in page and "Replay" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("delivery_replay", tenant, delivery.public_id))
    assert response.status_code == 302
    assert DeliveryAttempt.objects.for_tenant(tenant).count() == 2 and len(receiver.requests) == 2


def test_another_workspace_sees_nothing(client, tenant, outsider, other_tenant, endpoint,
                                        django_capture_on_commit_callbacks):
    from alerts import services

    falling_accounts(tenant)
    rule = webhook_rule(tenant, endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        services.evaluate_days(tenant, [tenant.today()])
    delivery = Delivery.objects.get(tenant=tenant)
    client_for(client, outsider)
    for page in (url("list", other_tenant), url("endpoints", other_tenant)):
        text = client.get(page).content.decode()
        assert rule.name not in text and endpoint.url not in text and endpoint.secret not in text
        assert "Falling Co" not in text
    # Tenant A's ids under the outsider's own workspace: 404, and nothing changes.
    assert client.get(url("rule", other_tenant, rule.public_id)).status_code == 404
    assert client.get(url("endpoint", other_tenant, endpoint.public_id)).status_code == 404
    assert client.post(url("delivery_replay", other_tenant, delivery.public_id)).status_code == 404
    assert client.post(url("rule_pause", other_tenant, rule.public_id)).status_code == 404
    rule.refresh_from_db()
    assert not rule.paused and DeliveryAttempt.objects.for_tenant(tenant).count() == 1


def test_wrong_method(client, tenant, editor, endpoint):
    rule = webhook_rule(tenant, endpoint)
    client_for(client, editor)
    assert client.get(url("rule_pause", tenant, rule.public_id)).status_code == 405
    assert client.put(url("rule", tenant, rule.public_id)).status_code == 405
