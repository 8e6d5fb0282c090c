"""Celery tasks of the alerts app: thin, take ids, idempotent (see alerts.services).

- `evaluate_run`: after a scoring run succeeds (scoring.signals.run_succeeded), the
  rules on the days it changed;
- `deliver` / `replay`: one delivery, claimed before it is sent;
- `deliver_due` (beat, every minute): retries whose wait was too long for a countdown;
- `send_digests` (beat, hourly): each workspace's digests that are due in its time zone.
"""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from accounts import rls
from accounts.models import Tenant
from scoring.models import ModelStatus, ScoringModel, ScoringRun

from . import digest, services
from .models import Delivery

RETRYABLE = (OperationalError, InterfaceError)
_RETRY = {"autoretry_for": RETRYABLE, "retry_backoff": True, "retry_backoff_max": settings.TASK_RETRY_BACKOFF_MAX,
          "max_retries": 5}


@shared_task(**_RETRY)
def evaluate_run(run_id: int) -> int:
    with rls.task_scope(ScoringRun, run_id):
        return services.evaluate_run(run_id)


@shared_task(**_RETRY)
def deliver(delivery_id: int) -> None:
    with rls.task_scope(Delivery, delivery_id):
        services.deliver(delivery_id)


@shared_task(**_RETRY)
def replay(delivery_id: int) -> None:
    with rls.task_scope(Delivery, delivery_id):
        services.deliver(delivery_id, replay=True)


@shared_task
def deliver_due() -> None:
    for delivery_id in services.deliveries_due():
        deliver.delay(delivery_id)


@shared_task
def send_digests() -> None:
    """Beat entry (hourly): one task per workspace with a published model; each sends what is due in its zone."""
    with rls.bypass("beat: the workspaces with a published model"):
        tenant_ids = list(
            ScoringModel.objects.unscoped().filter(status=ModelStatus.PUBLISHED).values_list("tenant_id", flat=True)
        )
    now = datetime.now().astimezone().isoformat()
    for tenant_id in tenant_ids:
        send_tenant_digests.delay(tenant_id, now)


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_tenant_digests(tenant_id: int, now: str | None = None) -> int:
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return 0
    with rls.session_tenant(tenant):
        return digest.send_due_digests(tenant, datetime.fromisoformat(now) if now else None)
