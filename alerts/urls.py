from django.urls import path

from . import views

app_name = "alerts"

# Routes outside a workspace (e.g. a signed unsubscribe link).
urlpatterns = [
    path("alerts/unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]

# Pages of a workspace, mounted under /t/<slug>/ by engagement_site/urls.py.
tenant_urlpatterns = [
    path("alerts/digest/", views.digest_settings, name="digest_settings"),
    path("alerts/digest/preview/", views.digest_preview, name="digest_preview"),
]
