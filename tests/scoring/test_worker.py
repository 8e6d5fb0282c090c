"""A real Celery worker against real Redis (CI's PostgreSQL + Redis pass; skipped on a bare machine)."""

import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker

from scoring import services
from scoring.models import ProductScore, RunKind, RunStatus, ScoringRun

from .conftest import add_counts, make_model, make_users


def _wait_for(run, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if not run.is_active:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run still {run.status} after {seconds} s")


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_scores_a_fanned_out_run(redis_url, celery_eager, settings, monkeypatch, tenant, acts, request):
    settings.SCORING_CHUNK_DAYS = 2
    app = celery_eager
    app.conf.task_always_eager = False
    previous_broker = app.conf.broker_url
    app.conf.broker_url = redis_url
    request.addfinalizer(lambda: setattr(app.conf, "broker_url", previous_broker))
    users = make_users(tenant, "u1", "u2")
    today = tenant.today()
    add_counts(tenant, [(u, acts["Logged in"], today - timedelta(days=d), 2) for u in users.values() for d in range(5)])
    model = make_model(tenant, {acts["Logged in"]: 1})
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        # Publishing commits (transaction=True), so the backfill goes through the broker.
        run = services.scoring_model_publish(model=model, backfill_days=5)
        run = _wait_for(run)
        assert run.status == RunStatus.SUCCEEDED, run.error
        assert run.days_done == 5 and run.progress == 100
        assert ProductScore.objects.unscoped().filter(model=model).count() == 5

        # A failing run ends as failed with its message on the run.
        from scoring import engine
        from scoring.tasks import score_run

        def broken_sql(model, day):
            raise RuntimeError("broken on purpose")

        monkeypatch.setattr(engine, "account_scores_sql", broken_sql)  # the worker thread shares this module
        broken = services.run_create(model=model, kind=RunKind.RECOMPUTE, first_day=today, last_day=today)
        score_run.delay(broken.pk)
        broken = _wait_for(broken)
    assert broken.status == RunStatus.FAILED
    assert "broken on purpose" in broken.error
    assert ScoringRun.objects.unscoped().filter(pk=broken.pk, day_rows={}).exists()
