"""Scoring pages. Thin: writes go through services, reads through selectors."""


from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Role
from accounts.scoping import get_tenant_object, tenant_view
from core.csv_export import csv_download, csv_response
from events.models import CustomerAccount, EndUser

from . import account_members, charts, selectors, services
from .forms import ImportModelForm, RecomputeForm, ScoringModelForm
from .freshness import in_process_delay_seconds
from .modelfile import model_to_json
from .models import ScoringModel, ScoringRun

PAGE_SIZE = 50


def _error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


# --- Overview and product chart ------------------------------------------------------------


@tenant_view()
@require_GET
def overview(request):
    tenant = request.tenant
    model = selectors.published_model(tenant)
    series = selectors.product_series(tenant)
    context = {
        "model": model,
        "latest": series[-1] if series else None,
        "series": list(reversed(series[-30:])),
        "marks": selectors.version_changes(series),
        "product_chart": charts.product_spec(series, selectors.version_changes(series)),
    }
    latest = context["latest"]
    if latest is not None and latest.active_users:
        context["engaged_share"] = 100 * latest.engaged_users / latest.active_users
    return render(request, "scoring/overview.html", context)


@tenant_view(read_key=True)
@require_GET
@csv_download
def product_csv(request):
    series = selectors.product_series(request.tenant)
    header = [
        "day",
        "version",
        "total_points",
        "mean_points",
        "median_points",
        "active_users",
        "engaged_users",
        "high",
        "medium",
        "low",
        "new",
        "dormant",
    ]
    rows = (
        [
            r.day,
            r.model.version,
            r.total_points,
            r.mean_points,
            r.median_points,
            r.active_users,
            r.engaged_users,
            r.high_users,
            r.medium_users,
            r.low_users,
            r.new_users,
            r.dormant_users,
        ]
        for r in series
    )
    return csv_response("product-score.csv", header, rows)


# --- Model versions --------------------------------------------------------------------------


def _models_page(request, import_form=None, status=200):
    context = {
        "versions": selectors.model_versions(request.tenant),
        "import_form": import_form or ImportModelForm(),
        "can_edit": request.membership.can(Role.EDITOR),
    }
    return render(request, "scoring/models.html", context, status=status)


@tenant_view(write_role=Role.EDITOR)
@require_http_methods(["GET", "POST"])
def models(request):
    if request.method == "GET":
        return _models_page(request)
    draft = services.scoring_model_create_draft(tenant=request.tenant, created_by=request.user)
    messages.success(request, f"Draft v{draft.version} created. Set the points, preview, then publish.")
    return redirect("scoring:edit_model", tenant_slug=request.tenant.slug, model_id=draft.public_id)


@tenant_view(role=Role.EDITOR)
@require_POST
def import_model(request):
    form = ImportModelForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            draft = services.scoring_model_import(
                tenant=request.tenant, raw=form.cleaned_data["file"].read(), created_by=request.user
            )
        except ValidationError as error:
            form.add_error("file", _error_text(error))
        else:
            messages.success(request, f"Imported as draft v{draft.version}.")
            return redirect("scoring:edit_model", tenant_slug=request.tenant.slug, model_id=draft.public_id)
    return _models_page(request, import_form=form, status=400)


@tenant_view(write_role=Role.EDITOR)
@require_http_methods(["GET", "POST"])
def edit_model(request, model_id):
    model = get_tenant_object(request.tenant, ScoringModel, public_id=model_id)
    weights = selectors.model_weights(model)
    form = ScoringModelForm(request.POST or None, instance=model, weights=weights)
    status = 200
    if request.method == "POST":
        if not model.is_draft:
            messages.error(request, f"v{model.version} is {model.status} and frozen; copy it to a new draft.")
            status = 400
        elif form.is_valid():
            fields = {name: form.cleaned_data[name] for name in services.MODEL_FIELDS}
            try:
                services.scoring_model_update(model=model, points=form.points(), **fields)
            except ValidationError as error:
                form.add_error(None, _error_text(error))
            else:
                messages.success(request, f"Draft v{model.version} saved.")
                return redirect("scoring:edit_model", tenant_slug=request.tenant.slug, model_id=model.public_id)
        if form.errors:
            status = 400
        model.refresh_from_db()
    context = {
        "model": model,
        "form": form,
        "can_edit": model.is_draft and request.membership.can(Role.EDITOR),
        "can_publish": model.is_draft and request.membership.can(Role.EDITOR),
    }
    return render(request, "scoring/edit_model.html", context, status=status)


@tenant_view(role=Role.EDITOR)
@require_POST
def publish_model(request, model_id):
    model = get_tenant_object(request.tenant, ScoringModel, public_id=model_id)
    try:
        run = services.scoring_model_publish(model=model, published_by=request.user)
    except ValidationError as error:
        messages.error(request, _error_text(error))
        return redirect("scoring:edit_model", tenant_slug=request.tenant.slug, model_id=model.public_id)
    messages.success(request, f"v{model.version} is published. Its last {run.days_total} days are being computed.")
    return redirect("scoring:runs", tenant_slug=request.tenant.slug)


@tenant_view(role=Role.EDITOR)
@require_POST
def copy_model(request, model_id):
    source = get_tenant_object(request.tenant, ScoringModel, public_id=model_id)
    draft = services.scoring_model_create_draft(tenant=request.tenant, created_by=request.user, source=source)
    messages.success(request, f"Draft v{draft.version} created from v{source.version}.")
    return redirect("scoring:edit_model", tenant_slug=request.tenant.slug, model_id=draft.public_id)


@tenant_view(role=Role.EDITOR)
@require_POST
def delete_model(request, model_id):
    model = get_tenant_object(request.tenant, ScoringModel, public_id=model_id)
    try:
        services.scoring_model_delete_draft(model=model)
    except ValidationError as error:
        messages.error(request, _error_text(error))
        return redirect("scoring:edit_model", tenant_slug=request.tenant.slug, model_id=model.public_id)
    messages.success(request, f"Draft v{model.version} deleted.")
    return redirect("scoring:models", tenant_slug=request.tenant.slug)


@tenant_view()
@require_GET
def export_model(request, model_id):
    model = get_tenant_object(request.tenant, ScoringModel, public_id=model_id)
    response = HttpResponse(model_to_json(model), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{request.tenant.slug}-scoring-v{model.version}.json"'
    return response


@tenant_view()
@require_GET
def preview_model(request, model_id):
    model = get_tenant_object(request.tenant, ScoringModel, public_id=model_id)
    if not model.weights.filter(points__gt=0).exists():
        messages.error(request, "Give at least one activity some points to preview this version.")
        return redirect("scoring:edit_model", tenant_slug=request.tenant.slug, model_id=model.public_id)
    preview = selectors.preview_draft(model)
    return render(request, "scoring/preview.html", {"model": model, "preview": preview})


@tenant_view()
@require_GET
def preview_changes_csv(request, model_id):
    """Every end user whose tier the draft would change (the page shows the first 50)."""
    model = get_tenant_object(request.tenant, ScoringModel, public_id=model_id)
    if not model.weights.filter(points__gt=0).exists():
        return HttpResponseBadRequest("Give at least one activity some points to preview this version.")
    preview = selectors.preview_draft(model, changes_limit=None)
    header = ["user_id", "anonymous_id", "name", "published_tier", "draft_tier", "published_points", "draft_points"]
    rows = (
        [r["user"].user_id or "", r["user"].anonymous_id or "", r["user"].display_name, r["old_tier"] or "",
         r["tier"], r["old_points"], r["points"]]
        for r in preview.changes
    )  # fmt: skip
    return csv_response(f"{request.tenant.slug}-v{model.version}-tier-changes-{preview.day}.csv", header, rows)


# --- Runs ----------------------------------------------------------------------------------


@never_cache
@tenant_view(write_role=Role.ADMIN)
@require_http_methods(["GET", "POST"])
def runs(request):
    form = RecomputeForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                run = services.recompute_request(
                    tenant=request.tenant, days=form.cleaned_data["days"], requested_by=request.user
                )
            except ValidationError as error:
                form.add_error(None, _error_text(error))
            else:
                messages.success(request, f"Recompute of {run.days_total} days queued.")
                return redirect("scoring:runs", tenant_slug=request.tenant.slug)
    context = {
        "runs": selectors.runs_of(request.tenant),
        "form": form,
        "can_recompute": request.membership.can(Role.ADMIN),
        "model": selectors.published_model(request.tenant),
        "embedded": settings.CELERY_TASK_ALWAYS_EAGER,
        "refresh_minutes": settings.SCORING_REFRESH_MINUTES,
        "in_process_seconds": in_process_delay_seconds(),
    }
    return render(request, "scoring/runs.html", context, status=400 if form.errors else 200)


@never_cache
@tenant_view()
@require_GET
def run_row(request, run_id):
    """One row of the runs page, for htmx to swap while the run is queued or running."""
    run = get_tenant_object(request.tenant, ScoringRun, public_id=run_id)
    run.stall_note = selectors.stall_note(run)
    return render(request, "scoring/_run_row.html", {"run": run})


@never_cache
@tenant_view()
@require_GET
def run_status(request, run_id):
    run = get_tenant_object(request.tenant, ScoringRun, public_id=run_id)
    return JsonResponse(selectors.run_as_dict(run))


# --- Users and accounts ----------------------------------------------------------------------


def _sort_links(request, sorts) -> dict[str, dict[str, str]]:
    """Per sortable column: the link that sorts by it (high first, or flipped when already so) and its state."""
    current = request.GET.get("order") or "-points"
    links = {}
    for sort in sorts:
        query = request.GET.copy()
        query.pop("page", None)
        query["order"] = sort if current == f"-{sort}" else f"-{sort}"
        state = "descending" if current == f"-{sort}" else "ascending" if current == sort else ""
        links[sort] = {"url": f"?{query.urlencode()}", "state": state}
    return links


def _list_context(request, rows, sorts) -> dict:
    page = Paginator(rows if rows.valid else [], PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "form": rows.form,
        "page": page,
        "model": rows.model,
        "days": rows.days,
        "query": query,
        "sorts": _sort_links(request, sorts),
    }


def _filtered_users(request):
    """The users list filtered by the query string (scoring.filters.UserListFilter); its form has the errors."""
    return selectors.user_list(request.tenant, data=request.GET)


@tenant_view()
@require_GET
def users(request):
    rows = _filtered_users(request)
    context = _list_context(request, rows, selectors.USER_LIST_SORTS)
    return render(request, "scoring/users.html", context, status=200 if rows.valid else 400)


def _form_errors_response(form) -> HttpResponse:
    text = " ".join(e for errs in form.errors.values() for e in errs)
    return HttpResponse(text, status=400, content_type="text/plain; charset=utf-8")


def _blank(value):
    return "" if value is None else value


@tenant_view(read_key=True)
@require_GET
@csv_download
def users_csv(request):
    rows = _filtered_users(request)
    if not rows.valid:
        return _form_errors_response(rows.form)
    # The first ten columns are the export's original ones, in their original order.
    header = [
        "user_id",
        "name",
        "account",
        "day",
        "version",
        "points",
        "breadth",
        "active_days",
        "percentile",
        "tier",
        "change_7d",
        "change_30d",
        "last_seen",
        "email",
        "plan",
    ]
    day, version = rows.days.day, rows.model.version if rows.model else None
    data = (
        [
            r.user_id or "",
            r.display_name,
            r.account_group_id or "",
            day,
            version,
            r.points,
            r.breadth,
            r.active_days,
            _blank(r.percentile),
            r.tier,
            _blank(r.change_7),
            _blank(r.change_30),
            _blank(r.last_seen),
            r.email or "",
            r.plan or "",
        ]
        for r in rows
    )
    return csv_response(f"{request.tenant.slug}-users.csv", header, data)


def _filtered_accounts(request):
    return selectors.account_list(request.tenant, data=request.GET)


@tenant_view()
@require_GET
def accounts(request):
    rows = _filtered_accounts(request)
    context = _list_context(request, rows, selectors.ACCOUNT_LIST_SORTS)
    return render(request, "scoring/accounts.html", context, status=200 if rows.valid else 400)


@tenant_view(read_key=True)
@require_GET
@csv_download
def accounts_csv(request):
    rows = _filtered_accounts(request)
    if not rows.valid:
        return _form_errors_response(rows.form)
    header = [
        "group_id",
        "name",
        "day",
        "version",
        "points",
        "active_users",
        "seats",
        "percentile",
        "tier",
        "change_7d",
        "change_30d",
        "last_seen",
        "plan",
    ]
    day, version = rows.days.day, rows.model.version if rows.model else None
    data = (
        [
            r.group_id,
            r.name,
            day,
            version,
            r.points,
            r.active_users,
            r.seats,
            _blank(r.percentile),
            r.tier,
            _blank(r.change_7),
            _blank(r.change_30),
            _blank(r.last_seen),
            r.plan or "",
        ]
        for r in rows
    )
    return csv_response(f"{request.tenant.slug}-accounts.csv", header, data)


@tenant_view()
@require_GET
def user_detail(request, end_user_id):
    tenant = request.tenant
    end_user = get_tenant_object(tenant, EndUser, public_id=end_user_id)
    model = selectors.published_model(tenant)
    days = selectors.list_days(tenant, model)
    history = selectors.user_history(tenant, end_user)
    context = {
        "end_user": end_user,
        "days": days,
        "account": end_user.account,
        "traits": selectors.traits_of(end_user),
        "model": model,
        "snapshot": selectors.latest_user_snapshot(tenant, end_user, model=model),
        "row": selectors.user_row(tenant, end_user, model=model, days=days) if model else None,
        "history": list(reversed(history)),
        "history_chart": _history_chart(history),
        "explanation": selectors.explain_user(tenant, end_user, model=model, day=days.day) if model else None,
        "events": selectors.recent_events(tenant, end_user=end_user),
    }
    return render(request, "scoring/user_detail.html", context)


def _history_chart(series) -> dict:
    """Points per day with each day's tier; the latest version's thresholds when it ranks by points."""
    return charts.history_spec(series, selectors.version_changes(series), series[-1].model if series else None)


MEMBERS_SHOWN = 100


@tenant_view()
@require_GET
def account_detail(request, account_id):
    tenant = request.tenant
    account = get_tenant_object(tenant, CustomerAccount, public_id=account_id)
    model = selectors.published_model(tenant)
    days = selectors.list_days(tenant, model)
    snapshot = selectors.latest_account_snapshot(tenant, account, model=model)
    # Members and seat tiers from AccountMembership: every member, not only those whose primary it is.
    members = account_members.members(tenant, account, model, days, MEMBERS_SHOWN)
    history = selectors.account_history(tenant, account)
    context = {
        "account": account,
        "days": days,
        "traits": selectors.traits_of(account),
        "model": model,
        "snapshot": snapshot,
        "seats": account_members.seat_engagement(tenant, snapshot) if snapshot else None,
        "history": list(reversed(history)),
        "history_chart": _history_chart(history),
        "explanation": selectors.explain_account(tenant, account, model=model, day=days.day) if model else None,
        "members": members,
        "member_count": account_members.member_count(tenant, account, members, MEMBERS_SHOWN),
        "members_shown": MEMBERS_SHOWN,
        "can_remove_members": request.membership.can(Role.ADMIN),
        "events": selectors.recent_events(tenant, account=account),
    }
    return render(request, "scoring/account_detail.html", context)


@tenant_view()
@require_GET
def formulas(request):
    return render(request, "scoring/formulas.html", {"model": selectors.published_model(request.tenant)})
