"""Segments: the score distribution per trait value or signup cohort; its charts and CSV."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.urls import reverse

from ..charts import segment_boxes_spec, segment_tiers_spec
from ..queries.common import TIERS
from ..queries.segments import COHORT, segments, trait_keys
from .base import SUBJECT_CHOICES, InsightView


class SegmentForm(forms.Form):
    DEFAULTS = {"subject": "users"}
    subject = forms.ChoiceField(choices=SUBJECT_CHOICES)
    dimension = forms.ChoiceField(required=False, label="Compare by")

    def __init__(self, data, keys: list[str]):
        super().__init__(data)
        self.fields["dimension"].choices = [(COHORT, "Signup cohort (first-seen month)")] + [
            (k, f"Trait: {k}") for k in keys
        ]


class Segments(InsightView):
    form_class = SegmentForm
    template = "insights/segments.html"

    def bind(self, request):
        """The choices are the trait names found on the subject; "plan" (else the cohort) by default."""
        subject = request.GET.get("subject", "users")
        keys = trait_keys(request.tenant, subject if subject in dict(SUBJECT_CHOICES) else "users")
        data = {**SegmentForm.DEFAULTS, **request.GET.dict()}
        if not data.get("dimension"):
            data["dimension"] = "plan" if "plan" in keys else COHORT
        form = SegmentForm(data, keys)
        return form, (form.cleaned_data if form.is_valid() else None)

    def query(self, request, data):
        return segments(request.tenant, dimension=data["dimension"], subject=data["subject"])

    def context(self, request, form, data):
        result = self.query(request, data)
        return {"form": form, "result": result, "tiers": TIERS,
                "tiers_chart": segment_tiers_spec(result.segments, self.rows_link(request, data)),
                "boxes_chart": segment_boxes_spec(result.segments),
                "query": f"subject={data['subject']}&dimension={data['dimension']}"}

    def rows_link(self, request, data):
        """A bar's rows: the list filtered by the segment's trait value and the tier (cohorts have no filter)."""
        if data["dimension"] == COHORT:
            return None
        name = "scoring:users" if data["subject"] == "users" else "scoring:accounts"
        base = reverse(name, args=[request.tenant.slug])

        def link(segment, tier):
            return f"{base}?{urlencode({'trait': data['dimension'], 'trait_value': segment.value, 'tier': tier})}"

        return link

    def csv(self, request, data):
        result = self.query(request, data)
        header = ["segment", "subjects", "with_points", "min", "q1", "median", "q3", "max", "mean",
                  *[f"{t}_share" for t in TIERS]]
        rows = [[s.value, s.subjects, s.scored, s.minimum, s.q1, s.median, s.q3, s.maximum, s.mean,
                 *[s.tiers[t] for t in TIERS]] for s in result.segments]
        return f"{request.tenant.slug}-segments-{data['dimension']}.csv", header, rows


page, csv = Segments.views()
