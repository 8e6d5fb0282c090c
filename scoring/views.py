"""Scoring pages. Thin: writes go through services, reads through selectors."""

import csv

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Role
from accounts.scoping import get_tenant_object, tenant_view
from events.models import CustomerAccount, EndUser

from . import charts, selectors, services
from .forms import AccountFilterForm, ImportModelForm, RecomputeForm, ScoringModelForm, UserFilterForm
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
    }
    return render(request, "scoring/overview.html", context)


def _svg(content: bytes) -> HttpResponse:
    return HttpResponse(content, content_type="image/svg+xml")


@tenant_view()
@require_GET
def product_chart(request):
    series = selectors.product_series(request.tenant)
    days = [row.day for row in series]
    svg = charts.line_chart(
        f"{request.tenant.product_name}: product score (total points) per day",
        days,
        {"Total points": [row.total_points for row in series]},
        selectors.version_changes(series),
    )
    return _svg(svg)


@tenant_view()
@require_GET
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
    return _csv_response("product-score.csv", header, rows)


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
    }
    return render(request, "scoring/runs.html", context, status=400 if form.errors else 200)


@never_cache
@tenant_view()
@require_GET
def run_status(request, run_id):
    run = get_tenant_object(request.tenant, ScoringRun, public_id=run_id)
    return JsonResponse(selectors.run_as_dict(run))


# --- Users and accounts ----------------------------------------------------------------------


def _filtered_users(request):
    form = UserFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        return form, None
    data = form.cleaned_data if request.GET else {}
    account = None
    if data.get("account"):
        account = CustomerAccount.objects.for_tenant(request.tenant).filter(group_id=data["account"]).first()
        if account is None:
            form.add_error("account", "No account with this group id.")
            return form, None
    rows = selectors.user_snapshots(
        request.tenant, tier=data.get("tier") or None, account=account, order=data.get("order") or "-points"
    )
    return form, rows


@tenant_view()
@require_GET
def users(request):
    form, rows = _filtered_users(request)
    page = Paginator(rows if rows is not None else [], PAGE_SIZE).get_page(request.GET.get("page"))
    model = selectors.published_model(request.tenant)
    context = {
        "form": form,
        "page": page,
        "model": model,
        "day": selectors.latest_day(request.tenant, model),
        "query": request.GET.copy(),
    }
    context["query"].pop("page", None)
    return render(request, "scoring/users.html", context, status=400 if form.errors else 200)


class _Echo:
    def write(self, value):
        return value


def _csv_response(filename, header, rows) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def stream():
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@tenant_view()
@require_GET
def users_csv(request):
    form, rows = _filtered_users(request)
    if rows is None:
        return HttpResponse(" ".join(e for errs in form.errors.values() for e in errs), status=400)
    header = ["user_id", "name", "account", "day", "version", "points", "breadth", "active_days", "percentile", "tier"]
    data = (
        [
            r.end_user.user_id or "",
            r.end_user.display_name,
            r.end_user.account.group_id if r.end_user.account else "",
            r.day,
            r.model.version,
            r.points,
            r.breadth,
            r.active_days,
            r.percentile,
            r.tier,
        ]
        for r in rows.iterator(chunk_size=2000)
    )
    return _csv_response(f"{request.tenant.slug}-users.csv", header, data)


def _filtered_accounts(request):
    form = AccountFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        return form, None
    data = form.cleaned_data if request.GET else {}
    return form, selectors.account_snapshots(
        request.tenant, tier=data.get("tier") or None, order=data.get("order") or "-points"
    )


@tenant_view()
@require_GET
def accounts(request):
    form, rows = _filtered_accounts(request)
    page = Paginator(rows if rows is not None else [], PAGE_SIZE).get_page(request.GET.get("page"))
    model = selectors.published_model(request.tenant)
    context = {
        "form": form,
        "page": page,
        "model": model,
        "day": selectors.latest_day(request.tenant, model),
        "query": request.GET.copy(),
    }
    context["query"].pop("page", None)
    return render(request, "scoring/accounts.html", context, status=400 if form.errors else 200)


@tenant_view()
@require_GET
def accounts_csv(request):
    form, rows = _filtered_accounts(request)
    if rows is None:
        return HttpResponse(" ".join(e for errs in form.errors.values() for e in errs), status=400)
    header = ["group_id", "name", "day", "version", "points", "active_users", "seats", "percentile", "tier"]
    data = (
        [
            r.account.group_id,
            r.account.name,
            r.day,
            r.model.version,
            r.points,
            r.active_users,
            r.seats,
            r.percentile,
            r.tier,
        ]
        for r in rows.iterator(chunk_size=2000)
    )
    return _csv_response(f"{request.tenant.slug}-accounts.csv", header, data)


@tenant_view()
@require_GET
def user_detail(request, end_user_id):
    end_user = get_tenant_object(request.tenant, EndUser, public_id=end_user_id)
    context = {
        "end_user": end_user,
        "snapshot": selectors.latest_user_snapshot(request.tenant, end_user),
        "explanation": selectors.explain_user(request.tenant, end_user),
    }
    return render(request, "scoring/user_detail.html", context)


@tenant_view()
@require_GET
def user_chart(request, end_user_id):
    end_user = get_tenant_object(request.tenant, EndUser, public_id=end_user_id)
    series = selectors.user_history(request.tenant, end_user)
    return _svg(
        charts.line_chart(
            f"{end_user}: points per day",
            [r.day for r in series],
            {"Points": [r.points for r in series]},
            selectors.version_changes(series),
        )
    )


@tenant_view()
@require_GET
def account_detail(request, account_id):
    account = get_tenant_object(request.tenant, CustomerAccount, public_id=account_id)
    context = {
        "account": account,
        "snapshot": selectors.latest_account_snapshot(request.tenant, account),
        "explanation": selectors.explain_account(request.tenant, account),
        "members": selectors.user_snapshots(request.tenant, account=account)[:100],
    }
    return render(request, "scoring/account_detail.html", context)


@tenant_view()
@require_GET
def account_chart(request, account_id):
    account = get_tenant_object(request.tenant, CustomerAccount, public_id=account_id)
    series = selectors.account_history(request.tenant, account)
    return _svg(
        charts.line_chart(
            f"{account}: account score per day",
            [r.day for r in series],
            {"Score": [r.points for r in series]},
            selectors.version_changes(series),
        )
    )


@tenant_view()
@require_GET
def formulas(request):
    return render(request, "scoring/formulas.html", {"model": selectors.published_model(request.tenant)})
