"""A real Celery worker against real Redis: a published model's run fires a rule through the broker, once."""

import time

import pytest
from celery.contrib.testing.worker import start_worker

from alerts import services, tasks
from alerts.models import ActionKind, AlertFiring, Delivery, DeliveryStatus, Subject, Trigger
from scoring import services as scoring_services
from tests.scoring.conftest import add_counts, make_activities, make_model, make_users


def _wait(check, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not done after {seconds} s")


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_evaluates_and_delivers_once(redis_url, celery_eager, tenant, receiver, request):
    app = celery_eager
    app.conf.task_always_eager = False
    previous_broker = app.conf.broker_url
    app.conf.broker_url = redis_url
    request.addfinalizer(lambda: setattr(app.conf, "broker_url", previous_broker))
    acts = make_activities(tenant, "Logged in")
    users = make_users(tenant, "fresh")
    add_counts(tenant, [(users["fresh"], acts["Logged in"], tenant.today(), 2)])
    model = make_model(tenant, {acts["Logged in"]: 1})
    endpoint, secret = services.endpoint_create(tenant=tenant, name="CRM", url=receiver.url, owner=None)
    services.rule_save(tenant=tenant, name="New users", subject=Subject.USERS, trigger=Trigger.FIRST_EVENT,
                       actions=[{"kind": ActionKind.WEBHOOK, "endpoint": endpoint}])
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        run = scoring_services.scoring_model_publish(model=model, backfill_days=2)
        _wait(lambda: Delivery.objects.unscoped().filter(status=DeliveryStatus.SUCCEEDED).exists())
        assert len(receiver.requests) == 1
        # The broker hands the same messages out again (a redelivery after a lost ack).
        delivery = Delivery.objects.unscoped().get()
        tasks.evaluate_run.delay(run.pk)
        tasks.deliver.delay(delivery.pk)
        # A task sent after the duplicates: once it ran, the solo worker has handled them too.
        tasks.deliver_due.delay()
        time.sleep(1.5)
    assert AlertFiring.objects.unscoped().count() == 1 and Delivery.objects.unscoped().count() == 1
    assert len(receiver.requests) == 1
    from alerts import payloads

    headers = {k.lower(): v for k, v in receiver.requests[0]["headers"].items()}
    assert payloads.verify(secret, receiver.requests[0]["body"], headers["engagement-signature"])
