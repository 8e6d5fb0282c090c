"""Pages that give the score context: the dashboard (tenant home) and the insight pages.

Thin: every number comes from `scoring.insights` (set-based SQL) or
`scoring.onboarding`; charts are pygal SVGs served as separate image responses
(`scoring.insight_charts`) and every chart's numbers are a table or a CSV.
All pages are viewer reads wrapped in `accounts.scoping.tenant_view`.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accounts.scoping import tenant_view
from core.csv_export import csv_response
from scoring import selectors

from . import charts as insight_charts
from . import onboarding
from . import queries as insights

SUBJECT_CHOICES = [("users", "End users"), ("accounts", "Customer accounts")]
PERIOD_CHOICES = [("week", "Weekly"), ("month", "Monthly")]


# --- Small helpers ------------------------------------------------------------------------------------


def _svg(content: bytes) -> HttpResponse:
    return HttpResponse(content, content_type="image/svg+xml")


def _csv(filename: str, header: list[str], rows) -> HttpResponse:
    """A small CSV (tens of rows: aggregates, never raw events), formula-safe."""
    return csv_response(filename, header, rows)


def _bad_request(form) -> HttpResponse:
    text = " ".join(f"{field}: {error}" for field, errors in form.errors.items() for error in errors)
    return HttpResponse(text, status=400, content_type="text/plain; charset=utf-8")


def _form(form_class, request):
    """Bind the query string over the defaults; (form, cleaned data or None when invalid)."""
    data = {**form_class.DEFAULTS, **request.GET.dict()}
    form = form_class(data)
    return form, (form.cleaned_data if form.is_valid() else None)


# --- Dashboard (tenant home) -----------------------------------------------------------------------


def _dashboard_context(request) -> dict:
    tenant = request.tenant
    model = selectors.published_model(tenant)
    series = selectors.product_series(tenant)
    published_rows = [r for r in series if model is not None and r.model_id == model.pk]
    latest = published_rows[-1] if published_rows else None
    day = latest.day if latest else None
    earlier = None
    if latest is not None:
        wanted = day - timedelta(days=30)
        earlier = next((r for r in reversed(published_rows) if r.day <= wanted), None)
    checklist = onboarding.checklist(tenant)
    context = {
        "model": model,
        "latest": latest,
        "day": day,
        "earlier": earlier,
        "marks": selectors.version_changes(series),
        "has_series": bool(series),
        "checklist": checklist,
        "show_checklist": onboarding.is_visible(request.session, tenant, checklist),
        "last_run": insights.last_run(tenant),
        "tiers": insights.tier_change(latest, earlier),
    }
    if day is not None:
        context["user_movers"] = insights.movers(tenant, subject="users", day=day, model=model)
        context["account_movers"] = insights.movers(tenant, subject="accounts", day=day, model=model)
        context["at_risk"] = insights.at_risk_accounts(tenant, day=day, model=model)
        context["power"] = insights.power_users(tenant, day=day, model=model)
    return context


@tenant_view()
@require_GET
def dashboard(request):
    return render(request, "insights/dashboard.html", _dashboard_context(request))


@tenant_view()
@require_GET
def product_chart(request):
    series = selectors.product_series(request.tenant)
    return _svg(insight_charts.daily_lines(
        f"{request.tenant.product_name}: product score per day",
        [r.day for r in series],
        {"Total points": [r.total_points for r in series]},
        selectors.version_changes(series),
        secondary={"Mean points per active user (right axis)": [r.mean_points for r in series]},
        colors=("#3b5bdb", "#f59f00"),
    ))


@tenant_view()
@require_GET
def users_chart(request):
    series = selectors.product_series(request.tenant)
    return _svg(insight_charts.daily_lines(
        "Active and engaged end users per day",
        [r.day for r in series],
        {"Active (points in the window)": [r.active_users for r in series],
         "Engaged (tier high or medium)": [r.engaged_users for r in series]},
        selectors.version_changes(series),
        colors=("#3b5bdb", "#2b8a3e"),
    ))


def _tier_rows(tenant):
    model = selectors.published_model(tenant)
    rows = [r for r in selectors.product_series(tenant) if model is not None and r.model_id == model.pk]
    latest = rows[-1] if rows else None
    earlier = None
    if latest is not None:
        earlier = next((r for r in reversed(rows) if r.day <= latest.day - timedelta(days=30)), None)
    return insights.tier_change(latest, earlier)


@tenant_view()
@require_GET
def tiers_chart(request):
    return _svg(insight_charts.tier_bars("End users per tier: latest day and 30 days earlier",
                                         _tier_rows(request.tenant)))


# --- Onboarding -------------------------------------------------------------------------------------------


@never_cache
@tenant_view()
@require_http_methods(["GET", "POST"])
def onboarding_page(request):
    """The checklist, always shown here; POST show/hide decides whether the dashboard shows it."""
    tenant = request.tenant
    if request.method == "POST":
        onboarding.set_visible(request.session, tenant, request.POST.get("action") == "show")
        return redirect("tenant_home", tenant_slug=tenant.slug)
    checklist = onboarding.checklist(tenant)
    context = {"checklist": checklist, "show_checklist": onboarding.is_visible(request.session, tenant, checklist)}
    return render(request, "insights/onboarding.html", context)


@never_cache
@tenant_view()
@require_GET
def onboarding_status(request):
    """Polled by static/js/onboarding.js so "first event received" ticks itself live."""
    return JsonResponse(onboarding.checklist(request.tenant).as_dict())


# --- Growth accounting -------------------------------------------------------------------------------------


class GrowthForm(forms.Form):
    DEFAULTS = {"subject": "users", "period": "week", "measure": "active"}
    subject = forms.ChoiceField(choices=SUBJECT_CHOICES)
    period = forms.ChoiceField(choices=PERIOD_CHOICES)
    measure = forms.ChoiceField(choices=[("active", "Active"), ("engaged", "Engaged")], required=False)


def _growth(request, data, measure):
    return insights.growth_accounting(request.tenant, subject=data["subject"], measure=measure,
                                      period=data["period"])


@tenant_view()
@require_GET
def growth(request):
    form, data = _form(GrowthForm, request)
    if data is None:
        return render(request, "insights/growth.html", {"form": form}, status=400)
    context = {
        "form": form,
        "data": data,
        "model": selectors.published_model(request.tenant),
        "sections": [_growth(request, data, "active"), _growth(request, data, "engaged")],
        "query": f"subject={data['subject']}&period={data['period']}",
    }
    return render(request, "insights/growth.html", context)


@tenant_view()
@require_GET
def growth_chart(request):
    form, data = _form(GrowthForm, request)
    if data is None:
        return _bad_request(form)
    result = _growth(request, data, data["measure"] or "active")
    subject = "end users" if data["subject"] == "users" else "accounts"
    title = f"{data['measure'] or 'active'} {subject}: new, resurrected, retained and churned per {data['period']}"
    return _svg(insight_charts.growth_bars(title.capitalize(), result.rows))


@tenant_view()
@require_GET
def growth_csv(request):
    form, data = _form(GrowthForm, request)
    if data is None:
        return _bad_request(form)
    rows = []
    for measure in ("active", "engaged"):
        for r in _growth(request, data, measure).rows:
            rows.append([measure, data["subject"], data["period"], r.start, r.active, r.new, r.retained,
                         r.resurrected, r.churned, "" if r.quick_ratio is None else r.quick_ratio,
                         "yes" if r.partial else "no"])
    header = ["measure", "subject", "period", "period_start", "active", "new", "retained", "resurrected", "churned",
              "quick_ratio", "partial"]
    return _csv(f"{request.tenant.slug}-growth-{data['subject']}-{data['period']}.csv", header, rows)


# --- Tier transitions ------------------------------------------------------------------------------------


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


def _transitions(request, data):
    tenant = request.tenant
    model = selectors.published_model(tenant)
    days = insights.scored_days(tenant, model)
    if not days:
        return None
    day_to = insights.nearest_scored_day(days, data.get("day_to") or days[-1])
    day_from = insights.nearest_scored_day(days, data.get("day_from") or day_to - timedelta(days=30))
    return insights.tier_transitions(tenant, day_from=day_from, day_to=day_to, subject=data["subject"], model=model)


HEAT_STEPS = 5


def _heat(table: list[dict]) -> list[dict]:
    """Add a heat class (0-5) per cell: CSS classes, since the CSP forbids inline styles."""
    top = max((n for row in table for n in row["cells"]), default=0)
    for row in table:
        row["heat"] = [0 if not n or not top else 1 + (HEAT_STEPS - 1) * n // top for n in row["cells"]]
        row["pairs"] = [(n, h, tier == row["tier"]) for n, h, tier in zip(row["cells"], row["heat"], insights.TIERS,
                                                                            strict=True)]
    return table


@tenant_view()
@require_GET
def transitions(request):
    form, data = _form(TransitionForm, request)
    if data is None:
        return render(request, "insights/transitions.html", {"form": form}, status=400)
    result = _transitions(request, data)
    context = {"form": form, "data": data, "result": result, "tiers": insights.TIERS,
               "table": _heat(result.table()) if result else []}
    if result:
        context["query"] = f"subject={data['subject']}&day_from={result.day_from}&day_to={result.day_to}"
    return render(request, "insights/transitions.html", context)


@tenant_view()
@require_GET
def transitions_csv(request):
    form, data = _form(TransitionForm, request)
    if data is None:
        return _bad_request(form)
    result = _transitions(request, data)
    rows = []
    if result:
        rows = [[result.day_from, result.day_to, row["tier"], *row["cells"]] for row in result.table()]
    return _csv(f"{request.tenant.slug}-tier-transitions.csv", ["from_day", "to_day", "from_tier", *insights.TIERS],
                rows)


# --- Feature adoption ------------------------------------------------------------------------------------


class AdoptionForm(forms.Form):
    DEFAULTS = {"window": "30"}
    window = forms.TypedChoiceField(choices=[("7", "7 days"), ("30", "30 days"), ("90", "90 days")], coerce=int)


@tenant_view()
@require_GET
def adoption(request):
    form, data = _form(AdoptionForm, request)
    if data is None:
        return render(request, "insights/adoption.html", {"form": form}, status=400)
    result = insights.feature_adoption(request.tenant, window=data["window"])
    return render(request, "insights/adoption.html", {"form": form, "result": result, "window": data["window"]})


@tenant_view()
@require_GET
def adoption_chart(request):
    form, data = _form(AdoptionForm, request)
    if data is None:
        return _bad_request(form)
    result = insights.feature_adoption(request.tenant, window=data["window"])
    rows = list(reversed(result.rows))  # pygal draws horizontal bars bottom-up
    return _svg(insight_charts.share_bars(
        f"Share of active end users and accounts per activity, last {result.window} days (%)",
        [r.name for r in rows],
        {"End users": [r.user_share for r in rows], "Accounts": [r.account_share for r in rows]},
    ))


@tenant_view()
@require_GET
def adoption_trend_chart(request):
    weeks, series = insights.adoption_trend(request.tenant)
    names = _activity_names(request.tenant)
    return _svg(insight_charts.weekly_lines(
        "Weekly share of active end users per activity (%)", weeks,
        {names.get(activity_id, str(activity_id)): values for activity_id, values in sorted(
            series.items(), key=lambda item: names.get(item[0], ""))},
    ))


def _activity_names(tenant) -> dict[int, str]:
    from events.models import Activity

    return {a.pk: str(a) for a in Activity.objects.for_tenant(tenant).only("name", "display_name")}


@tenant_view()
@require_GET
def adoption_csv(request):
    form, data = _form(AdoptionForm, request)
    if data is None:
        return _bad_request(form)
    result = insights.feature_adoption(request.tenant, window=data["window"])
    weeks, series = insights.adoption_trend(request.tenant)
    header = ["activity", "points", "window_days", "users", "user_share", "accounts", "account_share",
              "user_share_previous_window", *[f"week_{w}" for w in weeks]]
    rows = [[r.name, "" if r.points is None else r.points, result.window, r.users, r.user_share, r.accounts,
             r.account_share, r.user_share_before, *series.get(r.activity_id, [None] * len(weeks))]
            for r in result.rows]
    return _csv(f"{request.tenant.slug}-adoption.csv", header, rows)


# --- Segments ------------------------------------------------------------------------------------------


class SegmentForm(forms.Form):
    DEFAULTS = {"subject": "users"}
    subject = forms.ChoiceField(choices=SUBJECT_CHOICES)
    dimension = forms.ChoiceField(required=False, label="Compare by")

    def __init__(self, data, keys: list[str]):
        super().__init__(data)
        self.fields["dimension"].choices = [(insights.COHORT, "Signup cohort (first-seen month)")] + [
            (k, f"Trait: {k}") for k in keys
        ]


def _segment_form(request):
    subject = request.GET.get("subject", "users")
    keys = insights.trait_keys(request.tenant, subject if subject in dict(SUBJECT_CHOICES) else "users")
    data = {**SegmentForm.DEFAULTS, **request.GET.dict()}
    if not data.get("dimension"):
        data["dimension"] = "plan" if "plan" in keys else insights.COHORT
    form = SegmentForm(data, keys)
    return form, (form.cleaned_data if form.is_valid() else None)


@tenant_view()
@require_GET
def segments(request):
    form, data = _segment_form(request)
    if data is None:
        return render(request, "insights/segments.html", {"form": form}, status=400)
    result = insights.segments(request.tenant, dimension=data["dimension"], subject=data["subject"])
    context = {"form": form, "result": result, "tiers": insights.TIERS,
               "query": f"subject={data['subject']}&dimension={data['dimension']}"}
    return render(request, "insights/segments.html", context)


@tenant_view()
@require_GET
def segments_chart(request):
    form, data = _segment_form(request)
    if data is None:
        return _bad_request(form)
    result = insights.segments(request.tenant, dimension=data["dimension"], subject=data["subject"])
    if request.GET.get("view") == "tiers":
        return _svg(insight_charts.tier_share_bars(
            "Tier shares per segment (%)", [s.value for s in result.segments], [s.tiers for s in result.segments]
        ))
    return _svg(insight_charts.boxes("Points per segment: min, quartiles, max (subjects with points)",
                                     result.segments))


@tenant_view()
@require_GET
def segments_csv(request):
    form, data = _segment_form(request)
    if data is None:
        return _bad_request(form)
    result = insights.segments(request.tenant, dimension=data["dimension"], subject=data["subject"])
    header = ["segment", "subjects", "with_points", "min", "q1", "median", "q3", "max", "mean",
              *[f"{t}_share" for t in insights.TIERS]]
    rows = [[s.value, s.subjects, s.scored, s.minimum, s.q1, s.median, s.q3, s.maximum, s.mean,
             *[s.tiers[t] for t in insights.TIERS]] for s in result.segments]
    return _csv(f"{request.tenant.slug}-segments-{data['dimension']}.csv", header, rows)


# --- Outcomes -------------------------------------------------------------------------------------------


class OutcomeForm(forms.Form):
    DEFAULTS = {"subject": "users"}
    subject = forms.ChoiceField(choices=SUBJECT_CHOICES)
    day = forms.DateField(required=False, label="Snapshot of")


def _outcomes(request, data):
    tenant = request.tenant
    day = data.get("day")
    if day is not None:
        days = insights.scored_days(tenant, selectors.published_model(tenant))
        day = insights.nearest_scored_day(days, day)
    return insights.outcomes(tenant, day=day, subject=data["subject"])


@tenant_view()
@require_GET
def outcomes(request):
    form, data = _form(OutcomeForm, request)
    if data is None:
        return render(request, "insights/outcomes.html", {"form": form}, status=400)
    result = _outcomes(request, data)
    context = {"form": form, "result": result, "horizons": insights.HORIZONS, "thin": insights.THIN,
               "tier_rows": result.by_tier, "decile_rows": result.by_decile, "tier_names": insights.TIERS,
               "with_money": result.has_churn or result.has_mrr,
               "verdicts": [v for v in (result.verdict(h) for h in insights.HORIZONS) if v],
               "query": f"subject={data['subject']}" + (f"&day={result.day}" if result.day else "")}
    return render(request, "insights/outcomes.html", context)


@tenant_view()
@require_GET
def outcomes_chart(request):
    form, data = _form(OutcomeForm, request)
    if data is None:
        return _bad_request(form)
    result = _outcomes(request, data)
    rows = result.by_decile if request.GET.get("view") == "deciles" else result.by_tier
    return _svg(insight_charts.share_bars(
        f"Share still active 30 and 60 days after {result.day or 'the snapshot'} (%)",
        [f"{r.group} (n={r.subjects})" for r in rows],
        {f"{h} days later": [r.share(h) for r in rows] for h in insights.HORIZONS},
        horizontal=False,
    ))


@tenant_view()
@require_GET
def outcomes_csv(request):
    form, data = _form(OutcomeForm, request)
    if data is None:
        return _bad_request(form)
    result = _outcomes(request, data)
    header = ["snapshot_day", "grouping", "group", "subjects", *[f"active_{h}d" for h in insights.HORIZONS],
              *[f"share_active_{h}d" for h in insights.HORIZONS], "with_churn_trait", "churned", "churn_rate", "mrr"]
    rows = []
    for grouping, group_rows in (("tier", result.by_tier), ("decile", result.by_decile)):
        for r in group_rows:
            rows.append([result.day, grouping, r.group, r.subjects, *[r.active[h] for h in insights.HORIZONS],
                         *[r.share(h) for h in insights.HORIZONS], r.with_churn_trait, r.churned, r.churn_rate,
                         r.mrr])
    return _csv(f"{request.tenant.slug}-outcomes-{data['subject']}.csv", header, rows)
