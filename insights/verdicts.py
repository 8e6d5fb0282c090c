"""The Outcomes page's headline, stored: the published version's backtest over past days.

`truth.published_backtest` reads the history and scores past days (47 s p95 at
100,000 end users, docs/benchmarks.md), so it runs after a scoring run succeeds
(`insights.tasks.refresh_published_verdict`, connected in insights/apps.py), and
the page reads the row (docs/insights.md, "Outcomes").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.utils import timezone

from accounts.models import Tenant
from scoring.models import RunKind, ScoringModel, ScoringRun
from scoring.selectors import published_model

from . import truth
from .models import PublishedVerdict

# The periodic runs score today (refresh) and yesterday (finalize), never a day the backtest judges
# (those lie at least the shortest horizon back): a verdict computed today stays true for them.
PENDING_SECONDS = 600


@dataclass
class StoredVerdict:
    """What templates/insights/outcomes.html shows as `truth`."""

    verdict: dict  # level, headline, warnings
    horizon: int
    days: list[dict]  # day (a date), auc
    as_of: date
    current: bool  # computed on the tenant's today


def payload(bt: truth.Backtest) -> dict:
    return {"verdict": {"level": bt.verdict.level, "headline": bt.verdict.headline,
                        "warnings": list(bt.verdict.warnings)},
            "horizon": bt.horizon,
            "days": [{"day": d.day.isoformat(), "auc": d.auc} for d in bt.days]}


def pending_key(tenant: Tenant) -> str:
    """Set while a task computes the tenant's verdict for a page that found none (enqueued once)."""
    return f"pending:published-verdict:{tenant.pk}"


def refresh(tenant: Tenant) -> PublishedVerdict | None:
    """Compute the published version's verdict and replace its row (None: nothing is published)."""
    bt = truth.published_backtest(tenant)
    if bt is None:
        return None
    row, _ = PublishedVerdict.objects.for_tenant(tenant).update_or_create(
        model=bt.model, defaults={"tenant": tenant, "as_of": tenant.today(), "computed_at": timezone.now(),
                               "payload": payload(bt)})
    return row


def refresh_after_run(run_id: int) -> PublishedVerdict | None:
    """After a succeeded run: refresh unless it was a periodic run of a day the verdict was computed on
    already (at most once a tenant day), or the run scored a version that is not the published one."""
    run = ScoringRun.objects.unscoped().select_related("tenant").filter(pk=run_id).first()
    if run is None:
        return None
    tenant = run.tenant
    model = published_model(tenant)
    if model is None or model.pk != run.model_id:
        return None
    stored_rows = PublishedVerdict.objects.for_tenant(tenant).filter(model=model)
    if run.kind == RunKind.REFRESH and stored_rows.filter(as_of=tenant.today()).exists():
        return None
    # A finalize comes with the day's first refresh (scoring.services.refresh_tenant), which
    # recomputes a verdict of an earlier day: one computation, not two racing ones.
    if run.kind == RunKind.FINALIZE and stored_rows.exists():
        return None
    return refresh(tenant)


def stored(tenant: Tenant, model: ScoringModel) -> StoredVerdict | None:
    row = PublishedVerdict.objects.for_tenant(tenant).filter(model=model).first()
    if row is None:
        return None
    data = row.payload
    days = [{"day": date.fromisoformat(d["day"]), "auc": d["auc"]} for d in data["days"]]
    return StoredVerdict(verdict=data["verdict"], horizon=data["horizon"], days=days, as_of=row.as_of,
                         current=row.as_of >= tenant.today())
