"""Tier transitions: the matrix of moves between two scored days, and its CSV."""

from __future__ import annotations

from datetime import timedelta

from django import forms

from scoring.selectors import published_model

from ..queries.common import TIERS, nearest_scored_day, scored_days
from ..queries.transitions import tier_transitions
from .base import SUBJECT_CHOICES, InsightView

HEAT_STEPS = 5


class TransitionForm(forms.Form):
    DEFAULTS = {"subject": "users"}
    subject = forms.ChoiceField(choices=SUBJECT_CHOICES)
    day_from = forms.DateField(required=False, label="From")
    day_to = forms.DateField(required=False, label="To")

    def clean(self):
        data = super().clean()
        if data.get("day_from") and data.get("day_to") and data["day_from"] > data["day_to"]:
            raise forms.ValidationError("The first date must come before the second.")
        return data


def _heat(table: list[dict]) -> list[dict]:
    """Add a heat class (0-5) per cell: CSS classes, since the CSP forbids inline styles."""
    top = max((n for row in table for n in row["cells"]), default=0)
    for row in table:
        row["heat"] = [0 if not n or not top else 1 + (HEAT_STEPS - 1) * n // top for n in row["cells"]]
        row["pairs"] = [(n, h, tier == row["tier"]) for n, h, tier in zip(row["cells"], row["heat"], TIERS,
                                                                            strict=True)]
    return table


class Transitions(InsightView):
    form_class = TransitionForm
    template = "insights/transitions.html"

    def query(self, request, data):
        """Dates snap to scored days: `day_to` defaults to the latest, `day_from` to 30 days before it."""
        tenant = request.tenant
        model = published_model(tenant)
        days = scored_days(tenant, model)
        if not days:
            return None
        day_to = nearest_scored_day(days, data.get("day_to") or days[-1])
        day_from = nearest_scored_day(days, data.get("day_from") or day_to - timedelta(days=30))
        return tier_transitions(tenant, day_from=day_from, day_to=day_to, subject=data["subject"], model=model)

    def context(self, request, form, data):
        result = self.query(request, data)
        context = {"form": form, "data": data, "result": result, "tiers": TIERS,
                   "table": _heat(result.table()) if result else []}
        if result:
            context["query"] = f"subject={data['subject']}&day_from={result.day_from}&day_to={result.day_to}"
        return context

    def csv(self, request, data):
        result = self.query(request, data)
        rows = []
        if result:
            rows = [[result.day_from, result.day_to, row["tier"], *row["cells"]] for row in result.table()]
        return f"{request.tenant.slug}-tier-transitions.csv", ["from_day", "to_day", "from_tier", *TIERS], rows


page, csv = Transitions.views("page", "csv")
