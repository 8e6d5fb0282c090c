"""Celery tasks of the alerts app: thin, take ids (docs/alerts.md)."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from accounts import rls
from accounts.models import Tenant
from scoring.models import ModelStatus, ScoringModel

from . import digest


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
