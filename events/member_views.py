"""Removing end users from a customer account by hand (admin+), one or a list, each after a confirmation.

A membership otherwise ends only on a group call with `context.membership = "ended"`
(events/services/memberships.py): ingestion never ends one on its own. GET shows what
will happen, POST does it (CSRF-protected, no script needed).
"""

import csv
import io

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.models import Role
from accounts.scoping import get_tenant_object, tenant_view

from .models import AccountMembership, CustomerAccount, EndUser
from .services.memberships import membership_end

MAX_IDS = 5000
MAX_UPLOAD_BYTES = 2 * 1024 * 1024


def _back(request, account):
    return redirect("scoring:account_detail", tenant_slug=request.tenant.slug, account_id=account.public_id)


def _is_member(tenant, account, end_user) -> bool:
    return AccountMembership.objects.for_tenant(tenant).filter(
        account=account, end_user=end_user, ended_at__isnull=True).exists()


@tenant_view(role=Role.ADMIN)
@require_http_methods(["GET", "POST"])
def remove_member(request, account_id, end_user_id):
    account = get_tenant_object(request.tenant, CustomerAccount, public_id=account_id)
    end_user = get_tenant_object(request.tenant, EndUser, public_id=end_user_id)
    if request.method == "GET":
        member = _is_member(request.tenant, account, end_user)
        return render(request, "events/remove_members.html", {
            "account": account, "members": [end_user] if member else [], "unknown": [] if member else [str(end_user)],
            "action": request.path})
    removed = membership_end(request.tenant, account, [end_user])
    if removed:
        messages.success(request, f"{end_user.display_name} is no longer a member of {account}.")
    else:
        messages.error(request, f"{end_user.display_name} was not a member of {account}: nothing changed.")
    return _back(request, account)


class UserIdsForm(forms.Form):
    user_ids = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}), label="userIds",
                               help_text="One per line; or a CSV file with a user_id column.")
    file = forms.FileField(required=False, label="CSV file")
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, confirmed_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.confirmed_ids = list(confirmed_ids)  # the confirmation page's hidden `user_id` fields

    def clean(self):
        data = super().clean()
        ids = [line.strip() for line in (data.get("user_ids") or "").splitlines() if line.strip()]
        ids += self.confirmed_ids
        upload = data.get("file")
        if upload is not None:
            ids += self._ids_from_csv(upload)
        ids = list(dict.fromkeys(ids))
        if not ids:
            raise forms.ValidationError("Give at least one userId (one per line, or a CSV with a user_id column).")
        if len(ids) > MAX_IDS:
            raise forms.ValidationError(f"At most {MAX_IDS:,} userIds at a time ({len(ids):,} given).")
        data["ids"] = ids
        return data

    def _ids_from_csv(self, upload) -> list[str]:
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(f"The file is over {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None
        try:
            reader = csv.DictReader(io.StringIO(text))
            column = next((c for c in reader.fieldnames or [] if c and c.strip().lower() == "user_id"), None)
            if column is None:
                raise forms.ValidationError("The CSV has no user_id column.")
            return [row[column].strip() for row in reader if (row.get(column) or "").strip()]
        except csv.Error as error:
            raise forms.ValidationError(f"The file is not readable as CSV: {error}.") from None


@tenant_view(role=Role.ADMIN)
@require_http_methods(["POST"])
def remove_members(request, account_id):
    """A list of userIds (pasted, or a CSV's user_id column): the first POST confirms, the second removes."""
    account = get_tenant_object(request.tenant, CustomerAccount, public_id=account_id)
    form = UserIdsForm(request.POST, request.FILES, confirmed_ids=request.POST.getlist("user_id"))
    if not form.is_valid():
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
        return _back(request, account)
    ids = form.cleaned_data["ids"]
    users = {u.user_id: u for u in EndUser.objects.for_tenant(request.tenant).filter(user_id__in=ids)}
    member_pks = set(AccountMembership.objects.for_tenant(request.tenant).filter(
        account=account, end_user__in=users.values(), ended_at__isnull=True).values_list("end_user_id", flat=True))
    members = [users[i] for i in ids if i in users and users[i].pk in member_pks]
    unknown = [i for i in ids if i not in users or users[i].pk not in member_pks]
    if not form.cleaned_data["confirm"]:
        return render(request, "events/remove_members.html", {
            "account": account, "members": members, "unknown": unknown, "action": request.path})
    removed = membership_end(request.tenant, account, members)
    messages.success(request, f"{len(removed)} end user{'s' if len(removed) != 1 else ''} removed from {account}.")
    return _back(request, account)
