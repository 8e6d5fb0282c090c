"""URLs of the dashboard's parts and the insight pages; the dashboard itself is the
tenant home (`tenant_home`, in engagement_site/urls.py)."""

from django.urls import path

from . import views

app_name = "insights"

T = "t/<slug:tenant_slug>/"
I = T + "insights/"  # noqa: E741

urlpatterns = [
    path(T + "onboarding/", views.onboarding_page, name="onboarding"),
    path(T + "onboarding.json", views.onboarding_status, name="onboarding_status"),
    path(T + "dashboard/product.svg", views.product_chart, name="product_chart"),
    path(T + "dashboard/users.svg", views.users_chart, name="users_chart"),
    path(T + "dashboard/tiers.svg", views.tiers_chart, name="tiers_chart"),
    path(I + "growth/", views.growth, name="growth"),
    path(I + "growth.svg", views.growth_chart, name="growth_chart"),
    path(I + "growth.csv", views.growth_csv, name="growth_csv"),
    path(I + "transitions/", views.transitions, name="transitions"),
    path(I + "transitions.csv", views.transitions_csv, name="transitions_csv"),
    path(I + "adoption/", views.adoption, name="adoption"),
    path(I + "adoption.svg", views.adoption_chart, name="adoption_chart"),
    path(I + "adoption-trend.svg", views.adoption_trend_chart, name="adoption_trend_chart"),
    path(I + "adoption.csv", views.adoption_csv, name="adoption_csv"),
    path(I + "segments/", views.segments, name="segments"),
    path(I + "segments.svg", views.segments_chart, name="segments_chart"),
    path(I + "segments.csv", views.segments_csv, name="segments_csv"),
    path(I + "outcomes/", views.outcomes, name="outcomes"),
    path(I + "outcomes.svg", views.outcomes_chart, name="outcomes_chart"),
    path(I + "outcomes.csv", views.outcomes_csv, name="outcomes_csv"),
]
