"""Insight jobs that are too long for a request on a large workspace."""

from celery import shared_task
from django.core.cache import cache

from accounts.models import Tenant


@shared_task(ignore_result=True, acks_late=True)
def compute_score_truth(tenant_id: int, horizon: int | None) -> None:
    """Compute the Score truth report into the insight cache; the page shows it when it is there.

    Idempotent: the report is a pure function of the history, and a second copy of the task
    only writes the same value under the same key.
    """
    from accounts import rls

    from .views.truth import pending_key, report_for

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return
    # The cache key reads the tenant's latest run, so it too is computed inside the tenant's scope.
    with rls.session_tenant(tenant):
        try:
            report_for(tenant, horizon=horizon)
        finally:
            cache.delete(pending_key(tenant, horizon))


@shared_task(ignore_result=True, acks_late=True)
def refresh_published_verdict(run_id: int | None = None, tenant_id: int | None = None) -> None:
    """The Outcomes headline after scoring run `run_id` succeeded (insights.verdicts), or, given
    `tenant_id`, for a page that found none. Idempotent: it replaces the version's one row."""
    from accounts import rls
    from scoring.models import ScoringRun

    from . import verdicts

    if run_id is not None:
        with rls.task_scope(ScoringRun, run_id):
            verdicts.refresh_after_run(run_id)
        return
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return
    with rls.session_tenant(tenant):
        try:
            verdicts.refresh(tenant)
        finally:
            cache.delete(verdicts.pending_key(tenant))
