"""A URLconf for test_settings.py: one page with an inline script that uses the CSP nonce."""

from django.http import HttpResponse
from django.template import engines
from django.urls import include, path


def inline_script(request):
    template = engines["django"].from_string('<script nonce="{{ request.csp_nonce }}">window.ok = 1;</script>')
    return HttpResponse(template.render({}, request))


urlpatterns = [
    path("inline-script/", inline_script),
    path("", include("engagement_site.urls")),
]
