from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

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

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", api_docs, name="api_docs"),
    path("api/v1/", include((api_v1, "api"))),
    path("", include("events.urls")),
    path("", include("surveys.urls")),
    # The tenant home is the insights dashboard (accounts must not import insights).
    path("t/<slug:tenant_slug>/", dashboard, name="tenant_home"),
    path("", include("insights.urls")),
    path("", include("accounts.urls")),
    path("", include("scoring.urls")),
]
