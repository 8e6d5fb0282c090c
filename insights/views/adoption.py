"""Feature adoption: share of active end users and accounts per activity; its charts (drawn on the page) and CSV."""

from __future__ import annotations

from django import forms
from django.urls import reverse

from events.models import Activity

from ..charts import adoption_spec, adoption_trend_spec
from ..queries.adoption import adoption_trend, feature_adoption
from .base import InsightView


class AdoptionForm(forms.Form):
    DEFAULTS = {"window": "30"}
    window = forms.TypedChoiceField(choices=[("7", "7 days"), ("30", "30 days"), ("90", "90 days")], coerce=int)


class Adoption(InsightView):
    form_class = AdoptionForm
    template = "insights/adoption.html"

    def query(self, request, data):
        return feature_adoption(request.tenant, window=data["window"])

    def context(self, request, form, data):
        tenant = request.tenant
        result = self.query(request, data)
        context = {"form": form, "result": result, "window": data["window"]}
        if result.active_users:
            # A bar opens its activity in the catalog (its name, description, first and last seen).
            catalog = reverse("events:catalog", args=[tenant.slug])
            activities = list(Activity.objects.for_tenant(tenant).only("public_id", "name", "display_name"))
            public = {a.pk: a.public_id for a in activities}
            names = {a.pk: str(a) for a in activities}
            context["chart"] = adoption_spec(result.rows, [f"{catalog}#activity-{public[r.activity_id]}"
                                                           if r.activity_id in public else None for r in result.rows])
            weeks, series = adoption_trend(tenant)
            context["trend_chart"] = adoption_trend_spec(weeks, {
                names.get(activity_id, str(activity_id)): values
                for activity_id, values in sorted(series.items(), key=lambda item: names.get(item[0], ""))
            }, tenant.today())
        return context

    def csv(self, request, data):
        result = self.query(request, data)
        weeks, series = adoption_trend(request.tenant)
        header = ["activity", "points", "window_days", "users", "user_share", "accounts", "account_share",
                  "user_share_previous_window", *[f"week_{w}" for w in weeks]]
        rows = [[r.name, "" if r.points is None else r.points, result.window, r.users, r.user_share, r.accounts,
                 r.account_share, r.user_share_before, *series.get(r.activity_id, [None] * len(weeks))]
                for r in result.rows]
        return f"{request.tenant.slug}-adoption.csv", header, rows


page, csv = Adoption.views()
