from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

import accounts.urls
import alerts.urls
import events.urls
import insights.urls
import scoring.urls
import surveys.urls
from accounts.api import TenantInfoApi, not_found
from insights.views.dashboard import dashboard
from scoring import api as scoring_api

from .api_docs import api_docs

api_v1 = [
    path("tenant", TenantInfoApi.as_view(), name="tenant"),
    path("users", scoring_api.UserListApi.as_view(), name="users"),
    # Ids are matched whole, whatever they hold: any id the tracking API stores
    # (with "/", "?", "#", "%", spaces, newlines, a trailing slash...) is sent
    # percent-encoded and Django decodes it before resolving.
    re_path(r"^users/(?P<user_id>[\s\S]+)$", scoring_api.UserDetailApi.as_view(), name="user"),
    path("accounts", scoring_api.AccountListApi.as_view(), name="accounts"),
    re_path(r"^accounts/(?P<group_id>[\s\S]+)$", scoring_api.AccountDetailApi.as_view(), name="account"),
    path("product", scoring_api.ProductApi.as_view(), name="product"),
    path("model", scoring_api.ScoringModelApi.as_view(), name="model"),
    # Last: any other path under /api/v1/ is the API's JSON 404, not Django's HTML page.
    re_path(r"^(?P<path>[\s\S]*)$", not_found, name="not_found"),
]

# Every page of a workspace lives under this one prefix; tests/test_tenant_isolation.py walks
# everything below it and checks that each view is wrapped in accounts.scoping.tenant_view.
TENANT_PREFIX = "t/<slug:tenant_slug>/"


def app_urls(module):
    """An app's URLs in its own namespace: its routes, then its `tenant_urlpatterns` under TENANT_PREFIX."""
    patterns = [*module.urlpatterns, path(TENANT_PREFIX, include(module.tenant_urlpatterns))]
    return include((patterns, module.app_name))


urlpatterns = [
    # Browsers ask for /favicon.ico on pages that name no icon (the digest preview, plain-text answers).
    path("favicon.ico", RedirectView.as_view(url=static("img/favicon.svg"), permanent=True)),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", api_docs, name="api_docs"),
    path("api/v1/", include((api_v1, "api"))),
    path("", app_urls(events.urls)),
    path("", app_urls(surveys.urls)),
    # The tenant home is the insights dashboard (accounts must not import insights).
    path(TENANT_PREFIX, dashboard, name="tenant_home"),
    path("", app_urls(insights.urls)),
    path("", app_urls(accounts.urls)),
    path("", app_urls(scoring.urls)),
    path("", app_urls(alerts.urls)),
]
