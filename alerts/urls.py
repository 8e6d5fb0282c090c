from django.urls import path

from . import digest_views, views

app_name = "alerts"

A = "alerts/"

# Routes outside a workspace: the development receiver the demo's webhook posts to (never in production).
# The view answers 404 unless DEBUG and ALERTS_ALLOW_LOCAL_TARGETS are both on.
urlpatterns = [
    path("dev/alerts-receiver/<uuid:endpoint_id>/", views.dev_receiver, name="dev_receiver"),
    # The signed one-click unsubscribe link of the digest emails.
    path("alerts/unsubscribe/<str:token>/", digest_views.unsubscribe, name="unsubscribe"),
]

# Pages of a workspace, mounted under /t/<slug>/ by engagement_site/urls.py.
tenant_urlpatterns = [
    path(A, views.rule_list, name="list"),
    path(A + "new/", views.rule_create, name="rule_create"),
    path(A + "rules/<uuid:rule_id>/", views.rule_detail, name="rule"),
    path(A + "rules/<uuid:rule_id>/pause/", views.rule_pause, name="rule_pause"),
    path(A + "rules/<uuid:rule_id>/delete/", views.rule_delete, name="rule_delete"),
    path(A + "rules/<uuid:rule_id>/test/", views.rule_test, name="rule_test"),
    path(A + "endpoints/", views.endpoint_list, name="endpoints"),
    path(A + "endpoints/<uuid:endpoint_id>/", views.endpoint_detail, name="endpoint"),
    path(A + "endpoints/<uuid:endpoint_id>/enable/", views.endpoint_enable, name="endpoint_enable"),
    path(A + "deliveries/<uuid:delivery_id>/replay/", views.delivery_replay, name="delivery_replay"),
    path(A + "digest/", digest_views.digest_settings, name="digest_settings"),
    path(A + "digest/preview/", digest_views.digest_preview, name="digest_preview"),
]
