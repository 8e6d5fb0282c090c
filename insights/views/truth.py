"""Score truth pages: the honest verdict, retention by activity, fitted weights and backtests.

Thin views over insights.truth; the numbers are defined in docs/scoring.md ("Score truth").
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Role
from accounts.scoping import get_tenant_object, tenant_view
from core.csv_export import csv_download, csv_response
from insights import charts, truth
from insights.queries.cache import cached_insight
from scoring import services as scoring_services
from scoring.models import AccountRollup, ScoringModel, TierMethod
from scoring.selectors import published_model

HORIZON_CHOICES = [("", "Longest with enough history")] + [(str(h), f"{h} days later") for h in truth.HORIZONS]


class TruthForm(forms.Form):
    horizon = forms.TypedChoiceField(choices=HORIZON_CHOICES, coerce=int, required=False, empty_value=None,
                                     label="Still active")


class DraftFromFitForm(TruthForm):
    survey_share = forms.IntegerField(min_value=0, max_value=100, initial=0, label="Survey's share (%)")
    subject = forms.ChoiceField(choices=[("users", "users"), ("accounts", "accounts")], required=False,
                                label="Fitted on")


report_for = cached_insight(truth.score_truth)
PENDING_SECONDS = 600


def pending_key(tenant, horizon: int | None) -> str:
    return "pending:" + report_for.key(tenant, horizon=horizon)


def report_or_pending(tenant, horizon: int | None):
    """The report, or None while a worker computes it.

    At 100,000 end users a report takes 30-60 s (docs/benchmarks.md), longer than a request
    should: with a real broker and the insight cache on, a cold page enqueues
    `insights.tasks.compute_score_truth` (once: the pending mark) and says it is computing; the
    embedded default (eager Celery) and a disabled cache compute in the request as before.
    """
    from django.conf import settings
    from django.core.cache import cache

    from insights.tasks import compute_score_truth

    if settings.INSIGHTS_CACHE_SECONDS <= 0 or settings.CELERY_TASK_ALWAYS_EAGER:
        return report_for(tenant, horizon=horizon)
    hit = report_for.peek(tenant, horizon=horizon)
    if hit is not None:
        return hit
    try:
        first = cache.add(pending_key(tenant, horizon), 1, PENDING_SECONDS)
    except Exception:  # noqa: BLE001 -- no shared cache: compute here rather than never
        return report_for(tenant, horizon=horizon)
    if first:
        compute_score_truth.delay(tenant.pk, horizon)
    return None


def version_key(model: ScoringModel) -> str:
    """What a backtest of `model` depends on besides the data: its settings and points (a draft changes)."""
    import hashlib

    from scoring.services import MODEL_FIELDS

    weights = sorted(model.weights.filter(points__gt=0).values_list("activity_id", "points"))
    published = published_model(model.tenant)
    state = ([getattr(model, f) for f in MODEL_FIELDS], weights, published.pk if published else None)
    return hashlib.sha256(repr(state).encode()).hexdigest()


@cached_insight
def backtest_for(tenant, *, model_id: int, horizon: int | None, version: str):
    """A version against the published one and the survey's proposal, on the same past days."""
    model = ScoringModel.objects.for_tenant(tenant).get(pk=model_id)
    history = truth.load_history(tenant)
    if horizon is None:
        horizon = truth.backtest_horizon(history, model.window_days)
    result = {"horizon": horizon, "columns": []}
    bt = truth.backtest(model, horizon=horizon, history=history)
    bt.drop_rows()
    result["readiness"] = bt.readiness
    result["days"] = [d.day for d in bt.days]
    result["columns"].append((f"{model} ({model.get_status_display().lower()})", bt))
    days = [d.day for d in bt.days]
    if not days:
        return result
    published = published_model(tenant)
    if published is not None and published.pk != model.pk:
        other = truth.backtest(published, horizon=horizon, days=days, history=history)
        other.drop_rows()
        result["columns"].append((f"Published {published}", other))
    survey = truth.latest_survey_view(tenant)
    if survey is not None and survey.points:
        other = truth.backtest_points(tenant, survey.points, settings_from=published, horizon=horizon, days=days,
                                      history=history)
        other.drop_rows()
        result["columns"].append(("Survey proposal", other))
    return result


def _bad_horizon(form) -> HttpResponse:
    return HttpResponse("horizon: " + " ".join(form.errors.get("horizon", [])), status=400,
                        content_type="text/plain; charset=utf-8")


def _still_computing() -> HttpResponse:
    response = HttpResponse("Still computing the Score truth report; try again in a few seconds.", status=503,
                            content_type="text/plain; charset=utf-8")
    response["Retry-After"] = "10"
    return response


def _horizon(request) -> tuple[TruthForm, int | None, bool]:
    form = TruthForm(request.GET or None)
    if request.GET and not form.is_valid():
        return form, None, False
    return form, (form.cleaned_data.get("horizon") if form.is_bound else None), True


@tenant_view()
@require_GET
def truth_page(request):
    form, horizon, ok = _horizon(request)
    if not ok:
        return render(request, "insights/truth.html", {"form": form}, status=400)
    report = report_or_pending(request.tenant, horizon)
    if report is None:
        return render(request, "insights/truth.html", {"form": form, "pending": True})
    context = {
        "form": form, "report": report, "columns": report.columns,
        "draft_form": DraftFromFitForm(initial={"horizon": report.horizon, "survey_share": 0}),
        "can_edit": request.membership.can(Role.EDITOR),
        # The CSV asks for the same horizon as the page (empty = the default), so it hits the same
        # cached report instead of computing it again under another key.
        "weights": _weights_rows(report), "query": f"horizon={horizon or ''}",
        "retentions": [report.retention, report.account_retention],
        "account_weights": account_weights_rows(report),
        "auc_chart": charts.truth_spec(report.columns, report.horizon),
        "falling_checks": [(name, bt.falling_check) for name, bt in report.columns if bt.falling_check],
    }
    return render(request, "insights/truth.html", context)


def account_weights_rows(report: truth.TruthReport) -> list[dict]:
    """The account fit's points next to the user fit's, per activity either gives points."""
    fit, user_fit = report.account_fit, report.fit
    if fit is None or not fit.ok:
        return []
    names = user_fit.activities | fit.activities
    rows = [{"activity": names[a], "accounts": fit.points.get(a, 0), "users": user_fit.points.get(a, 0)}
            for a in set(fit.points) | set(user_fit.points) if a in names]
    return sorted(rows, key=lambda r: (-r["accounts"], -r["users"], r["activity"].name))


def _weights_rows(report: truth.TruthReport) -> list[dict]:
    """Fitted points next to the survey's rating and proposal, per activity."""
    fit, survey = report.fit, report.survey
    retention = {r.activity.pk: r for r in (report.retention.rows if report.retention else [])}
    ids = set(fit.points) | set(survey.points if survey else {}) | set(retention)
    names = {r.activity.pk: r.activity for r in retention.values()} | fit.activities
    rows = []
    for activity_id in ids:
        activity = names.get(activity_id)
        if activity is None:
            continue
        rows.append({
            "activity": activity, "fitted": fit.points.get(activity_id, 0),
            "survey_points": survey.points.get(activity_id) if survey else None,
            "rating": survey.ratings.get(activity_id) if survey else None,
            "departments": [survey.by_department.get(activity_id, {}).get(d) for d in survey.departments]
            if survey else [],
            "retention": retention.get(activity_id),
        })
    rows.sort(key=lambda r: (-r["fitted"], -(r["survey_points"] or 0), r["activity"].name))
    return rows


@tenant_view(read_key=True)
@require_GET
@csv_download
def truth_csv(request):
    form, horizon, ok = _horizon(request)
    if not ok:
        return _bad_horizon(form)
    subject = request.GET.get("subject", "users")
    if subject not in truth.SUBJECTS:
        return HttpResponse("subject: choose users or accounts.", status=400, content_type="text/plain; charset=utf-8")
    report = report_or_pending(request.tenant, horizon)
    if report is None:
        return _still_computing()
    retention = report.account_retention if subject == "accounts" else report.retention
    header = ["snapshot_day", "horizon_days", "activity", "cohort", "users", "stayed", "share_stayed",
              "interval_low", "interval_high"]

    def rows():
        if retention is None:
            return
        for row in retention.rows:
            for cohort in [row.did, row.did_not, *row.bands, *([row.heavy] if row.heavy else [])]:
                interval = cohort.interval or (None, None)
                yield [retention.day, retention.horizon, row.activity.name, cohort.label, cohort.n, cohort.stayed,
                       cohort.share, *interval]

    return csv_response(f"{request.tenant.slug}-retention-by-activity-{subject}.csv", header, rows())


@tenant_view(role=Role.EDITOR)
@require_POST
def truth_draft(request):
    """A draft from the fitted weights, or a blend of them and the survey's proposal; then its backtest."""
    form = DraftFromFitForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
        return redirect("insights:truth", tenant_slug=request.tenant.slug)
    report = report_for(request.tenant, horizon=form.cleaned_data.get("horizon"))
    on_accounts = form.cleaned_data.get("subject") == "accounts"
    fit = report.account_fit if on_accounts else report.fit
    if fit is None or not fit.ok:
        messages.error(request, fit.readiness.message if fit is not None else "Nothing to fit yet.")
        return redirect("insights:truth", tenant_slug=request.tenant.slug)
    share = form.cleaned_data["survey_share"] / 100
    survey_points = report.survey.points if report.survey else {}
    if share and not survey_points:
        messages.error(request, "There is no survey proposal to blend with: answer a survey first, or keep the "
                                "survey's share at 0.")
        return redirect("insights:truth", tenant_slug=request.tenant.slug)
    points = truth.blend(fit.points, survey_points, share) if share else fit.points
    # Fitted points run from 0 to 100, so absolute points thresholds of the published tier rule would
    # not fit them: a fitted draft ranks by percentile.
    published = published_model(request.tenant)
    tiers = {"tier_method": TierMethod.PERCENTILE}
    if published is None or published.tier_method != TierMethod.PERCENTILE:
        tiers |= {"tier_high": 80, "tier_medium": 40}
    if on_accounts:  # the account fit weighs the sum of members' activity: an account is its members' sum
        tiers["account_rollup"] = AccountRollup.SUM
    name = f"Fitted on {'account ' if on_accounts else ''}outcomes ({report.horizon} days)" + \
        (f", {round(share * 100)}% survey" if share else "")
    try:
        draft = scoring_services.scoring_model_create_draft(tenant=request.tenant, created_by=request.user)
        draft = scoring_services.scoring_model_update(model=draft, points=points, name=name[:100],
                                                      window_days=fit.window, daily_cap=fit.daily_cap,
                                                      half_life_days=fit.half_life_days, **tiers)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("insights:truth", tenant_slug=request.tenant.slug)
    messages.success(request, f"Draft {draft} created. Here is its backtest; publish it from this page or edit it.")
    response = redirect("insights:backtest", tenant_slug=request.tenant.slug, model_id=draft.public_id)
    response["Location"] += f"?horizon={report.horizon}"  # judged as the page that proposed it
    return response


@tenant_view()
@require_GET
def backtest_page(request, model_id):
    model = get_tenant_object(request.tenant, ScoringModel, public_id=model_id)
    form, horizon, ok = _horizon(request)
    if not ok:
        return render(request, "insights/backtest.html", {"form": form, "model": model}, status=400)
    result = backtest_for(request.tenant, model_id=model.pk, horizon=horizon, version=version_key(model))
    context = {"form": form, "model": model, "result": result, "columns": result["columns"],
               "can_edit": request.membership.can(Role.EDITOR)}
    return render(request, "insights/backtest.html", context)
