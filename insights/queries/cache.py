"""The insight result cache (docs/insights.md, "Performance")."""

from __future__ import annotations

import functools
import hashlib
import logging

from django.conf import settings
from django.core.cache import cache

from accounts.models import Tenant
from scoring.models import ScoringRun

log = logging.getLogger(__name__)


def cached_insight(func):
    """Keep an insight's result for INSIGHTS_CACHE_SECONDS (0 = off).

    The pages that read the whole rollup cost seconds on a large tenant, and their
    data only moves with new events and scoring runs. The key holds the tenant,
    the arguments, the tenant's day and its latest finished scoring run, so a run
    that finishes shows at once; new events show within the TTL. A cache that is
    down is skipped, never an error.
    """

    def key(tenant: Tenant, **kwargs) -> str:
        latest = (
            ScoringRun.objects.for_tenant(tenant)
            .filter(finished_at__isnull=False)
            .order_by("-finished_at")
            .values_list("pk", "finished_at")
            .first()
        )
        state = (func.__name__, tenant.pk, str(tenant.created_at), tenant.today(), latest, sorted(kwargs.items()))
        return "insight:" + hashlib.sha256(repr(state).encode()).hexdigest()

    @functools.wraps(func)
    def wrapper(tenant: Tenant, **kwargs):
        seconds = settings.INSIGHTS_CACHE_SECONDS
        if seconds <= 0:
            return func(tenant, **kwargs)
        name = key(tenant, **kwargs)
        try:
            hit = cache.get(name)
        except Exception:  # noqa: BLE001 -- a cache outage must not take the page down
            log.warning("insight cache unavailable; computing %s directly", func.__name__, exc_info=True)
            return func(tenant, **kwargs)
        if hit is not None:
            return hit
        value = func(tenant, **kwargs)
        try:
            cache.set(name, value, seconds)
        except Exception:  # noqa: BLE001
            log.warning("insight cache unavailable; %s not kept", func.__name__, exc_info=True)
        return value

    def peek(tenant: Tenant, **kwargs):
        """The cached result, or None (never computes)."""
        try:
            return cache.get(key(tenant, **kwargs))
        except Exception:  # noqa: BLE001
            return None

    wrapper.key = key
    wrapper.peek = peek
    return wrapper
