"""Outcomes: retention h days after a scored day, by tier and by score decile; its charts and CSV."""

from __future__ import annotations

from django import forms

from accounts.models import Role
from scoring.selectors import published_model

from .. import verdicts
from ..charts import outcome_spec
from ..queries.common import THIN, TIERS, nearest_scored_day, scored_days
from ..queries.outcomes import HORIZONS, outcomes
from .base import SUBJECT_CHOICES, InsightView


def published_verdict(tenant) -> tuple[verdicts.StoredVerdict | None, bool]:
    """(the stored verdict of the published version, whether it is being computed).

    Written after each scoring run (insights/verdicts.py). None stored yet: the embedded default
    (eager Celery) computes it here as before; with a broker, a task computes it (enqueued once:
    the pending mark), as the backtest takes up to a minute on a large workspace.
    """
    from django.conf import settings
    from django.core.cache import cache

    from ..tasks import refresh_published_verdict

    model = published_model(tenant)
    if model is None:
        return None, False
    found = verdicts.stored(tenant, model)
    if found is not None:
        return found, False
    if settings.CELERY_TASK_ALWAYS_EAGER:
        verdicts.refresh(tenant)
        return verdicts.stored(tenant, model), False
    try:
        first = cache.add(verdicts.pending_key(tenant), 1, verdicts.PENDING_SECONDS)
    except Exception:  # noqa: BLE001 -- no shared cache: enqueue anyway (the task is idempotent)
        first = True
    if first:
        refresh_published_verdict.delay(tenant_id=tenant.pk)
    return None, True


class OutcomeForm(forms.Form):
    DEFAULTS = {"subject": "users"}
    subject = forms.ChoiceField(choices=SUBJECT_CHOICES)
    day = forms.DateField(required=False, label="Snapshot of")


class Outcomes(InsightView):
    form_class = OutcomeForm
    template = "insights/outcomes.html"

    def query(self, request, data):
        """A chosen day snaps to the latest scored day on or before it; none: the query's default day."""
        tenant = request.tenant
        day = data.get("day")
        if day is not None:
            day = nearest_scored_day(scored_days(tenant, published_model(tenant)), day)
        return outcomes(tenant, day=day, subject=data["subject"])

    def context(self, request, form, data):
        result = self.query(request, data)
        # The headline: over several past days, not this one day's tiers (stored, never computed here).
        truth, truth_pending = (published_verdict(request.tenant) if result.day and data["subject"] == "users"
                                else (None, False))
        accounts = {}
        if data["subject"] == "accounts":
            # The account fit comes with the Score truth report: shown when that report is cached, never
            # computed here (it is the whole fit, seconds on a large tenant; Outcomes stays a cheap read).
            from .truth import account_weights_rows, report_for

            report = report_for.peek(request.tenant, horizon=None)
            accounts = {"report": report, "account_truth_link": report is None,
                        "account_weights": account_weights_rows(report) if report else [],
                        "can_edit": request.membership.can(Role.EDITOR)}
        return accounts | {"form": form, "result": result, "horizons": HORIZONS, "thin": THIN,
                "tier_rows": result.by_tier, "decile_rows": result.by_decile, "tier_names": TIERS,
                "tier_chart": outcome_spec(result.by_tier, HORIZONS),
                "decile_chart": outcome_spec(result.by_decile, HORIZONS, short=True),
                "with_money": result.has_churn or result.has_mrr,
                "verdicts": [v for v in (result.verdict(h) for h in HORIZONS) if v],
                "truth": truth, "truth_pending": truth_pending,
                "query": f"subject={data['subject']}" + (f"&day={result.day}" if result.day else "")}

    def csv(self, request, data):
        result = self.query(request, data)
        header = ["snapshot_day", "grouping", "group", "subjects", *[f"active_{h}d" for h in HORIZONS],
                  *[f"share_active_{h}d" for h in HORIZONS], "with_churn_trait", "churned", "churn_rate", "mrr"]
        rows = []
        for grouping, group_rows in (("tier", result.by_tier), ("decile", result.by_decile)):
            for r in group_rows:
                rows.append([result.day, grouping, r.group, r.subjects, *[r.active[h] for h in HORIZONS],
                             *[r.share(h) for h in HORIZONS], r.with_churn_trait, r.churned, r.churn_rate, r.mrr])
        return f"{request.tenant.slug}-outcomes-{data['subject']}.csv", header, rows


page, csv = Outcomes.views()
