"""URLs of the dashboard's parts and the insight pages; the dashboard itself is the
tenant home (`tenant_home`, in engagement_site/urls.py)."""

from django.urls import path

from .views import adoption, dashboard, growth, outcomes, segments, transitions, truth

app_name = "insights"

I = "insights/"  # noqa: E741

urlpatterns = []

# Under t/<slug:tenant_slug>/ (engagement_site/urls.py), all wrapped in accounts.scoping.tenant_view.
tenant_urlpatterns = [
    path("onboarding/", dashboard.onboarding_page, name="onboarding"),
    path("onboarding.json", dashboard.onboarding_status, name="onboarding_status"),
    path(I + "growth/", growth.page, name="growth"),
    path(I + "growth.csv", growth.csv, name="growth_csv"),
    path(I + "transitions/", transitions.page, name="transitions"),
    path(I + "transitions.csv", transitions.csv, name="transitions_csv"),
    path(I + "transitions/moved/", transitions.members_page, name="transition_members"),
    path(I + "transitions/moved.csv", transitions.members_csv, name="transition_members_csv"),
    path(I + "adoption/", adoption.page, name="adoption"),
    path(I + "adoption.csv", adoption.csv, name="adoption_csv"),
    path(I + "segments/", segments.page, name="segments"),
    path(I + "segments.csv", segments.csv, name="segments_csv"),
    path(I + "outcomes/", outcomes.page, name="outcomes"),
    path(I + "outcomes.csv", outcomes.csv, name="outcomes_csv"),
    path(I + "truth/", truth.truth_page, name="truth"),
    path(I + "truth/retention-by-activity.csv", truth.truth_csv, name="truth_csv"),
    path(I + "truth/draft/", truth.truth_draft, name="truth_draft"),
    path(I + "truth/backtest/<uuid:model_id>/", truth.backtest_page, name="backtest"),
]
