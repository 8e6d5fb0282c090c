"""Pages for sign-up, tenants, members, invitations and API keys. Thin: logic lives in services."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from core.forms import add_service_errors

from . import selectors, services
from .forms import (
    AcceptInvitationForm,
    ApiKeyForm,
    InviteForm,
    MembershipForm,
    OwnerTraitsForm,
    RiskSettingsForm,
    SignupForm,
    TenantCreateForm,
    TenantDeleteForm,
    TenantSettingsForm,
)
from .models import ApiKey, Invitation, Membership, Role, User
from .scoping import get_tenant_object, tenant_view

BACKEND = "django.contrib.auth.backends.ModelBackend"


def home(request):
    if not request.user.is_authenticated:
        return render(request, "accounts/landing.html")
    memberships = list(selectors.tenants_for_user(request.user)[:2])
    if len(memberships) == 1:
        return redirect("tenant_home", tenant_slug=memberships[0].tenant.slug)
    return redirect("accounts:switch_tenant")


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("accounts:home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user, tenant = services.user_signup(**form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            login(request, user, backend=BACKEND)
            messages.success(request, f"Welcome! {tenant.name} is ready.")
            return redirect("tenant_home", tenant_slug=tenant.slug)
    return render(request, "accounts/signup.html", {"form": form}, status=400 if form.errors else 200)


@login_required
def switch_tenant(request):
    memberships = selectors.tenants_for_user(request.user)
    return render(request, "accounts/switch_tenant.html", {"memberships": memberships})


@login_required
@require_http_methods(["GET", "POST"])
def create_tenant(request):
    form = TenantCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            tenant = services.tenant_create(
                owner=request.user,
                name=form.cleaned_data["company_name"],
                product_name=form.cleaned_data["product_name"],
                time_zone=form.cleaned_data["time_zone"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            return redirect("tenant_home", tenant_slug=tenant.slug)
    return render(request, "accounts/create_tenant.html", {"form": form}, status=400 if form.errors else 200)


@tenant_view(write_role=Role.ADMIN)
@require_http_methods(["GET", "POST"])
def tenant_settings(request):
    tenant = request.tenant
    # Each section is its own form and Save button; `section` says which one was posted.
    section = request.POST.get("section", "general") if request.method == "POST" else None
    posted = request.POST if section else None
    form = TenantSettingsForm(posted if section == "general" else None, instance=tenant)
    risk_form = RiskSettingsForm(posted if section == "risk" else None, instance=tenant, prefix="risk")
    owner_form = OwnerTraitsForm(posted if section == "owners" else None, instance=tenant, prefix="owners")
    chosen = {"general": form, "risk": risk_form, "owners": owner_form}.get(section)
    if chosen is not None:
        if chosen.is_valid():
            if chosen is form:
                services.tenant_update(tenant=tenant, **form.cleaned_data)
            else:
                services.tenant_update_settings(tenant=tenant, **chosen.cleaned_data)
            messages.success(request, "Settings saved.")
            return redirect("accounts:tenant_settings", tenant_slug=tenant.slug)
        tenant.refresh_from_db()
    elif section is not None:
        return HttpResponseBadRequest("Unknown settings section.")
    context = {"form": form, "risk_form": risk_form, "owner_form": owner_form,
               "delete_form": TenantDeleteForm(tenant=tenant)}
    errors = any(f.errors for f in (form, risk_form, owner_form))
    return render(request, "accounts/tenant_settings.html", context, status=400 if errors else 200)


@tenant_view(role=Role.OWNER)
@require_POST
def delete_tenant(request):
    tenant = request.tenant
    form = TenantDeleteForm(request.POST, tenant=tenant)
    if form.is_valid():
        name = tenant.name
        services.tenant_delete(tenant=tenant, confirm_name=form.cleaned_data["confirm_name"])
        messages.success(request, f"{name} and all its data were deleted.")
        return redirect("accounts:home")
    context = {"form": TenantSettingsForm(instance=tenant), "delete_form": form,
               "risk_form": RiskSettingsForm(instance=tenant, prefix="risk"),
               "owner_form": OwnerTraitsForm(instance=tenant, prefix="owners")}
    return render(request, "accounts/tenant_settings.html", context, status=400)


def _members_page(request, invite_form=None, status=200):
    tenant = request.tenant
    members = list(selectors.members_of(tenant))
    context = {
        "members": members,
        # The server refuses to remove the last owner (services.membership_remove): no button for it.
        "sole_owner": sum(m.role == Role.OWNER for m in members) <= 1,
        "invitations": selectors.invitations_of(tenant),
        "invite_form": invite_form or InviteForm(role_choices=services.role_choices_for(request.membership)),
        "role_choices": services.role_choices_for(request.membership),
        "department_choices": MembershipForm.base_fields["department"].choices,
        "can_manage": request.membership.can(Role.ADMIN),
    }
    return render(request, "accounts/members.html", context, status=status)


@tenant_view(write_role=Role.ADMIN)
@require_http_methods(["GET", "POST"])
def members(request):
    if request.method == "GET":
        return _members_page(request)
    form = InviteForm(request.POST, role_choices=services.role_choices_for(request.membership))
    if form.is_valid():
        try:
            invitation, _token = services.invitation_create(
                tenant=request.tenant, invited_by=request.user, **form.cleaned_data
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Invitation sent to {invitation.email}. The link is valid for 7 days.")
            return redirect("accounts:members", tenant_slug=request.tenant.slug)
    return _members_page(request, invite_form=form, status=400)


@tenant_view(role=Role.ADMIN)
@require_POST
def update_member(request, member_id):
    membership = get_tenant_object(request.tenant, Membership, public_id=member_id)
    form = MembershipForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role and department.")
        return _members_page(request, status=400)
    try:
        services.membership_update(membership=membership, acting=request.membership, **form.cleaned_data)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return _members_page(request, status=400)
    messages.success(request, f"{membership.user.email} is now {membership.get_role_display().lower()}.")
    return redirect("accounts:members", tenant_slug=request.tenant.slug)


@tenant_view(role=Role.ADMIN)
@require_POST
def remove_member(request, member_id):
    membership = get_tenant_object(request.tenant, Membership, public_id=member_id)
    try:
        services.membership_remove(membership=membership, acting=request.membership)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return _members_page(request, status=400)
    messages.success(request, f"{membership.user.email} was removed.")
    if membership.user_id == request.user.id:
        return redirect("accounts:home")
    return redirect("accounts:members", tenant_slug=request.tenant.slug)


@tenant_view(role=Role.ADMIN)
@require_POST
def revoke_invitation(request, invitation_id):
    invitation = get_tenant_object(request.tenant, Invitation, public_id=invitation_id)
    services.invitation_revoke(invitation=invitation)
    messages.success(request, f"The invitation of {invitation.email} was withdrawn.")
    return redirect("accounts:members", tenant_slug=request.tenant.slug)


@never_cache
@require_http_methods(["GET", "POST"])
def accept_invitation(request, token):
    try:
        invitation = services.invitation_for_token(token)
    except services.InvitationError as error:
        return render(request, "accounts/invitation_invalid.html", {"reason": str(error)}, status=410)
    form = None
    if request.user.is_authenticated:
        if not services.invitation_is_for(invitation, request.user):
            # The token stays unused: only the invited address can redeem it.
            reason = str(services.InvitationForOtherAddress(invitation, request.user))
            context = {"invitation": invitation, "reason": reason}
            return render(request, "accounts/invitation_other_address.html", context, status=403)
        if request.method == "POST":
            services.invitation_accept(token=token, user=request.user)
            messages.success(request, f"You joined {invitation.tenant.name}.")
            return redirect("tenant_home", tenant_slug=invitation.tenant.slug)
    else:
        if User.objects.filter(email__iexact=invitation.email).exists():
            return redirect(f"{reverse('accounts:login')}?next={request.path}")
        form = AcceptInvitationForm(request.POST or None, email=invitation.email)
        if request.method == "POST" and form.is_valid():
            try:
                user, _ = services.invitation_accept_as_new_user(
                    token=token, full_name=form.cleaned_data["full_name"], password=form.cleaned_data["password"]
                )
            except services.InvitationError as error:
                form.add_error(None, str(error))
            else:
                login(request, user, backend=BACKEND)
                messages.success(request, f"Welcome to {invitation.tenant.name}!")
                return redirect("tenant_home", tenant_slug=invitation.tenant.slug)
    status = 400 if form is not None and form.errors else 200
    return render(request, "accounts/accept_invitation.html", {"invitation": invitation, "form": form}, status=status)


@never_cache
@tenant_view(write_role=Role.ADMIN)
@require_http_methods(["GET", "POST"])
def api_keys(request):
    tenant = request.tenant
    form = ApiKeyForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        key, plaintext = services.api_key_create(tenant=tenant, created_by=request.user, **form.cleaned_data)
        # Rendered in this response only: the plaintext is never stored or shown again.
        created = {"key": key, "plaintext": plaintext}
        form = ApiKeyForm()
    context = {"form": form, "keys": selectors.api_keys_of(tenant), "created": created}
    return render(request, "accounts/api_keys.html", context, status=400 if form.errors else 200)


@tenant_view(role=Role.ADMIN)
@require_POST
def revoke_api_key(request, key_id):
    key = get_tenant_object(request.tenant, ApiKey, public_id=key_id)
    services.api_key_revoke(key=key)
    messages.success(request, f"Key “{key.name}” ({key.prefix}…) was revoked. Clients using it now get 401.")
    return redirect("accounts:api_keys", tenant_slug=request.tenant.slug)
