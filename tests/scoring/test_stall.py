"""The stall sweeper: a running run whose worker died is resumed in minutes, not after the
broker's visibility timeout; a run making progress is left alone; resumes are capped.

Eager Celery on the embedded default; the real-worker version (SIGKILL of the whole
worker) is in test_worker_kill.py.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from scoring import engine, services, tasks
from scoring.models import AccountScore, ProductScore, RunKind, RunStatus, ScoringRun, UserScore

from .conftest import add_counts, make_account, make_model, make_users
from .test_engine import _snapshot

pytestmark = pytest.mark.django_db

DAYS = 5


@pytest.fixture
def world(tenant, acts, settings):
    """A model, the snapshots of a clean run as reference, then no snapshots at all."""
    settings.SCORING_STALL_MINUTES = 10
    settings.SCORING_STALL_MAX_RESUMES = 3
    account = make_account(tenant, "acme")
    users = make_users(tenant, *[f"u{i}" for i in range(6)], account=account)
    today = tenant.today()
    add_counts(tenant, [
        (u, acts["Logged in"], today - timedelta(days=d), 1 + (i + d) % 3)
        for i, u in enumerate(users.values()) for d in range(DAYS + 3)
    ])  # fmt: skip
    model = make_model(tenant, {acts["Logged in"]: 2})
    first = today - timedelta(DAYS - 1)
    clean = services.run_create(model=model, kind=RunKind.RECOMPUTE, first_day=first, last_day=today)
    services.run_in_foreground(clean)
    reference = _snapshot(model)
    for table in (UserScore, AccountScore, ProductScore):
        table.objects.unscoped().filter(model=model).delete()
    return model, reference


def _half_done_run(model, *, idle_minutes):
    """A run claimed by a worker that recorded two days and then went silent `idle_minutes` ago."""
    today = model.tenant.today()
    run = services.run_create(model=model, kind=RunKind.BACKFILL, first_day=today - timedelta(DAYS - 1), last_day=today)
    services.run_claim(run.pk)
    services.run_compute_days(run.pk, services.run_days(run)[:2])
    ScoringRun.objects.unscoped().filter(pk=run.pk).update(
        progressed_at=timezone.now() - timedelta(minutes=idle_minutes)
    )
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.days_done == 2
    return run


def test_a_run_with_no_progress_for_the_threshold_gets_its_missing_days_reenqueued(
    world, settings, django_capture_on_commit_callbacks
):
    settings.SCORING_CHUNK_DAYS = 2  # the three missing days go out as two chunks
    model, reference = world
    run = _half_done_run(model, idle_minutes=11)
    assert run.is_stalled

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        tasks.resume_stalled_runs.delay()  # what beat sends
        assert services.runs_resume_stalled() == []  # the next tick: the clock was restarted

    # One re-enqueue (the other callbacks: the finished run's alert evaluation, alerts.signals).
    assert len([c for c in callbacks if "_resume_if_stalled" in c.__qualname__]) == 1
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.days_done == DAYS and run.resumes == 1 and run.attempts == 1
    assert _snapshot(model) == reference  # the rows of one clean run


def test_a_run_with_recent_progress_is_left_alone(world, django_capture_on_commit_callbacks):
    model, _ = world
    run = _half_done_run(model, idle_minutes=9)
    queued = services.run_create(model=model, kind=RunKind.REFRESH, first_day=run.last_day, last_day=run.last_day)
    ScoringRun.objects.unscoped().filter(pk=queued.pk).update(created_at=timezone.now() - timedelta(hours=2))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert services.runs_resume_stalled() == []

    assert callbacks == []
    run.refresh_from_db()
    assert not run.is_stalled
    assert run.status == RunStatus.RUNNING and run.days_done == 2 and run.resumes == 0
    queued.refresh_from_db()
    assert queued.status == RunStatus.QUEUED and queued.resumes == 0  # waiting in the queue is not a stall


def test_sweeping_twice_resumes_once(world, django_capture_on_commit_callbacks):
    model, _ = world
    run = _half_done_run(model, idle_minutes=30)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.runs_resume_stalled() == [run.pk]
        assert services.runs_resume_stalled() == []  # a second beat, or the next tick
    assert len(callbacks) == 1
    run.refresh_from_db()
    assert run.resumes == 1 and run.status == RunStatus.RUNNING and not run.is_stalled


def test_a_run_that_keeps_stalling_ends_failed_with_a_clear_error(world, django_capture_on_commit_callbacks):
    model, _ = world
    run = _half_done_run(model, idle_minutes=11)
    ScoringRun.objects.unscoped().filter(pk=run.pk).update(resumes=3)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert services.runs_resume_stalled() == []

    assert callbacks == []
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.finished_at is not None
    assert run.error.startswith("Stalled: no day finished for 10 minutes after 3 automatic resume(s)")
    assert "2 of 5 days done" in run.error


def test_a_duplicate_chunk_skips_a_day_another_chunk_recorded_while_it_waited(world, monkeypatch, settings):
    """A resumed chunk next to a live, slow worker: the day is read again under its lock."""
    settings.SCORING_RANGE_DAYS = 1  # a transaction per day, so the other chunk can take one in between
    model, reference = world
    today = model.tenant.today()
    run = services.run_create(model=model, kind=RunKind.BACKFILL, first_day=today - timedelta(DAYS - 1), last_day=today)
    services.run_claim(run.pk)
    days = services.run_days(run)
    computed = []
    real = engine.compute_day
    monkeypatch.setattr(engine, "compute_day", lambda m, d: computed.append(d) or real(m, d))

    def the_other_chunk_takes_day_three(current, result):
        if result.day == days[0]:
            services.run_compute_days(run.pk, [days[2]])

    services.run_compute_days(run.pk, days, on_day=the_other_chunk_takes_day_three)

    assert sorted(computed) == days  # every day once, day three by the other chunk only
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.days_done == DAYS
    assert _snapshot(model) == reference


def test_the_runs_page_shows_a_stalled_run(world, client, viewer, tenant):
    model, _ = world
    run = _half_done_run(model, idle_minutes=11)
    client.force_login(viewer)

    page = client.get(reverse("scoring:runs", args=[tenant.slug]))
    assert page.status_code == 200
    assert b"Stalled: no day finished for over 10 min" in page.content
    assert b'badge run-status warn">stalled<' in page.content
    data = client.get(reverse("scoring:run_status", args=[tenant.slug, run.public_id])).json()
    assert data["status"] == "running" and data["stalled"] is True and data["stall_note"].startswith("Stalled")

    ScoringRun.objects.unscoped().filter(pk=run.pk).update(progressed_at=timezone.now())
    page = client.get(reverse("scoring:runs", args=[tenant.slug]))
    assert b"Stalled:" not in page.content and b'run-status">running<' in page.content
    data = client.get(reverse("scoring:run_status", args=[tenant.slug, run.public_id])).json()
    assert data["stalled"] is False and data["stall_note"] == ""


def test_beat_sweeps_three_times_per_threshold():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["scoring-resume-stalled"]
    assert entry["task"] == "scoring.tasks.resume_stalled_runs"
    assert entry["schedule"] == pytest.approx(settings.SCORING_STALL_MINUTES * 60 / 3)
