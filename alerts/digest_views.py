"""Digest pages: a member's own digest settings, the browser preview, and the signed unsubscribe link."""

from csp.decorators import csp_update
from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from accounts import rls
from accounts.scoping import tenant_view

from . import digest
from .models import DigestFrequency


class FrequencyForm(forms.Form):
    frequency = forms.ChoiceField(choices=DigestFrequency.choices, widget=forms.RadioSelect, label="Send me a digest")


@tenant_view()
@require_http_methods(["GET", "POST"])
def digest_settings(request):
    """Every member chooses their own digest (viewers too: it is their mailbox)."""
    sub = digest.subscription_of(request.membership)
    form = FrequencyForm(request.POST or None, initial={"frequency": sub.frequency})
    if request.method == "POST" and form.is_valid():
        digest.digest_set_frequency(membership=request.membership, frequency=form.cleaned_data["frequency"])
        messages.success(request, "Digest settings saved.")
        return redirect("alerts:digest_settings", tenant_slug=request.tenant.slug)
    context = {"form": form, "subscription": sub, "all_accounts": request.membership.can("admin"),
               "digest_hour": settings.DIGEST_HOUR}
    return render(request, "alerts/digest_settings.html", context, status=400 if form.errors else 200)


# The preview is the email itself, styled inline as mail clients need: its one response lets inline
# styles (never scripts) through the CSP.
@csp_update({"style-src": ["'unsafe-inline'"]})
@tenant_view()
@require_GET
def digest_preview(request):
    """The member's digest as it would be sent now (HTML, or ?format=text for the plain-text part)."""
    sub = digest.subscription_of(request.membership)
    request.membership._digest = sub
    found = digest.digest_for(request.membership)
    if found is None:
        return render(request, "alerts/digest_empty.html")
    found.unsubscribe_url = digest.unsubscribe_url(sub)
    text, html = digest.render_digest(found)
    if request.GET.get("format") == "text":
        return HttpResponse(text, content_type="text/plain; charset=utf-8")
    return HttpResponse(html)


# The signed link is the credential (no login): mail clients' one-click POST (RFC 8058) carries no
# CSRF token. A GET only shows the button, so a mail scanner fetching links unsubscribes nobody.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token):
    try:
        with rls.bypass("unsubscribe link: the signed token names the subscription"):
            sub = digest.subscription_for_token(token)
    except digest.BadLink as error:
        return render(request, "alerts/unsubscribe.html", {"error": str(error)}, status=400)
    tenant = sub.membership.tenant
    if request.method == "POST":
        with rls.tenant_context(tenant):
            digest.unsubscribe(sub)
        return render(request, "alerts/unsubscribe.html", {"done": True, "tenant": tenant})
    return render(request, "alerts/unsubscribe.html", {"tenant": tenant, "email": sub.membership.user.email})
