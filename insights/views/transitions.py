"""Tier transitions: the matrix of moves between two scored days, the people behind each cell, their CSVs."""

from __future__ import annotations

from datetime import timedelta

from django import forms

from scoring.selectors import published_model

from ..queries.common import TIERS, nearest_scored_day, scored_days
from ..queries.transitions import NOT_SEEN, tier_transitions, transition_members
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
        row["pairs"] = [(n, h, tier == row["tier"], tier) for n, h, tier in zip(row["cells"], row["heat"], TIERS,
                                                                                  strict=True)]
    return table


def snapped_days(tenant, data):
    """The published model and the two days, snapped to scored days: `day_to` defaults to the latest,
    `day_from` to 30 days before it. None when nothing is scored."""
    model = published_model(tenant)
    days = scored_days(tenant, model)
    if not days:
        return None
    day_to = nearest_scored_day(days, data.get("day_to") or days[-1])
    day_from = nearest_scored_day(days, data.get("day_from") or day_to - timedelta(days=30))
    return model, day_from, day_to


class Transitions(InsightView):
    form_class = TransitionForm
    template = "insights/transitions.html"

    def query(self, request, data):
        snapped = snapped_days(request.tenant, data)
        if snapped is None:
            return None
        model, day_from, day_to = snapped
        return tier_transitions(request.tenant, day_from=day_from, day_to=day_to, subject=data["subject"],
                                model=model)

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


class MembersForm(TransitionForm):
    """A cell of the matrix: the two days (snapped as the matrix snaps them) and the two tiers."""

    DEFAULTS = {"subject": "users"}
    tier_from = forms.ChoiceField(choices=[(t, t) for t in [*TIERS, NOT_SEEN]], label="Tier on the first day")
    tier_to = forms.ChoiceField(choices=[(t, t) for t in TIERS], label="Tier on the second day")


MEMBERS_SHOWN = 200


class TransitionMembers(InsightView):
    form_class = MembersForm
    template = "insights/transition_members.html"

    def query(self, request, data, limit=None):
        snapped = snapped_days(request.tenant, data)
        if snapped is None:
            return None
        model, day_from, day_to = snapped
        return transition_members(request.tenant, day_from=day_from, day_to=day_to, tier_from=data["tier_from"],
                                  tier_to=data["tier_to"], subject=data["subject"], model=model, limit=limit)

    def context(self, request, form, data):
        result = self.query(request, data, limit=MEMBERS_SHOWN)
        context = {"form": form, "data": data, "result": result, "not_seen": NOT_SEEN}
        if result:
            days = f"subject={data['subject']}&day_from={result.day_from}&day_to={result.day_to}"
            context["matrix_query"] = days
            context["query"] = f"{days}&tier_from={result.tier_from}&tier_to={result.tier_to}"
        return context

    def csv(self, request, data):
        result = self.query(request, data)
        key = "user_id" if data["subject"] == "users" else "group_id"
        header = ["from_day", "to_day", "from_tier", "to_tier", key, "name", "points_from", "points_to"]
        rows = []
        if result:
            for r in result.rows:
                subject = r.subject
                ident = (subject.user_id or subject.anonymous_id) if data["subject"] == "users" else subject.group_id
                name = subject.display_name if data["subject"] == "users" else subject.name
                rows.append([result.day_from, result.day_to, r.tier_from, r.tier_to, ident, name,
                             "" if r.points_from is None else r.points_from, r.points_to])
        return (f"{request.tenant.slug}-moved-{data['tier_from']}-to-{data['tier_to']}.csv".replace(" ", "-"),
                header, rows)


members_page, members_csv = TransitionMembers.views("page", "csv")
