"""Pages of the events app: catalog, live debugger, "Send events" setup and CSV backfill. Thin views."""

import json
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRefresh

from accounts.models import Role
from accounts.scoping import get_tenant_object, tenant_view
from core.site import site_url as core_site_url

from . import selectors, wire
from .catalog import activity_keep, activity_update
from .csv_import import MAX_LISTED_ERRORS, csv_import_create, csv_import_start
from .forms import ActivityForm, CsvUploadForm
from .models import Activity, CsvImport
from .reference import ENDPOINTS, ERROR_CODES

# --- Catalog ------------------------------------------------------------------------


def _catalog_page(request, status=200, failed=None):
    context = {
        "rows": selectors.catalog_rows(request.tenant),
        "test_activities": selectors.test_activities(request.tenant),
        "can_edit": request.membership.can(Role.EDITOR),
        "failed": failed,
    }
    return render(request, "events/catalog.html", context, status=status)


@tenant_view()
@require_GET
def catalog(request):
    return _catalog_page(request)


@tenant_view(role=Role.EDITOR)
@require_POST
def keep_activity(request, activity_id):
    activity = get_tenant_object(request.tenant, Activity, public_id=activity_id)
    activity_keep(activity=activity)
    messages.success(request, f"“{activity.name}” is now a catalog activity: surveys and scoring models offer it.")
    return redirect("events:catalog", tenant_slug=request.tenant.slug)


@tenant_view(role=Role.EDITOR)
@require_POST
def update_activity(request, activity_id):
    activity = get_tenant_object(request.tenant, Activity, public_id=activity_id)
    form = ActivityForm(request.POST)
    if form.is_valid():
        try:
            activity_update(activity=activity, **form.cleaned_data)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return _catalog_page(request, status=400)
        messages.success(request, f"“{activity.name}” saved.")
        return redirect("events:catalog", tenant_slug=request.tenant.slug)
    errors = "; ".join(f"{form[name].label}: {' '.join(errs)}" for name, errs in form.errors.items())
    messages.error(request, f"“{activity.name}” was not saved. {errors}")
    return _catalog_page(request, status=400, failed={"id": activity.public_id, "form": form})


# --- Snippets shared by the debugger and the setup page -------------------------------


def _snippet_context(tenant):
    site_url = core_site_url()
    parts = urlsplit(site_url)
    keys = list(selectors.write_keys_of(tenant))
    return {
        "site_url": site_url,
        "api_host": f"{parts.netloc}{parts.path}/v1",
        "protocol": parts.scheme or "https",
        "write_keys": keys,
        "key_placeholder": f"{keys[0].prefix}_..." if keys else "YOUR_WRITE_KEY",
    }


# --- Live debugger ------------------------------------------------------------------


@never_cache
@tenant_view()
@require_GET
def debugger(request):
    tenant = request.tenant
    feed = selectors.debugger_feed(tenant)
    for item in feed["items"]:
        item["payload_json"] = json.dumps(item["payload"], indent=2, ensure_ascii=False, sort_keys=True)
    context = {
        "feed": feed,
        "empty": not feed["items"],
        **_snippet_context(tenant),
    }
    return render(request, "events/debugger.html", context)


@never_cache
@tenant_view()
@require_GET
def debugger_feed(request):
    after = selectors.parse_cursor(request.GET.get("after"))
    return JsonResponse(selectors.debugger_feed(request.tenant, after=after))


# --- Setup ("Send events") ----------------------------------------------------------

@tenant_view()
@require_GET
def setup(request):
    context = {
        **_snippet_context(request.tenant),
        "endpoints": ENDPOINTS,
        "error_codes": ERROR_CODES,
        "max_message_kb": wire.MAX_MESSAGE_BYTES // 1024,
        "max_request_bytes": f"{wire.MAX_REQUEST_BYTES:,}",
        "max_batch": f"{wire.MAX_BATCH_MESSAGES:,}",
        "max_id_len": wire.MAX_ID_LEN,
        "first_year": wire.MIN_TIMESTAMP.year,
        "last_year": wire.MAX_TIMESTAMP.year - 1,
    }
    return render(request, "events/setup.html", context)


# --- CSV backfill -------------------------------------------------------------------


def _imports_page(request, form=None, status=200):
    context = {
        "form": form or CsvUploadForm(),
        "imports": selectors.imports_of(request.tenant)[:50],
        "can_edit": request.membership.can(Role.EDITOR),
        "max_mb": settings.CSV_IMPORT_MAX_BYTES // (1024 * 1024),
    }
    return render(request, "events/imports.html", context, status=status)


@tenant_view(write_role=Role.EDITOR)
@require_http_methods(["GET", "POST"])
def imports(request):
    if request.method == "GET":
        return _imports_page(request)
    form = CsvUploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            job = csv_import_create(
                tenant=request.tenant, uploaded_file=form.cleaned_data["file"], created_by=request.user
            )
        except ValidationError as error:
            form.add_error("file", error)
        else:
            return redirect("events:import_detail", tenant_slug=request.tenant.slug, import_id=job.public_id)
    return _imports_page(request, form=form, status=400)


def _import_page(request, job, status=200):
    context = {
        "job": job,
        "preview": job.preview,
        "hidden_errors": max(0, job.invalid_rows - len(job.preview.get("errors", []))),
        "max_listed_errors": MAX_LISTED_ERRORS,
        "can_edit": request.membership.can(Role.EDITOR),
        "status": selectors.import_status(job),
    }
    return render(request, "events/import_detail.html", context, status=status)


@tenant_view()
@require_GET
def import_detail(request, import_id):
    return _import_page(request, get_tenant_object(request.tenant, CsvImport, public_id=import_id))


@tenant_view(role=Role.EDITOR)
@require_POST
def start_import(request, import_id):
    job = get_tenant_object(request.tenant, CsvImport, public_id=import_id)
    try:
        csv_import_start(csv_import=job)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return _import_page(request, job, status=400)
    return redirect("events:import_detail", tenant_slug=request.tenant.slug, import_id=job.public_id)


# States the polled card shows; in any other (preview ready, unreadable file) the whole page changes.
_CARD_STATES = {"scanning", "queued", "running", "succeeded"}


@never_cache
@tenant_view()
@require_GET
def import_progress(request, import_id):
    """The import page's progress card, for htmx to swap while the job is at work."""
    job = get_tenant_object(request.tenant, CsvImport, public_id=import_id)
    if job.status not in _CARD_STATES and not (job.status == CsvImport.Status.FAILED and job.started_at):
        return HttpResponseClientRefresh()
    context = {"job": job, "can_edit": request.membership.can(Role.EDITOR)}
    return render(request, "events/_import_progress.html", context)


@never_cache
@tenant_view()
@require_GET
def import_status(request, import_id):
    job = get_tenant_object(request.tenant, CsvImport, public_id=import_id)
    return JsonResponse(selectors.import_status(job))
