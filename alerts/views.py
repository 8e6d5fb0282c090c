"""Alert pages under /t/<slug>/alerts/. Thin: writes through services, reads through selectors.

Viewers read rules, endpoints and delivery logs; editors create, edit, test,
pause and replay. A webhook secret is on the page once, in the answer to the
request that created it, and never again.
"""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import rls
from accounts.models import Role
from accounts.scoping import get_tenant_object, tenant_view

from . import payloads, selectors, services
from .forms import EndpointForm, RuleForm
from .models import AlertRule, Delivery, WebhookEndpoint


def _errors(error: ValidationError) -> dict:
    return error.message_dict if hasattr(error, "error_dict") else {None: error.messages}


def _apply_errors(form, error: ValidationError) -> None:
    for field, msgs in _errors(error).items():
        field = field if field in form.fields else None
        for message in msgs:
            form.add_error(field, message)


@tenant_view()
@require_GET
def rule_list(request):
    tenant = request.tenant
    context = {"rules": selectors.rules(tenant), "endpoints": selectors.endpoints(tenant),
               "firings": selectors.recent_firings(tenant), "can_edit": request.membership.can(Role.EDITOR)}
    return render(request, "alerts/list.html", context)


def _save_rule(request, rule):
    form = RuleForm(request.POST or None, tenant=request.tenant, rule=rule)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.rule_save(tenant=request.tenant, rule=rule, actions=form.actions(),
                                       created_by=request.user, **form.rule_fields())
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, f"Rule “{saved.name}” saved.")
            return redirect("alerts:rule", tenant_slug=request.tenant.slug, rule_id=saved.public_id)
    status = 400 if form.errors else 200
    return render(request, "alerts/rule_form.html", {"form": form, "rule": rule}, status=status)


@tenant_view(role=Role.EDITOR)
@require_http_methods(["GET", "POST"])
def rule_create(request):
    return _save_rule(request, None)


@tenant_view(write_role=Role.EDITOR)
@require_http_methods(["GET", "POST"])
def rule_detail(request, rule_id):
    rule = get_tenant_object(request.tenant, AlertRule, public_id=rule_id)
    if request.method == "POST" or (request.GET.get("edit") and request.membership.can(Role.EDITOR)):
        return _save_rule(request, rule)
    context = {"rule": rule, "actions": list(rule.actions.select_related("endpoint")),
               "firings": selectors.recent_firings(request.tenant, rule=rule),
               "can_edit": request.membership.can(Role.EDITOR)}
    return render(request, "alerts/rule.html", context)


@tenant_view(role=Role.EDITOR)
@require_POST
def rule_pause(request, rule_id):
    rule = get_tenant_object(request.tenant, AlertRule, public_id=rule_id)
    paused = request.POST.get("paused", "1") == "1"
    services.rule_set_paused(rule=rule, paused=paused)
    messages.success(request, f"Rule “{rule.name}” {'paused' if paused else 'resumed'}.")
    return redirect("alerts:rule", tenant_slug=request.tenant.slug, rule_id=rule.public_id)


@tenant_view(role=Role.EDITOR)
@require_POST
def rule_delete(request, rule_id):
    rule = get_tenant_object(request.tenant, AlertRule, public_id=rule_id)
    services.rule_delete(rule=rule)
    messages.success(request, f"Rule “{rule.name}” deleted.")
    return redirect("alerts:list", tenant_slug=request.tenant.slug)


@tenant_view(role=Role.EDITOR)
@require_GET
def rule_test(request, rule_id):
    rule = get_tenant_object(request.tenant, AlertRule, public_id=rule_id)
    hits = services.preview_last_week(rule)
    return render(request, "alerts/rule_test.html", {"rule": rule, "hits": hits,
                                                      "days": sorted({d for d, _ in hits}, reverse=True)})


@tenant_view(write_role=Role.EDITOR)
@require_http_methods(["GET", "POST"])
@never_cache
def endpoint_list(request):
    form = EndpointForm(request.POST or None)
    secret = created = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                created, secret = services.endpoint_create(tenant=request.tenant, owner=request.user,
                                                           **form.cleaned_data)
            except ValidationError as error:
                _apply_errors(form, error)
            else:
                form = EndpointForm()
        if form.errors:
            status = 400
    context = {"endpoints": selectors.endpoints(request.tenant), "form": form, "created": created,
               "secret": secret, "can_edit": request.membership.can(Role.EDITOR)}
    return render(request, "alerts/endpoints.html", context, status=status)


@tenant_view()
@require_GET
def endpoint_detail(request, endpoint_id):
    endpoint = get_tenant_object(request.tenant, WebhookEndpoint, public_id=endpoint_id)
    context = {"endpoint": endpoint, "attempts": selectors.endpoint_log(endpoint),
               "deliveries": selectors.endpoint_deliveries(endpoint),
               "can_edit": request.membership.can(Role.EDITOR)}
    return render(request, "alerts/endpoint.html", context)


@tenant_view(role=Role.EDITOR)
@require_POST
def endpoint_enable(request, endpoint_id):
    endpoint = get_tenant_object(request.tenant, WebhookEndpoint, public_id=endpoint_id)
    services.endpoint_enable(endpoint=endpoint)
    messages.success(request, f"Endpoint “{endpoint.name}” is enabled again.")
    return redirect("alerts:endpoint", tenant_slug=request.tenant.slug, endpoint_id=endpoint.public_id)


@tenant_view(role=Role.EDITOR)
@require_POST
def delivery_replay(request, delivery_id):
    delivery = get_tenant_object(request.tenant, Delivery, public_id=delivery_id)
    try:
        services.delivery_replay(delivery=delivery)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Replay queued: the delivery log shows its answer.")
    back = request.POST.get("next", "")
    if back.startswith(f"/t/{request.tenant.slug}/alerts/"):
        return redirect(back)
    if delivery.endpoint_id:
        return redirect("alerts:endpoint", tenant_slug=request.tenant.slug, endpoint_id=delivery.endpoint.public_id)
    return redirect("alerts:rule", tenant_slug=request.tenant.slug, rule_id=delivery.firing.rule.public_id)


# --- The development receiver (DEBUG + ALERTS_ALLOW_LOCAL_TARGETS only; see alerts/urls.py) -------------


@csrf_exempt
@require_POST
def dev_receiver(request, endpoint_id):
    """Answers the demo's webhook like a customer's server would: checks the signature, says what it got."""
    if not (settings.DEBUG and settings.ALERTS_ALLOW_LOCAL_TARGETS):
        raise Http404("Development only.")
    # Development only: the endpoint is looked up by its id, before any tenant is known.
    with rls.bypass("dev receiver: the endpoint of a demo webhook"):
        endpoint = WebhookEndpoint.objects.unscoped().filter(public_id=endpoint_id).first()
        secret = endpoint.secret if endpoint else None
    if secret is None:
        return JsonResponse({"error": "no such endpoint"}, status=404)
    if not payloads.verify(secret, request.body, request.headers.get(payloads.SIGNATURE_HEADER, "")):
        return JsonResponse({"error": "bad signature"}, status=400)
    return JsonResponse({"received": request.headers.get(payloads.EVENT_ID_HEADER, ""), "signature": "valid"})

