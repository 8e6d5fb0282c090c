"""Which days of the published version have their aggregates (insights/aggregates.py) for a page to read.

A page reads the aggregates only when every day it needs is covered, or lies
before the first covered day with no rollup before it (nothing happened then,
so the zero is true). Otherwise it computes on the fly as before: a missing
day is never shown as a zero (installs older than the aggregates, a gap in
the scoring runs; `manage.py aggregate_insights` fills them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from accounts.models import Tenant
from events.models import DailyActivityCount
from scoring.models import ProductScore, ScoringModel
from scoring.selectors import published_model

from ..models import AggregatedDay


@dataclass
class Coverage:
    tenant: Tenant
    model: ScoringModel
    days: set[date]
    as_of: date  # the latest covered day on or before the tenant's today: what the page shows

    def complete(self, needed: Iterable[date], *, from_snapshots: bool = False) -> bool:
        """Every day in `needed` is aggregated, or comes before the first aggregated day with nothing
        then to count: no rollup (or, `from_snapshots`, no scored day of the version: engaged growth)."""
        missing = [d for d in needed if d not in self.days]
        if not missing:
            return True
        first = min(self.days)
        if any(d > first for d in missing):
            return False
        if from_snapshots:
            return not ProductScore.objects.for_tenant(self.tenant).filter(model=self.model, day__lt=first).exists()
        return not DailyActivityCount.objects.for_tenant(self.tenant).filter(day__lt=first).exists()


def coverage(tenant: Tenant, since: date | None = None) -> Coverage | None:
    """The published version's aggregated days (from `since`), or None when there are none to read."""
    model = published_model(tenant)
    if model is None:
        return None
    today = tenant.today()
    query = AggregatedDay.objects.for_tenant(tenant).filter(model=model, day__lte=today)
    if since is not None:
        # The first covered day overall still decides what "before the aggregates" means.
        first = query.order_by("day").values_list("day", flat=True).first()
        query = query.filter(day__gte=since)
        days = set(query.values_list("day", flat=True)) | ({first} if first else set())
    else:
        days = set(query.values_list("day", flat=True))
    if not days:
        return None
    return Coverage(tenant=tenant, model=model, days=days, as_of=max(days))
