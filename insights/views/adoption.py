"""Feature adoption: share of active end users and accounts per activity; its charts and CSV."""

from __future__ import annotations

from django import forms
from django.views.decorators.http import require_GET

from accounts.scoping import tenant_view

from ..charts import share_bars, weekly_lines
from ..queries.adoption import activity_names, adoption_trend, feature_adoption
from .base import InsightView, svg_response


class AdoptionForm(forms.Form):
    DEFAULTS = {"window": "30"}
    window = forms.TypedChoiceField(choices=[("7", "7 days"), ("30", "30 days"), ("90", "90 days")], coerce=int)


class Adoption(InsightView):
    form_class = AdoptionForm
    template = "insights/adoption.html"

    def query(self, request, data):
        return feature_adoption(request.tenant, window=data["window"])

    def context(self, request, form, data):
        return {"form": form, "result": self.query(request, data), "window": data["window"]}

    def chart(self, request, data):
        result = self.query(request, data)
        rows = list(reversed(result.rows))  # pygal draws horizontal bars bottom-up
        return share_bars(
            f"Share of active end users and accounts per activity, last {result.window} days (%)",
            [r.name for r in rows],
            {"End users": [r.user_share for r in rows], "Accounts": [r.account_share for r in rows]},
        )

    def csv(self, request, data):
        result = self.query(request, data)
        weeks, series = adoption_trend(request.tenant)
        header = ["activity", "points", "window_days", "users", "user_share", "accounts", "account_share",
                  "user_share_previous_window", *[f"week_{w}" for w in weeks]]
        rows = [[r.name, "" if r.points is None else r.points, result.window, r.users, r.user_share, r.accounts,
                 r.account_share, r.user_share_before, *series.get(r.activity_id, [None] * len(weeks))]
                for r in result.rows]
        return f"{request.tenant.slug}-adoption.csv", header, rows


page, svg, csv = Adoption.views()


@tenant_view()
@require_GET
def trend_svg(request):
    """The weekly trend over 12 weeks: it takes no window, so no form."""
    weeks, series = adoption_trend(request.tenant)
    names = activity_names(request.tenant)
    return svg_response(weekly_lines(
        "Weekly share of active end users per activity (%)", weeks,
        {names.get(activity_id, str(activity_id)): values for activity_id, values in sorted(
            series.items(), key=lambda item: names.get(item[0], ""))},
    ))
