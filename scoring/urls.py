from django.urls import path

from . import views

app_name = "scoring"

T = "scoring/"

urlpatterns = []

# Under t/<slug:tenant_slug>/ (engagement_site/urls.py), all wrapped in accounts.scoping.tenant_view.
tenant_urlpatterns = [
    path(T, views.overview, name="overview"),
    path(T + "product.csv", views.product_csv, name="product_csv"),
    path(T + "how-scores-work/", views.formulas, name="formulas"),
    path(T + "models/", views.models, name="models"),
    path(T + "models/import/", views.import_model, name="import_model"),
    path(T + "models/<uuid:model_id>/", views.edit_model, name="edit_model"),
    path(T + "models/<uuid:model_id>/publish/", views.publish_model, name="publish_model"),
    path(T + "models/<uuid:model_id>/copy/", views.copy_model, name="copy_model"),
    path(T + "models/<uuid:model_id>/delete/", views.delete_model, name="delete_model"),
    path(T + "models/<uuid:model_id>/preview/", views.preview_model, name="preview_model"),
    path(T + "models/<uuid:model_id>/preview/tier-changes.csv", views.preview_changes_csv, name="preview_changes_csv"),
    path(T + "models/<uuid:model_id>/export.json", views.export_model, name="export_model"),
    path(T + "runs/", views.runs, name="runs"),
    path(T + "runs/<uuid:run_id>.json", views.run_status, name="run_status"),
    path(T + "runs/<uuid:run_id>/row", views.run_row, name="run_row"),
    path(T + "users/", views.users, name="users"),
    path(T + "users.csv", views.users_csv, name="users_csv"),
    path(T + "users/<uuid:end_user_id>/", views.user_detail, name="user_detail"),
    path(T + "accounts/", views.accounts, name="accounts"),
    path(T + "accounts.csv", views.accounts_csv, name="accounts_csv"),
    path(T + "accounts/<uuid:account_id>/", views.account_detail, name="account_detail"),
]
