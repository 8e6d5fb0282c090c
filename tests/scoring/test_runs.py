"""Runs, tasks and the `score` command: idempotent, resumable, never interleaved."""

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from accounts import rls
from scoring import engine, services, tasks
from scoring.models import ProductScore, RunKind, RunStatus, ScoringRun, UserScore

from .conftest import add_counts, make_account, make_model, make_users
from .test_engine import _snapshot


def _seed(tenant, acts, days=10):
    account = make_account(tenant, "acme")
    users = make_users(tenant, *[f"u{i}" for i in range(8)], account=account)
    today = tenant.today()
    add_counts(
        tenant,
        [
            (u, acts["Logged in"], today - timedelta(days=d), 1 + (i + d) % 4)
            for i, u in enumerate(users.values())
            for d in range(days)
        ],
    )
    return users


@pytest.mark.django_db
def test_publish_backfills_the_configured_days(tenant, acts, owner):
    _seed(tenant, acts)
    draft = make_model(tenant, {acts["Logged in"]: 2})
    run = services.scoring_model_publish(model=draft, published_by=owner, backfill_days=12)
    # Eager Celery on the embedded default: the run happened at commit (the test's transaction
    # never commits, so run it as the on-commit hook would).
    tasks.score_run.delay(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.progress == 100
    assert run.days_total == 12 and run.days_done == 12
    assert ProductScore.objects.unscoped().filter(model=draft).count() == 12
    assert run.rows_written == 12 * (8 + 1 + 1)
    draft.refresh_from_db()
    assert draft.status == "published"


@pytest.mark.django_db
def test_publishing_retires_the_previous_version(tenant, acts):
    v1 = make_model(tenant, {acts["Logged in"]: 1})
    services.scoring_model_publish(model=v1, backfill_days=1)
    v2 = make_model(tenant, {acts["Logged in"]: 3})
    services.scoring_model_publish(model=v2, backfill_days=1)
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert (v1.status, v2.status) == ("retired", "published")
    with pytest.raises(Exception, match="frozen"):
        services.scoring_model_update(model=v1, window_days=7)


@pytest.mark.django_db
def test_a_fan_out_run_covers_every_day_once(tenant, acts, settings):
    settings.SCORING_CHUNK_DAYS = 3
    _seed(tenant, acts)
    model = make_model(tenant, {acts["Logged in"]: 1})
    today = tenant.today()
    run = services.run_create(model=model, kind=RunKind.RECOMPUTE, first_day=today - timedelta(days=9), last_day=today)
    tasks.score_run.delay(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.days_done == 10
    assert ProductScore.objects.unscoped().filter(model=model).count() == 10


@pytest.mark.django_db
def test_a_run_killed_half_way_and_retried_leaves_the_rows_of_one_clean_run(tenant, acts, monkeypatch, settings):
    # Ranges of two days, one transaction each: the worker dies in the second range.
    settings.SCORING_RANGE_DAYS = 2
    _seed(tenant, acts)
    model = make_model(tenant, {acts["Logged in"]: 1}, half_life_days=3)
    today = tenant.today()
    first = today - timedelta(days=4)

    # The clean reference, then wipe it.
    clean = services.run_create(model=model, kind=RunKind.RECOMPUTE, first_day=first, last_day=today)
    services.run_in_foreground(clean)
    reference = _snapshot(model)
    for table in (UserScore, ProductScore):
        table.objects.unscoped().filter(model=model).delete()
    from scoring.models import AccountScore

    AccountScore.objects.unscoped().filter(model=model).delete()

    # A worker that dies inside the third day, after its user rows were inserted.
    real = engine.account_scores_sql
    calls = {"n": 0}

    def dying(model_, day):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker lost")
        return real(model_, day)

    monkeypatch.setattr(engine, "account_scores_sql", dying)
    run = services.run_create(model=model, kind=RunKind.RECOMPUTE, first_day=first, last_day=today)
    with pytest.raises(RuntimeError):
        tasks.score_run.delay(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "worker lost" in run.error
    assert run.days_done == 2
    # The failed range left nothing half-written: exactly the first range's two days exist.
    assert ProductScore.objects.unscoped().filter(model=model).count() == 2
    assert set(UserScore.objects.unscoped().filter(model=model).values_list("day", flat=True)) == {
        first,
        first + timedelta(1),
    }

    # Redelivery of the same work (status back to running as a requeued message would find it).
    monkeypatch.setattr(engine, "account_scores_sql", real)
    ScoringRun.objects.unscoped().filter(pk=run.pk).update(status=RunStatus.RUNNING)
    tasks.score_run.delay(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.days_done == 5
    assert _snapshot(model) == reference


@pytest.mark.django_db
def test_a_finished_run_redelivered_does_nothing(tenant, acts):
    _seed(tenant, acts, days=2)
    model = make_model(tenant, {acts["Logged in"]: 1})
    today = tenant.today()
    run = services.run_create(model=model, kind=RunKind.REFRESH, first_day=today, last_day=today)
    tasks.score_run.delay(run.pk)
    run.refresh_from_db()
    finished_at = run.finished_at
    tasks.score_run.delay(run.pk)
    run.refresh_from_db()
    assert run.finished_at == finished_at and run.attempts == 1


@pytest.mark.django_db
def test_refresh_creates_today_and_finalizes_yesterday_once(tenant, acts):
    _seed(tenant, acts, days=3)
    model = make_model(tenant, {acts["Logged in"]: 1})
    services.scoring_model_publish(model=model, backfill_days=1)
    first = services.refresh_tenant(tenant)
    assert sorted(r.kind for r in first) == ["finalize", "refresh"]
    for run in first:
        tasks.score_run.delay(run.pk)
    second = services.refresh_tenant(tenant)
    assert [r.kind for r in second] == ["refresh"]


@pytest.mark.django_db
def test_refresh_all_tenants_skips_tenants_without_a_model(tenant, other_tenant, acts):
    model = make_model(tenant, {acts["Logged in"]: 1})
    services.scoring_model_publish(model=model, backfill_days=1)
    tasks.refresh_all_tenants.delay()
    assert ScoringRun.objects.filter(tenant=tenant, kind=RunKind.REFRESH).count() == 1
    assert not ScoringRun.objects.filter(tenant=other_tenant).exists()


@pytest.mark.django_db
def test_score_command_runs_in_the_foreground(tenant, acts):
    _seed(tenant, acts, days=4)
    model = make_model(tenant, {acts["Logged in"]: 1})
    services.scoring_model_publish(model=model, backfill_days=1)
    out = StringIO()
    call_command("score", "--tenant", tenant.slug, "--days", "4", stdout=out)
    assert "4/4 days" in out.getvalue() and "Scored" in out.getvalue()
    run = ScoringRun.objects.unscoped().get(kind=RunKind.COMMAND)
    assert run.status == RunStatus.SUCCEEDED and run.progress == 100


@pytest.mark.django_db
def test_score_command_explains_bad_input(tenant):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No tenant"):
        call_command("score", "--tenant", "nope")
    with pytest.raises(CommandError, match="no published scoring model"):
        call_command("score", "--tenant", tenant.slug)


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_of_the_same_day_never_interleave(postgres, tenant, acts):
    _seed(tenant, acts)
    model = make_model(tenant, {acts["Logged in"]: 1}, half_life_days=2)
    day = tenant.today()
    engine.compute_day(model, day)
    reference = _snapshot(model)
    errors, barrier = [], threading.Barrier(4)

    def worker():
        try:
            barrier.wait()
            with rls.session_tenant(tenant):  # as a scoring task does; this thread is an app connection
                for _ in range(3):
                    engine.compute_day(model, day)
        except Exception as error:  # noqa: BLE001 - collected for the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _snapshot(model) == reference


@pytest.mark.django_db
def test_a_chunk_stops_once_a_sibling_failed_the_run(tenant, acts, settings):
    settings.SCORING_RANGE_DAYS = 2  # a range (one transaction) of two days, then the next
    _seed(tenant, acts, days=4)
    model = make_model(tenant, {acts["Logged in"]: 1})
    today = tenant.today()
    run = services.run_create(model=model, kind=RunKind.RECOMPUTE, first_day=today - timedelta(days=3), last_day=today)
    services.run_claim(run.pk)
    seen = []

    def fail_after_first_day(current, result):
        seen.append(current.days_done)
        services.run_fail(run.pk, "a sibling chunk broke")

    services.run_compute_days(run.pk, services.run_days(run), on_day=fail_after_first_day)

    run.refresh_from_db()
    assert seen == [2, 2]  # each day of the first range, then the chunk stopped: the run had failed
    assert run.status == RunStatus.FAILED and run.days_done == 2 and "sibling" in run.error
