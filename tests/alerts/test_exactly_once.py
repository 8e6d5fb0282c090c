"""Exactly once: evaluation after real scoring runs; a recompute, a re-run and redelivered tasks send nothing twice."""

from datetime import timedelta

from alerts import services, tasks
from alerts.models import ActionKind, AlertFiring, Delivery, Subject, Trigger
from scoring import services as scoring_services
from scoring.models import RunKind
from tests.scoring.conftest import add_counts, make_activities, make_model, make_users


def _rule(tenant, receiver):
    endpoint, _ = services.endpoint_create(tenant=tenant, name="CRM", url=receiver.url, owner=None)
    return services.rule_save(tenant=tenant, name="New users", subject=Subject.USERS, trigger=Trigger.FIRST_EVENT,
                              actions=[{"kind": ActionKind.WEBHOOK, "endpoint": endpoint}])


def _scored_tenant(tenant):
    acts = make_activities(tenant, "Logged in")
    users = make_users(tenant, "old", "fresh")
    today = tenant.today()
    add_counts(tenant, [(users["old"], acts["Logged in"], today - timedelta(days=d), 1) for d in range(1, 6)])
    add_counts(tenant, [(users["fresh"], acts["Logged in"], today, 3)])
    return make_model(tenant, {acts["Logged in"]: 1}), users


def test_a_scoring_run_fires_each_rule_once(tenant, receiver, django_capture_on_commit_callbacks):
    model, users = _scored_tenant(tenant)
    rule = _rule(tenant, receiver)
    with django_capture_on_commit_callbacks(execute=True):
        scoring_services.scoring_model_publish(model=model, backfill_days=5)
    # The backfill scored 5 days; only the recent ones are evaluated, and "fresh" first acted today.
    firing = AlertFiring.objects.get(tenant=tenant)
    assert (firing.rule, firing.subject_id, firing.day) == (rule, users["fresh"].pk, tenant.today())
    assert [b["subject"]["name"] for b in receiver.bodies()] == ["fresh"]

    # A recompute of the same days, a second run of today and redelivered tasks: nothing new is sent.
    with django_capture_on_commit_callbacks(execute=True):
        run = scoring_services.recompute_request(tenant=tenant, days=5)
    run.refresh_from_db()
    assert run.status == "succeeded"
    with django_capture_on_commit_callbacks(execute=True):
        again = scoring_services.run_create(model=model, kind=RunKind.REFRESH, first_day=tenant.today(),
                                            last_day=tenant.today())
        scoring_services.run_enqueue(again)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.evaluate_run.delay(run.pk).get() == 0  # a redelivered evaluation
        tasks.deliver.delay(Delivery.objects.get(tenant=tenant).pk)  # a redelivered delivery
    assert AlertFiring.objects.filter(tenant=tenant).count() == 1
    assert Delivery.objects.filter(tenant=tenant).count() == 1
    assert len(receiver.requests) == 1


def test_a_paused_rule_fires_nothing(tenant, receiver, django_capture_on_commit_callbacks):
    model, _ = _scored_tenant(tenant)
    services.rule_set_paused(rule=_rule(tenant, receiver), paused=True)
    with django_capture_on_commit_callbacks(execute=True):
        scoring_services.scoring_model_publish(model=model, backfill_days=3)
    assert not AlertFiring.objects.filter(tenant=tenant).exists() and receiver.requests == []


def test_a_draft_preview_or_old_days_fire_nothing(tenant, receiver, settings, django_capture_on_commit_callbacks):
    model, _ = _scored_tenant(tenant)
    _rule(tenant, receiver)
    settings.ALERTS_EVALUATE_RECENT_DAYS = 1
    with django_capture_on_commit_callbacks(execute=True):
        run = scoring_services.run_create(model=model, kind=RunKind.RECOMPUTE, first_day=tenant.today(),
                                          last_day=tenant.today())
        scoring_services.run_enqueue(run)  # the model is still a draft
    assert not AlertFiring.objects.filter(tenant=tenant).exists()


def test_the_same_key_twice_is_refused_by_the_database(tenant, receiver):
    import pytest
    from django.db import IntegrityError, transaction

    rule = _rule(tenant, receiver)
    kwargs = dict(tenant=tenant, rule=rule, subject="users", subject_id=1, day=tenant.today(), trigger=rule.trigger,
                  subject_public_id=rule.public_id, subject_name="x", reason="r")
    AlertFiring.objects.create(key="k1", **kwargs)
    with pytest.raises(IntegrityError), transaction.atomic():
        AlertFiring.objects.create(key="k2", **kwargs)
