"""The dashboard (tenant home) with its three charts, and the onboarding checklist's page and live status."""

from __future__ import annotations

from datetime import timedelta

from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accounts.scoping import tenant_view
from scoring import selectors

from .. import charts, onboarding
from ..queries.movers import at_risk_accounts, last_run, movers, power_users, tier_change


def _latest_and_earlier(series, model):
    """The published version's latest product row and its latest row at least 30 days before (no query)."""
    rows = [r for r in series if model is not None and r.model_id == model.pk]
    latest = rows[-1] if rows else None
    earlier = None
    if latest is not None:
        wanted = latest.day - timedelta(days=30)
        earlier = next((r for r in reversed(rows) if r.day <= wanted), None)
    return latest, earlier


def _dashboard_context(request) -> dict:
    tenant = request.tenant
    model = selectors.published_model(tenant)
    series = selectors.product_series(tenant)
    latest, earlier = _latest_and_earlier(series, model)
    day = latest.day if latest else None
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
        "last_run": last_run(tenant),
        "tiers": tier_change(latest, earlier),
    }
    if series:
        context["product_chart"] = charts.product_spec(series, context["marks"])
        context["users_chart"] = charts.users_spec(series)
    if latest is not None:
        context["tiers_chart"] = charts.tiers_spec(context["tiers"], reverse("scoring:users", args=[tenant.slug]))
        context["engaged_share"] = 100 * latest.engaged_users / latest.active_users if latest.active_users else None
    if day is not None:
        context["user_movers"] = movers(tenant, subject="users", day=day, model=model)
        at_risk = context["at_risk"] = at_risk_accounts(tenant, day=day, model=model)
        context["account_movers"] = movers(tenant, subject="accounts", day=day, model=model,
                                           not_rising=at_risk.risk.ids if at_risk.risk else None)
        context["power"] = power_users(tenant, day=day, model=model)
    return context


@tenant_view()
@require_GET
def dashboard(request):
    return render(request, "insights/dashboard.html", _dashboard_context(request))


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
