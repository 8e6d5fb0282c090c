"""Growth accounting: new, retained, resurrected and churned per period; its chart and CSV."""

from __future__ import annotations

from django import forms

from scoring.selectors import published_model

from ..charts import growth_spec
from ..queries.growth import growth_accounting
from .base import SUBJECT_CHOICES, InsightView

PERIOD_CHOICES = [("week", "Weekly"), ("month", "Monthly")]
MEASURES = ("active", "engaged")


class GrowthForm(forms.Form):
    DEFAULTS = {"subject": "users", "period": "week", "measure": "active"}
    subject = forms.ChoiceField(choices=SUBJECT_CHOICES)
    period = forms.ChoiceField(choices=PERIOD_CHOICES)
    measure = forms.ChoiceField(choices=[("active", "Active"), ("engaged", "Engaged")], required=False)


class Growth(InsightView):
    form_class = GrowthForm
    template = "insights/growth.html"

    def query(self, request, data, measure: str):
        return growth_accounting(request.tenant, subject=data["subject"], measure=measure, period=data["period"])

    def context(self, request, form, data):
        # The page shows both measures; `measure` only picks the chart's.
        sections = [self.query(request, data, measure) for measure in MEASURES]
        for section in sections:
            section.chart = growth_spec(section.rows)
        return {
            "form": form,
            "data": data,
            "model": published_model(request.tenant),
            "sections": sections,
            "query": f"subject={data['subject']}&period={data['period']}",
        }

    def csv(self, request, data):
        rows = []
        for measure in MEASURES:
            for r in self.query(request, data, measure).rows:
                if r.pending:  # no scored day in the period yet: blanks, not zeros
                    rows.append([measure, data["subject"], data["period"], r.start, *[""] * 6, "yes"])
                    continue
                rows.append([measure, data["subject"], data["period"], r.start, r.active, r.new, r.retained,
                             r.resurrected, r.churned, "" if r.quick_ratio is None else r.quick_ratio,
                             "yes" if r.partial else "no"])
        header = ["measure", "subject", "period", "period_start", "active", "new", "retained", "resurrected",
                  "churned", "quick_ratio", "partial"]
        return f"{request.tenant.slug}-growth-{data['subject']}-{data['period']}.csv", header, rows


page, csv = Growth.views()
