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
