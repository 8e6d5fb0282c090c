"""Webhooks end to end against a real receiver on 127.0.0.1: signed, retried, logged, replayed, once."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from alerts import payloads, services
from alerts.models import AlertFiring, Delivery, DeliveryAttempt, DeliveryStatus, WebhookEndpoint

from .conftest import endpoint_for, falling_accounts, webhook_rule


def _evaluate_today(tenant):
    return services.evaluate_days(tenant, [tenant.today()])


def test_a_signed_webhook_reaches_the_receiver(tenant, owner, receiver, django_capture_on_commit_callbacks):
    _model, falling, _steady = falling_accounts(tenant)
    endpoint, secret = endpoint_for(tenant, receiver.url, owner)
    rule = webhook_rule(tenant, endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        assert _evaluate_today(tenant) == 1
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    # The test verifies the signature as a customer's receiver would: HMAC-SHA256 over "<t>.<body>".
    assert payloads.verify(secret, request["body"], headers["engagement-signature"])
    assert not payloads.verify("whsec_wrong", request["body"], headers["engagement-signature"])
    body = json.loads(request["body"])
    firing = AlertFiring.objects.get(tenant=tenant)
    assert body["id"] == firing.key == headers["engagement-event-id"]
    assert body["type"] == "alert.fired" and body["day"] == tenant.today().isoformat()
    assert body["rule"] == {"id": str(rule.public_id), "name": "Tier dropped to low", "trigger": "tier_changed",
                            "description": "tier changed to low"}
    assert body["subject"]["name"] == "Falling Co" and body["subject"]["type"] == "account"
    assert body["subject"]["url"].endswith(f"/t/{tenant.slug}/scoring/accounts/{falling.public_id}/")
    assert body["reason"] == "tier dropped from medium to low"
    attempt = DeliveryAttempt.objects.get(tenant=tenant)
    assert attempt.status_code == 200 and attempt.ok and attempt.latency_ms is not None
    assert '"ok": true' in attempt.response_excerpt


def test_500_twice_then_200_is_sent_three_times_and_logged(tenant, owner, make_receiver,
                                                            django_capture_on_commit_callbacks):
    receiver = make_receiver([500, 500, 200])
    falling_accounts(tenant)
    endpoint, _ = endpoint_for(tenant, receiver.url, owner)
    webhook_rule(tenant, endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        _evaluate_today(tenant)
    assert len(receiver.requests) == 3
    assert len({b["id"] for b in receiver.bodies()}) == 1  # the same event id every time
    log = list(DeliveryAttempt.objects.for_tenant(tenant).filter(endpoint=endpoint).order_by("number"))
    assert [(a.number, a.status_code, a.ok) for a in log] == [(1, 500, False), (2, 500, False), (3, 200, True)]
    delivery = Delivery.objects.get(tenant=tenant)
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 3
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None  # the success cleared it


def test_a_4xx_is_not_retried(tenant, owner, make_receiver, django_capture_on_commit_callbacks):
    receiver = make_receiver([410])
    falling_accounts(tenant)
    endpoint, _ = endpoint_for(tenant, receiver.url, owner)
    webhook_rule(tenant, endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        _evaluate_today(tenant)
    assert len(receiver.requests) == 1
    delivery = Delivery.objects.get(tenant=tenant)
    assert delivery.status == DeliveryStatus.FAILED and delivery.last_error == "HTTP 410"


def test_retries_stop_after_the_schedule(tenant, owner, make_receiver, settings, django_capture_on_commit_callbacks):
    settings.ALERTS_RETRY_DELAYS = [0]
    receiver = make_receiver([503, 503, 503])
    falling_accounts(tenant)
    endpoint, _ = endpoint_for(tenant, receiver.url, owner)
    webhook_rule(tenant, endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        _evaluate_today(tenant)
    assert len(receiver.requests) == 2
    assert Delivery.objects.get(tenant=tenant).status == DeliveryStatus.FAILED


def test_a_long_wait_is_left_to_the_sweep(tenant, owner, make_receiver, settings, django_capture_on_commit_callbacks):
    settings.ALERTS_RETRY_DELAYS = [3600]
    receiver = make_receiver([502])
    falling_accounts(tenant)
    endpoint, _ = endpoint_for(tenant, receiver.url, owner)
    webhook_rule(tenant, endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        _evaluate_today(tenant)
    delivery = Delivery.objects.get(tenant=tenant)
    assert delivery.status == DeliveryStatus.RETRYING and len(receiver.requests) == 1
    assert services.deliveries_due() == []  # not due for an hour
    Delivery.objects.for_tenant(tenant).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    from alerts.tasks import deliver_due

    deliver_due.delay()
    assert len(receiver.requests) == 2
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED


def test_replay_sends_the_same_event_again(tenant, owner, receiver, django_capture_on_commit_callbacks):
    falling_accounts(tenant)
    endpoint, _ = endpoint_for(tenant, receiver.url, owner)
    webhook_rule(tenant, endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        _evaluate_today(tenant)
        delivery = Delivery.objects.get(tenant=tenant)
    with django_capture_on_commit_callbacks(execute=True):
        services.delivery_replay(delivery=delivery)
    first, second = receiver.bodies()
    assert first["id"] == second["id"] and second["replay"] is True and first["replay"] is False
    log = DeliveryAttempt.objects.for_tenant(tenant).order_by("number")
    assert [(a.number, a.replay) for a in log] == [(1, False), (2, True)]


def test_an_endpoint_failing_for_a_day_is_disabled_and_its_owner_emailed(
    tenant, owner, make_receiver, settings, django_capture_on_commit_callbacks
):
    settings.ALERTS_RETRY_DELAYS = []
    receiver = make_receiver([500, 500])
    falling_accounts(tenant)
    endpoint, _ = endpoint_for(tenant, receiver.url, owner)
    webhook_rule(tenant, endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        _evaluate_today(tenant)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None and endpoint.is_active
    # A day later it still fails: the next failure disables it.
    WebhookEndpoint.objects.for_tenant(tenant).update(failing_since=timezone.now() - timedelta(hours=25))
    delivery = Delivery.objects.get(tenant=tenant)
    with django_capture_on_commit_callbacks(execute=True):
        services.delivery_replay(delivery=delivery)
    endpoint.refresh_from_db()
    assert not endpoint.is_active and "failed for 24 hours" in endpoint.disabled_reason
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [owner.email]
    assert "disabled" in mail.outbox[0].subject and endpoint.secret not in mail.outbox[0].body
    # A disabled endpoint gets nothing more.
    with pytest.raises(Exception, match="disabled"):
        services.delivery_replay(delivery=delivery)
    assert len(receiver.requests) == 2


def test_the_secret_is_never_logged(tenant, owner, make_receiver, caplog, django_capture_on_commit_callbacks):
    receiver = make_receiver([500, 404])
    falling_accounts(tenant)
    endpoint, secret = endpoint_for(tenant, receiver.url, owner)
    webhook_rule(tenant, endpoint)
    with caplog.at_level("DEBUG"), django_capture_on_commit_callbacks(execute=True):
        _evaluate_today(tenant)
    assert secret not in caplog.text
    assert not DeliveryAttempt.objects.for_tenant(tenant).filter(response_excerpt__contains=secret).exists()


def test_the_body_is_an_openapi_component(client, tenant, owner, receiver, django_capture_on_commit_callbacks):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    component = schema["components"]["schemas"]["AlertWebhookEvent"]
    falling_accounts(tenant)
    endpoint, _ = endpoint_for(tenant, receiver.url, owner)
    webhook_rule(tenant, endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        _evaluate_today(tenant)
    body = receiver.bodies()[0]
    # What we send has exactly the documented fields.
    assert set(body) == set(component["properties"]) == set(component["required"])
    assert set(body["subject"]) == set(component["properties"]["subject"]["properties"])
    assert set(body["rule"]) == set(component["properties"]["rule"]["properties"])
