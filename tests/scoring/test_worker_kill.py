"""SIGKILL a real Celery worker half-way through a run: the broker redelivers, the rows equal one clean run.

A `celery worker` subprocess (prefork, one child) on the real Redis and PostgreSQL
scores a run while the test holds the advisory lock of one of its days, so the
child is provably stuck half-way (the days before done, that day not). Then the pool
child or the whole worker is killed with SIGKILL:

- a pool child: `task_reject_on_worker_lost` requeues the message at once;
- the whole worker: the message stays unacknowledged in Redis and a new worker gets
  it back once the broker's visibility timeout (3 s here, an hour by default) passed;
- the whole worker, visibility timeout left at an hour: the new worker's beat runs
  the stall sweeper, which re-enqueues the missing days within seconds
  (SCORING_STALL_MINUTES, a few seconds here).

Either way the redelivered task claims the run again, computes only the days that
are missing, and the snapshots equal those of a clean run.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from scoring import engine, services
from scoring.models import AccountScore, ProductScore, RunKind, RunStatus, UserScore

from .conftest import add_counts, make_account, make_model, make_users

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "scoring-kill-test"  # its own queue: no other test's leftover message reaches this worker
DAYS = 12
STUCK_AT = 5  # index of the day whose lock the test holds

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _snapshots(model):
    return (
        sorted(UserScore.objects.unscoped().filter(model=model).values_list(
            "end_user_id", "day", "points", "breadth", "active_days", "percentile", "tier")),
        sorted(AccountScore.objects.unscoped().filter(model=model).values_list("account_id", "day", "points", "tier")),
        sorted(ProductScore.objects.unscoped().filter(model=model).values_list(
            "day", "total_points", "active_users", "engaged_users")),
    )  # fmt: skip


def _db_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _start_worker(
    redis_url: str, log: Path, extra_env: dict | None = None, *, concurrency: int = 1, beat: Path | None = None
) -> subprocess.Popen:
    env = {
        **os.environ,
        **(extra_env or {}),
        "DATABASE_URL": _db_url(),  # the test database: the test's rows are committed (transaction=True)
        "REDIS_URL": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "False",
        "SCORING_CHUNK_DAYS": "100",  # one task for the whole run
        # Ranges of STUCK_AT days (one transaction each): the first commits, the second waits on the held day.
        "SCORING_RANGE_DAYS": str(STUCK_AT),
        "CELERY_QUEUE": QUEUE,  # what beat and the sweeper send goes to this worker's queue too
    }
    # -B: beat embedded in the worker, its schedule file kept out of the repo.
    embedded_beat = ["-B", f"--schedule={beat}"] if beat else []
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "engagement_site", "worker", "--pool=prefork",
         f"--concurrency={concurrency}", "-Q", QUEUE, *embedded_beat,
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _wait(predicate, seconds, what, log: Path):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()[-12000:]}")


def _stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)


@pytest.fixture
def broker(redis_url):
    """A Redis database of its own, emptied first: no message left by an earlier run (a redelivery
    from a worker killed before) can reach these workers and claim a run id reused by this database.
    Database 15 when REDIS_URL names database 0 (or none), else REDIS_URL's own."""
    import redis

    base, _, db = redis_url.rpartition("/")
    if db.isdigit() and db != "0":
        url = redis_url  # a database given to these tests alone (each engineer runs with their own)
    else:
        url = (base if db.isdigit() else redis_url) + "/15"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def scored_world(tenant, acts, celery_eager):
    """A tenant with a published model whose clean (eager) backfill is the reference."""
    account = make_account(tenant, "acct-1")
    users = list(make_users(tenant, *[f"u{i}" for i in range(40)], account=account).values())
    today = tenant.today()
    names = list(acts)
    add_counts(tenant, [
        (u, acts[names[(i + d) % len(names)]], today - timedelta(days=d), 1 + (i * d) % 4)
        for i, u in enumerate(users) for d in range(0, DAYS + 20) if (i + d) % 3
    ])  # fmt: skip
    model = make_model(tenant, {acts["Logged in"]: 1, acts["Shared photo"]: 20, acts["Invited friend"]: 50})
    services.scoring_model_publish(model=model, backfill_days=DAYS)  # eager: a clean run, in process
    reference = _snapshots(model)
    assert len(reference[0]) > DAYS * 20
    return model, reference


def _recompute_through_the_broker(model, redis_url):
    from scoring.tasks import score_run

    app = score_run.app
    previous = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager, app.conf.broker_url = False, redis_url
    try:
        today = model.tenant.today()
        run = services.run_create(
            model=model, kind=RunKind.RECOMPUTE, first_day=today - timedelta(days=DAYS - 1), last_day=today
        )
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(QUEUE)  # nothing left from an earlier, interrupted run
            score_run.apply_async(args=[run.pk], queue=QUEUE, connection=conn)
    finally:
        app.conf.task_always_eager, app.conf.broker_url = previous
    return run


def _hold_day_lock(model, day):
    """Hold the engine's advisory lock of `day` from another connection: the worker waits on it."""
    holder = psycopg.connect(_db_url().replace("postgres://", "postgresql://"), autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", [engine.lock_key(model.tenant_id, day)])
    return holder


def test_a_killed_worker_child_leaves_the_rows_of_one_clean_run(broker, postgres, scored_world, tmp_path):
    redis_url = broker
    model, reference = scored_world
    log = tmp_path / "worker.log"
    run = _recompute_through_the_broker(model, redis_url)
    stuck_day = run.first_day + timedelta(days=STUCK_AT)
    holder = _hold_day_lock(model, stuck_day)
    worker = _start_worker(redis_url, log)
    try:
        # Half-way: the days before the locked one are recorded, the locked one is not.
        _wait(lambda: run.refresh_from_db() or run.days_done == STUCK_AT, 60, "the run to reach the held day", log)
        time.sleep(0.5)
        run.refresh_from_db()
        assert run.status == RunStatus.RUNNING and run.days_done == STUCK_AT and run.attempts == 1
        children = _children(worker.pid)
        assert len(children) == 1, children
        os.kill(children[0], signal.SIGKILL)
        holder.close()  # releases the lock: the redelivered task may now go on
        _wait(lambda: run.refresh_from_db() or not run.is_active, 90, "the redelivered run to finish", log)
    finally:
        holder.close()
        _stop(worker)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempts == 2  # claimed once by the killed task, once by its redelivery
    assert run.days_done == DAYS and run.progress == 100
    assert _snapshots(model) == reference
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST


def test_a_killed_worker_is_redelivered_after_the_visibility_timeout(broker, postgres, scored_world, tmp_path):
    redis_url = broker
    model, reference = scored_world
    log = tmp_path / "worker.log"
    run = _recompute_through_the_broker(model, redis_url)
    holder = _hold_day_lock(model, run.first_day + timedelta(days=STUCK_AT))
    # 3 s is below the task time limit (a long task would run twice): allowed for this test only.
    env = {"CELERY_VISIBILITY_TIMEOUT": "3", "UNSAFE_SETTINGS_OK": "1"}
    worker = _start_worker(redis_url, log, env)
    second = None
    try:
        _wait(lambda: run.refresh_from_db() or run.days_done == STUCK_AT, 60, "the run to reach the held day", log)
        _stop(worker)  # main process and child at once: nothing is acknowledged or requeued
        holder.close()
        second = _start_worker(redis_url, log, env)
        _wait(lambda: run.refresh_from_db() or not run.is_active, 300, "the redelivered run to finish", log)
    finally:
        holder.close()
        _stop(worker)
        if second is not None:
            _stop(second)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempts == 2
    assert _snapshots(model) == reference


STALL = {"SCORING_STALL_MINUTES": "0.05"}  # 3 s without a recorded day is a stall; beat sweeps every second


def test_a_killed_worker_is_resumed_by_the_stall_sweeper_long_before_the_visibility_timeout(
    broker, postgres, scored_world, tmp_path
):
    redis_url = broker
    model, reference = scored_world
    log = tmp_path / "worker.log"
    run = _recompute_through_the_broker(model, redis_url)
    holder = _hold_day_lock(model, run.first_day + timedelta(days=STUCK_AT))
    worker = _start_worker(redis_url, log)  # the default visibility timeout: an hour
    second = None
    try:
        _wait(lambda: run.refresh_from_db() or run.days_done == STUCK_AT, 60, "the run to reach the held day", log)
        _stop(worker)  # main process and child at once: the message stays unacknowledged for an hour
        holder.close()
        killed_at = time.monotonic()
        second = _start_worker(redis_url, log, STALL, beat=tmp_path / "beat-schedule")
        _wait(lambda: run.refresh_from_db() or not run.is_active, 90, "the sweeper to resume the run", log)
        took = time.monotonic() - killed_at
    finally:
        holder.close()
        _stop(worker)
        if second is not None:
            _stop(second)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert took < 90 < settings.BROKER_VISIBILITY_TIMEOUT
    assert run.attempts == 1 and run.resumes == 1  # claimed once; the sweeper resumed it, not a redelivery
    assert run.days_done == DAYS
    assert _snapshots(model) == reference


def test_the_sweeper_next_to_a_live_but_slow_worker_leaves_the_rows_of_one_clean_run(
    broker, postgres, scored_world, tmp_path
):
    """The worker is alive but held on a day longer than the stall threshold: the sweeper's
    duplicate chunk (on the second pool child) waits for the same day lock, then skips what
    the first one recorded; the rows are those of one clean run."""
    redis_url = broker
    model, reference = scored_world
    log = tmp_path / "worker.log"
    run = _recompute_through_the_broker(model, redis_url)
    holder = _hold_day_lock(model, run.first_day + timedelta(days=STUCK_AT))
    worker = _start_worker(redis_url, log, STALL, concurrency=2, beat=tmp_path / "beat-schedule")
    try:
        _wait(lambda: run.refresh_from_db() or run.days_done == STUCK_AT, 60, "the run to reach the held day", log)
        _wait(lambda: run.refresh_from_db() or run.resumes >= 1, 30, "the sweeper to resume the slow run", log)
        time.sleep(1)  # the duplicate chunk reaches the held day too
        holder.close()
        _wait(lambda: run.refresh_from_db() or not run.is_active, 90, "the run to finish", log)
    finally:
        holder.close()
        _stop(worker)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempts == 1 and 1 <= run.resumes <= settings.SCORING_STALL_MAX_RESUMES
    assert run.days_done == DAYS
    assert _snapshots(model) == reference
