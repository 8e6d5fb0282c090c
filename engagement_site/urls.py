from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from accounts.api import TenantInfoApi

api_v1 = [
    path("tenant", TenantInfoApi.as_view(), name="tenant"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/", include((api_v1, "api"))),
    path("", include("events.urls")),
    path("", include("accounts.urls")),
]
