"""Celery tasks: thin, take ids, idempotent (see services.run_compute_days).

`score_run` claims a run and computes it, fanning out into a group of day
chunks when it spans more than SCORING_CHUNK_DAYS days. No chord: results are
not stored (CELERY_TASK_IGNORE_RESULT), so each chunk records its days on the
run row and the chunk that records the last day marks the run succeeded.
`resume_stalled_runs` (beat) re-enqueues the missing days of a run whose worker
died, instead of waiting the broker's visibility timeout.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date

from celery import Task, group, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from accounts import rls
from accounts.models import Tenant

from . import services
from .models import ModelStatus, ScoringModel, ScoringRun

# Database hiccups (a restart, a dropped connection, a lock timeout) are worth
# retrying; a bug is not, and ends the run as failed with its message.
RETRYABLE = (OperationalError, InterfaceError)


class ScoringTask(Task):
    autoretry_for = RETRYABLE
    retry_backoff = True
    retry_backoff_max = settings.TASK_RETRY_BACKOFF_MAX  # checked against the visibility timeout
    retry_jitter = True
    max_retries = 5

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        # Called once retries are exhausted (or for a non-retryable error).
        run_id = args[0] if args else kwargs.get("run_id")
        if run_id is not None:
            with rls.task_scope(ScoringRun, run_id):
                services.run_fail(run_id, exc)


@contextmanager
def _failing_ends_the_run(task: Task, run_id: int):
    """Mark the run failed on a bug, or on a database error once retries are exhausted.

    (`on_failure` does the same on a worker; eager mode does not call it.)
    """
    try:
        yield
    except Exception as error:
        if not isinstance(error, RETRYABLE) or task.request.retries >= task.max_retries:
            services.run_fail(run_id, error)
        raise


@shared_task(base=ScoringTask, bind=True)
def score_run(self, run_id: int) -> None:
    # Row-level security: everything the run reads and writes is its tenant's (session-level for
    # the task, as the services open their own transactions; reset when it ends).
    with rls.task_scope(ScoringRun, run_id), _failing_ends_the_run(self, run_id):
        _score_run(run_id)


def _score_run(run_id: int) -> None:
    run = services.run_claim(run_id)
    if run is None:
        return  # already finished: a redelivered message has nothing left to do
    days = services.run_days(run)
    if len(days) <= _chunk_size():
        services.run_compute_days(run_id, days)
        return
    enqueue_days(run_id, days)


def _chunk_size() -> int:
    return max(1, settings.SCORING_CHUNK_DAYS)


def enqueue_days(run_id: int, days: list[date]) -> None:
    """Send `days` of a run as a group of chunks of SCORING_CHUNK_DAYS days."""
    size = _chunk_size()
    chunks = [days[i : i + size] for i in range(0, len(days), size)]
    if chunks:
        group(score_chunk.si(run_id, [d.isoformat() for d in chunk]) for chunk in chunks).apply_async()


@shared_task(base=ScoringTask, bind=True)
def score_chunk(self, run_id: int, days: list[str]) -> None:
    with rls.task_scope(ScoringRun, run_id), _failing_ends_the_run(self, run_id):
        services.run_compute_days(run_id, [date.fromisoformat(d) for d in days])


@shared_task(
    bind=True,
    autoretry_for=RETRYABLE,
    retry_backoff=True,
    retry_backoff_max=settings.TASK_RETRY_BACKOFF_MAX,
    max_retries=5,
)
def refresh_tenant(self, tenant_id: int) -> None:
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is not None:
        with rls.session_tenant(tenant):
            services.refresh_tenant(tenant)


@shared_task
def refresh_all_tenants() -> None:
    """Beat entry: one refresh task per tenant with a published model."""
    # The one cross-tenant read of the app: only tenant ids, each handled apart (so an explicit
    # row-level security bypass).
    with rls.bypass("beat: the tenants with a published model"):
        tenant_ids = list(
            ScoringModel.objects.unscoped().filter(status=ModelStatus.PUBLISHED).values_list("tenant_id", flat=True)
        )
    for tenant_id in tenant_ids:
        refresh_tenant.delay(tenant_id)


@shared_task
def resume_stalled_runs() -> None:
    """Beat entry: re-enqueue the missing days of runs whose worker died (services.runs_resume_stalled)."""
    services.runs_resume_stalled()
