"""seed_demo's alerts: two rules, the dev receiver's endpoint with real deliveries, idempotent."""

import socket
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.demo import DEMO_SLUG
from accounts.models import Tenant
from alerts.demo import ENDPOINT_NAME, LOW_RULE, RISK_RULE
from alerts.models import AlertFiring, AlertRule, DeliveryAttempt, WebhookEndpoint


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_seed_demo_gives_two_rules_and_a_working_webhook(settings):
    settings.DEBUG = True  # the dev receiver and local targets are development features
    settings.SITE_URL = f"http://127.0.0.1:{_free_port()}"
    call_command("seed_demo", "--users", "60", stdout=StringIO())
    tenant = Tenant.objects.get(slug=DEMO_SLUG)
    rules = {r.name: r for r in AlertRule.objects.for_tenant(tenant)}
    assert set(rules) == {LOW_RULE, RISK_RULE}
    assert rules[LOW_RULE].describe() == "tier dropped to low"
    assert [a.target_label for a in rules[LOW_RULE].actions.all()] == ["email to the owner"]
    endpoint = WebhookEndpoint.objects.for_tenant(tenant).get(name=ENDPOINT_NAME)
    assert [a.endpoint for a in rules[RISK_RULE].actions.all()] == [endpoint]
    # Whatever fired was delivered to our own receiver, which checked the signature.
    for attempt in DeliveryAttempt.objects.for_tenant(tenant).filter(endpoint=endpoint):
        assert attempt.status_code == 200 and '"signature": "valid"' in attempt.response_excerpt
    firings = AlertFiring.objects.for_tenant(tenant).count()

    call_command("seed_demo", "--users", "60", stdout=StringIO())
    assert AlertRule.objects.for_tenant(tenant).count() == 2
    assert AlertFiring.objects.for_tenant(tenant).count() == firings


@pytest.mark.django_db
def test_the_dev_receiver_is_off_in_production(settings, tenant):
    settings.DEBUG = False
    url = "/dev/alerts-receiver/12345678-1234-5678-1234-567812345678/"
    response = Client().post(url, b"{}", content_type="application/json")
    assert response.status_code == 404
