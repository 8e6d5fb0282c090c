from django.urls import path, re_path

from . import api, cdn, member_views, owner_views, views, wire

app_name = "events"

# One pattern with an optional trailing slash: no path ever redirects, because
# clients replay a redirected POST as a GET and lose the events.
urlpatterns = [
    re_path(
        rf"^v1/(?P<kind>{'|'.join(sorted(wire.ENDPOINT_KINDS))})/?$",
        api.track_endpoint,
        name="track",
    ),
    # Segment's Webhook destination: the write key in the Basic auth header or in the URL.
    re_path(r"^v1/webhook/?$", api.webhook_endpoint, name="webhook"),
    re_path(r"^v1/webhook/(?P<write_key>[^/]+)/?$", api.webhook_endpoint, name="webhook_key"),
    re_path(r"^v1/projects/(?P<write_key>[^/]+)/settings/?$", api.project_settings, name="project_settings"),
    # analytics.js for the standard snippet with `analytics._cdn` pointed here (events/cdn.py).
    re_path(r"^analytics\.js/v1/(?P<write_key>[^/]+)/(?P<name>analytics\.min\.js|standalone\.js\.map)$",
            cdn.loader, name="analytics_js"),
    re_path(r"^analytics-next/bundles/(?P<name>[A-Za-z0-9_-]+\.bundle\.[0-9a-f]+\.js(?:\.map)?)$",
            cdn.bundle, name="analytics_bundle"),
    # Last of the /v1/ routes: any other path there (a newline included) is a JSON 404 with CORS headers.
    re_path(r"^v1/(?P<path>[\s\S]*)$", api.not_found, name="v1_not_found"),
]

# Under t/<slug:tenant_slug>/ (engagement_site/urls.py), all wrapped in accounts.scoping.tenant_view.
tenant_urlpatterns = [
    path("events/catalog/", views.catalog, name="catalog"),
    path("events/catalog/<uuid:activity_id>/", views.update_activity, name="update_activity"),
    path("events/catalog/<uuid:activity_id>/keep/", views.keep_activity, name="keep_activity"),
    path("events/debugger/", views.debugger, name="debugger"),
    path("events/debugger/feed", views.debugger_feed, name="debugger_feed"),
    path("events/setup/", views.setup, name="setup"),
    path("events/import/", views.imports, name="imports"),
    path("events/import/<uuid:import_id>/", views.import_detail, name="import_detail"),
    path("events/import/<uuid:import_id>/start/", views.start_import, name="start_import"),
    path("events/import/<uuid:import_id>/status", views.import_status, name="import_status"),
    path("events/import/<uuid:import_id>/progress", views.import_progress, name="import_progress"),
    path("events/accounts/<uuid:account_id>/owner/", owner_views.set_account_owner, name="set_account_owner"),
    path("events/accounts/<uuid:account_id>/members/<uuid:end_user_id>/remove/", member_views.remove_member,
         name="remove_account_member"),
    path("events/accounts/<uuid:account_id>/members/remove/", member_views.remove_members,
         name="remove_account_members"),
    path("events/users/<uuid:end_user_id>/owner/", owner_views.set_user_owner, name="set_user_owner"),
]
