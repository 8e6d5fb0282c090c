"""Setting an account's or end user's owner (and an account's renewal date) by hand (events/owners.py)."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from accounts.models import Role, User
from accounts.scoping import get_tenant_object, tenant_view
from core.forms import add_service_errors

from . import owners
from .models import CustomerAccount, EndUser


class OwnerForm(forms.Form):
    owner = forms.TypedChoiceField(coerce=int, empty_value=None, required=False, label="Owner")
    renewal_date = forms.DateField(required=False, label="Renewal date", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, tenant, subject, **kwargs):
        initial = {"owner": subject.owner_id, "renewal_date": getattr(subject, "renewal_date", None)}
        super().__init__(*args, initial=initial, **kwargs)
        self.fields["owner"].choices = [("", "Nobody"), *owners.member_choices(tenant)]
        if not isinstance(subject, CustomerAccount):
            del self.fields["renewal_date"]


def owner_form(tenant, subject, data=None) -> OwnerForm:
    return OwnerForm(data, tenant=tenant, subject=subject)


def _save(request, subject, detail_url: str):
    form = owner_form(request.tenant, subject, request.POST)
    if form.is_valid():
        owner_id = form.cleaned_data["owner"]
        try:
            owners.subject_set_owner(
                tenant=request.tenant, subject=subject,
                owner=User.objects.filter(pk=owner_id).first() if owner_id else None,
                renewal_date=form.cleaned_data.get("renewal_date"),
            )
            messages.success(request, "Owner saved.")
        except ValidationError as error:
            add_service_errors(form, error)
    if form.errors:
        # The detail page shows the message; the choice list names every member, so a bad value is tampering.
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
    return redirect(detail_url, tenant_slug=request.tenant.slug, **{
        "account_id" if isinstance(subject, CustomerAccount) else "end_user_id": subject.public_id})


@tenant_view(role=Role.EDITOR)
@require_POST
def set_account_owner(request, account_id):
    account = get_tenant_object(request.tenant, CustomerAccount, public_id=account_id)
    return _save(request, account, "scoring:account_detail")


@tenant_view(role=Role.EDITOR)
@require_POST
def set_user_owner(request, end_user_id):
    end_user = get_tenant_object(request.tenant, EndUser, public_id=end_user_id)
    return _save(request, end_user, "scoring:user_detail")
