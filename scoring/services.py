"""Writes of the scoring app: model versions, publishing, runs and their progress."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import Tenant, User
from events.models import Activity

from . import engine
from .modelfile import parse_model_file
from .models import ActivityWeight, ModelStatus, RunKind, RunStatus, ScoringModel, ScoringRun
from .selectors import published_model
from .signals import run_succeeded

log = logging.getLogger(__name__)

MODEL_FIELDS = (
    "name",
    "window_days",
    "daily_cap",
    "half_life_days",
    "tier_method",
    "tier_high",
    "tier_medium",
    "grace_days",
    "account_rollup",
    "trend_days",
    "falling_drop_pct",
)


# --- Model versions -----------------------------------------------------------------


def _next_version(tenant: Tenant) -> int:
    # Lock the tenant row so two editors creating drafts at once get distinct versions.
    Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
    current = ScoringModel.objects.for_tenant(tenant).aggregate(v=Max("version"))["v"]
    return (current or 0) + 1


def _set_weights(model: ScoringModel, points: dict[int, int]) -> None:
    """Replace the model's weights; `points` maps activity ids (of the model's tenant) to points."""
    ActivityWeight.objects.for_tenant(model.tenant).filter(model=model).delete()
    ActivityWeight.objects.bulk_create(
        ActivityWeight(tenant=model.tenant, model=model, activity_id=activity_id, points=value)
        for activity_id, value in points.items()
    )


def _check_points(tenant: Tenant, points: dict[int, int]) -> None:
    known = set(Activity.objects.for_tenant(tenant).filter(pk__in=points).values_list("pk", flat=True))
    if set(points) - known:
        raise ValidationError("Points can only be given to activities of this workspace's catalog.")
    for value in points.values():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000:
            raise ValidationError("Points per activity are whole numbers from 0 to 1000.")


@transaction.atomic
def scoring_model_create_draft(
    *, tenant: Tenant, created_by: User | None = None, source: ScoringModel | None = None
) -> ScoringModel:
    """A new draft: a copy of `source`, else of the published version, else the starting model."""
    if source is None:
        source = published_model(tenant)
    draft = ScoringModel(tenant=tenant, version=_next_version(tenant), created_by=created_by)
    if source is not None:
        if source.tenant_id != tenant.pk:
            raise ValidationError("That model belongs to another workspace.")
        for field in MODEL_FIELDS:
            setattr(draft, field, getattr(source, field))
    else:
        draft.name = STARTING_MODEL_NAME
    draft.full_clean()
    draft.save()
    if source is not None:
        _set_weights(draft, dict(source.weights.values_list("activity_id", "points")))
    else:
        _set_weights(draft, starting_points(tenant))
    return draft


# The starting model of a workspace that has published nothing (docs/scoring.md, "The starting
# model"): every activity received so far gets STARTING_POINTS, so the first draft is publishable
# and scores reward breadth of use; the team survey's proposal then replaces these points.
STARTING_MODEL_NAME = "Starting model"
STARTING_POINTS = 10


def starting_points(tenant: Tenant) -> dict[int, int]:
    tracked = Activity.objects.for_tenant(tenant).filter(first_seen_at__isnull=False, test_only=False)
    return dict.fromkeys(tracked.values_list("pk", flat=True), STARTING_POINTS)


@transaction.atomic
def scoring_model_update(*, model: ScoringModel, points: dict[int, int] | None = None, **fields: Any) -> ScoringModel:
    """Edit a draft: its settings and (when given) its points per activity id."""
    model = ScoringModel.objects.for_tenant(model.tenant_id).select_for_update().get(pk=model.pk)
    if not model.is_draft:
        raise ValidationError(f"v{model.version} is {model.status} and frozen; create a draft to change it.")
    unknown = set(fields) - set(MODEL_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown model field {sorted(unknown)[0]}.")
    for field, value in fields.items():
        setattr(model, field, value)
    model.full_clean()
    model.save()
    if points is not None:
        _check_points(model.tenant, points)
        _set_weights(model, points)
    return model


@transaction.atomic
def scoring_model_delete_draft(*, model: ScoringModel) -> None:
    if not model.is_draft:
        raise ValidationError("Only drafts can be deleted; published and retired versions stay readable.")
    model.delete()


@transaction.atomic
def scoring_model_import(*, tenant: Tenant, raw: str | bytes | dict, created_by: User | None = None) -> ScoringModel:
    """Import a model file as a new draft. Activities not in the catalog are added as proposed ones."""
    fields = parse_model_file(raw)
    names = fields.pop("points")
    draft = ScoringModel(tenant=tenant, version=_next_version(tenant), created_by=created_by, **fields)
    draft.full_clean()
    draft.save()
    points = {}
    for name, value in names.items():
        # A proposed activity (first_seen_at empty) is how the catalog marks "not tracked yet".
        activity, _ = Activity.objects.get_or_create(tenant=tenant, name=name)
        points[activity.pk] = value
    _set_weights(draft, points)
    return draft


@transaction.atomic
def scoring_model_publish(
    *, model: ScoringModel, published_by: User | None = None, backfill_days: int | None = None
) -> ScoringRun:
    """Make a draft the single published version, freeze it and backfill its snapshots."""
    tenant = model.tenant
    models = {m.pk: m for m in ScoringModel.objects.for_tenant(tenant).select_for_update()}
    model = models[model.pk]
    if not model.is_draft:
        raise ValidationError(f"v{model.version} is already {model.status}.")
    if not model.weights.filter(points__gt=0).exists():
        raise ValidationError("Give at least one activity some points before publishing.")
    ScoringModel.objects.for_tenant(tenant).filter(status=ModelStatus.PUBLISHED).update(status=ModelStatus.RETIRED)
    model.status, model.published_at, model.published_by = ModelStatus.PUBLISHED, timezone.now(), published_by
    model.save(update_fields=["status", "published_at", "published_by"])
    days = backfill_days if backfill_days is not None else settings.SCORING_BACKFILL_DAYS
    today = tenant.today()
    run = run_create(
        model=model,
        kind=RunKind.BACKFILL,
        first_day=today - timedelta(days=days - 1),
        last_day=today,
        requested_by=published_by,
    )
    run_enqueue(run)
    return run


# --- Runs -----------------------------------------------------------------------------


def run_create(
    *, model: ScoringModel, kind: str, first_day: date, last_day: date, requested_by: User | None = None
) -> ScoringRun:
    if last_day < first_day:
        raise ValidationError("The last day comes before the first day.")
    run = ScoringRun(
        tenant=model.tenant, model=model, kind=kind, first_day=first_day, last_day=last_day, requested_by=requested_by
    )
    run.full_clean()
    run.save()
    return run


def run_enqueue(run: ScoringRun) -> None:
    """Send the run to Celery once the transaction that created it has committed.

    robust=True: a broker outage must not turn the committed request into a 500;
    the run stays queued and the next periodic sweep shows it. (Not Celery's
    delay_on_commit: it has no robust, RELIABILITY.md section 3.)
    """
    from .tasks import score_run

    transaction.on_commit(lambda: score_run.delay(run.pk), robust=True)


@transaction.atomic
def recompute_request(*, tenant: Tenant, days: int, requested_by: User | None = None) -> ScoringRun:
    model = published_model(tenant)
    if model is None:
        raise ValidationError("Publish a scoring model first: there is nothing to recompute.")
    if not 1 <= days <= 366:
        raise ValidationError("Recompute between 1 and 366 days.")
    today = tenant.today()
    run = run_create(
        model=model,
        kind=RunKind.RECOMPUTE,
        first_day=today - timedelta(days=days - 1),
        last_day=today,
        requested_by=requested_by,
    )
    run_enqueue(run)
    return run


def run_days(run: ScoringRun) -> list[date]:
    return [run.first_day + timedelta(days=i) for i in range(run.days_total)]


def run_claim(run_id: int) -> ScoringRun | None:
    """Mark a queued (or redelivered running) run as running; None when it already ended."""
    now = timezone.now()
    with transaction.atomic():
        # A task given a run id: the run is what tells the tenant.
        run = ScoringRun.objects.unscoped().select_for_update().select_related("model", "tenant").get(pk=run_id)
        if not run.is_active:
            return None
        fields = run.apply(run.running_fields(run.started_at or now))
        run.progressed_at = now
        run.attempts += 1
        run.save(update_fields=[*fields, "progressed_at", "attempts"])
    return run


def _record_days(run_id: int, rows: dict[date, int]) -> ScoringRun:
    """Record computed days (rows written per day) in the run; the run succeeds with its last day."""
    with transaction.atomic():
        run = ScoringRun.objects.unscoped().select_for_update().get(pk=run_id)
        if run.status == RunStatus.FAILED:
            return run  # another chunk failed the run: it stays as it ended
        for day, count in rows.items():
            run.day_rows[day.isoformat()] = count
        run.progressed_at = timezone.now()
        fields = ["day_rows", "progressed_at"]
        if run.days_done >= run.days_total and run.status != RunStatus.SUCCEEDED:
            fields += run.apply(run.succeeded_fields())
            # Alerts evaluate the run's days once it has committed (alerts.signals).
            transaction.on_commit(lambda: run_succeeded.send(ScoringRun, run_id=run_id), robust=True)
        run.save(update_fields=fields)
    return run


def _ranges(days: list[date]) -> list[list[date]]:
    """`days` (sorted) in parts of at most SCORING_RANGE_DAYS: one transaction each."""
    size = max(1, settings.SCORING_RANGE_DAYS)
    return [days[i : i + size] for i in range(0, len(days), size)]


def run_compute_days(run_id: int, days: Iterable[date], *, on_day=None) -> None:
    """Compute `days` of a run, skipping the days already done, a range of days per transaction.

    A range (at most SCORING_RANGE_DAYS days) is scored in one pass over the rollup
    (engine.compute_days; a lone day by engine.compute_day) and recorded in the same
    transaction, under the locks of its days taken in ascending order: a worker killed
    half-way leaves whole ranges, and a redelivered or resumed chunk (worker killed
    half-way) only computes what is missing. The record is read again once the locks
    are held: a duplicate chunk that waited for a live (slow) worker's days skips them
    instead of computing them twice.
    """
    # A task given a run id: the run is what tells the tenant.
    run = ScoringRun.objects.unscoped().select_related("model__tenant").get(pk=run_id)
    if not run.is_active:
        return
    model = run.model
    missing = sorted(day for day in set(days) if day.isoformat() not in run.day_rows)
    for part in _ranges(missing):
        with transaction.atomic():
            for day in part:
                engine.lock_day(model.tenant_id, day)
            run = ScoringRun.objects.for_tenant(model.tenant_id).only("status", "day_rows").get(pk=run_id)
            if run.status == RunStatus.FAILED:
                return  # a sibling chunk failed: stop instead of growing a failed run's progress
            # Another chunk may have done some of them while this one waited for the locks.
            todo = [day for day in part if day.isoformat() not in run.day_rows]
            if not todo:
                continue
            if len(todo) == 1:
                results = [engine.compute_day(model, todo[0])]
            else:
                results = engine.compute_days(model, todo)
            run = _record_days(run_id, {result.day: result.rows for result in results})
        if run.status == RunStatus.FAILED:
            return
        if on_day is not None:
            for result in results:
                on_day(run, result)


def run_fail(run_id: int, error: BaseException | str) -> None:
    message = str(error) or type(error).__name__
    if isinstance(error, BaseException):
        message = f"{type(error).__name__}: {message}"
    # Given only a run id (a task's failure handler).
    ScoringRun.objects.unscoped().filter(pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
        **ScoringRun.failed_fields(message)
    )


def run_missing_days(run: ScoringRun) -> list[date]:
    return [day for day in run_days(run) if day.isoformat() not in run.day_rows]


def runs_resume_stalled() -> list[int]:
    """Beat: resume running runs with no day recorded for SCORING_STALL_MINUTES.

    A worker killed as a whole (SIGKILL, OOM, lost machine) leaves its task
    unacknowledged, and Redis hands it to another worker only after the visibility
    timeout (an hour by default). This re-enqueues the run's missing days instead.
    Safe with a live but slow worker: days are recorded under the day's lock and a
    duplicate chunk skips a recorded day, so the worst case is a chunk that finds
    nothing to do. Each resume restarts the clock; after SCORING_STALL_MAX_RESUMES
    the run is failed with a message instead of resumed forever. Returns the ids of
    the runs resumed.
    """
    from accounts import rls

    cutoff = timezone.now() - timedelta(minutes=settings.SCORING_STALL_MINUTES)
    # Cross-tenant on purpose (like refresh_all_tenants): only run ids, each then handled in its tenant.
    with rls.bypass("beat: running runs with no progress, across tenants"):
        stalled = list(ScoringRun.objects.unscoped().filter(status=RunStatus.RUNNING, progressed_at__lt=cutoff)
                       .values_list("pk", flat=True))
    resumed = []
    for run_id in stalled:
        with rls.task_scope(ScoringRun, run_id):
            if _resume_if_stalled(run_id, cutoff):
                resumed.append(run_id)
    return resumed


def _resume_if_stalled(run_id: int, cutoff) -> bool:
    from .tasks import enqueue_days

    with transaction.atomic():
        run = ScoringRun.objects.unscoped().select_for_update().filter(pk=run_id).first()
        # Read again under the lock: a day recorded or another sweep since the scan wins.
        if run is None or run.status != RunStatus.RUNNING or (run.progressed_at and run.progressed_at >= cutoff):
            return False
        missing = run_missing_days(run)
        if run.resumes >= settings.SCORING_STALL_MAX_RESUMES:
            minutes = f"{settings.SCORING_STALL_MINUTES:g}"
            run.status, run.finished_at = RunStatus.FAILED, timezone.now()
            run.error = (
                f"Stalled: no day finished for {minutes} minutes after {run.resumes} automatic "
                f"resume(s); {run.days_done} of {run.days_total} days done. Its workers probably keep "
                "dying on it (memory, time limit): see the worker logs, then recompute."
            )
            run.save(update_fields=["status", "finished_at", "error"])
            log.warning("scoring run %s failed: stalled after %s resumes", run.pk, run.resumes)
            return False
        run.resumes += 1
        run.progressed_at = timezone.now()
        run.save(update_fields=["resumes", "progressed_at"])
        log.warning("scoring run %s stalled: re-enqueueing %s missing day(s)", run.pk, len(missing))
        # robust: a broker still down leaves the run stalled; the next sweep tries again.
        # robust (so not delay_on_commit): a broker outage must not fail the sweep for the other runs.
        transaction.on_commit(lambda: enqueue_days(run_id, missing), robust=True)
    return True


def run_in_foreground(run: ScoringRun, *, on_day=None) -> ScoringRun:
    """Compute a run in this process (the `score` command): same service, no broker."""
    claimed = run_claim(run.pk)
    if claimed is None:
        return run
    try:
        run_compute_days(run.pk, run_days(claimed), on_day=on_day)
    except Exception as error:
        run_fail(run.pk, error)
        raise
    run.refresh_from_db()
    return run


# --- Periodic refresh ----------------------------------------------------------------------


def refresh_tenant(tenant: Tenant) -> list[ScoringRun]:
    """Refresh today and, once the tenant's day has ended, finalize yesterday (once)."""
    model = published_model(tenant)
    if model is None:
        return []
    runs = []
    today = tenant.today()
    yesterday = today - timedelta(days=1)
    with transaction.atomic():
        finalized = ScoringRun.objects.for_tenant(tenant).filter(
            model=model, kind=RunKind.FINALIZE, first_day=yesterday, status__in=[RunStatus.SUCCEEDED, *ACTIVE]
        )
        if not finalized.exists():
            runs.append(run_create(model=model, kind=RunKind.FINALIZE, first_day=yesterday, last_day=yesterday))
        pending = ScoringRun.objects.for_tenant(tenant).filter(
            model=model, kind=RunKind.REFRESH, last_day=today, status=RunStatus.QUEUED
        )
        # A refresh still waiting in the queue will see the newest rollup anyway.
        if not pending.exists():
            runs.append(run_create(model=model, kind=RunKind.REFRESH, first_day=today, last_day=today))
        for run in runs:
            run_enqueue(run)
    return runs


ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)
