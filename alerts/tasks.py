"""Celery tasks of the alerts app: thin, take ids, idempotent (see alerts.services).

- `evaluate_run`: after a scoring run succeeds (scoring.signals.run_succeeded), the
  rules on the days it changed;
- `deliver` / `replay`: one delivery, claimed before it is sent;
- `deliver_due` (beat, every minute): retries whose wait was too long for a countdown.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from accounts import rls
from scoring.models import ScoringRun

from . import services
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
