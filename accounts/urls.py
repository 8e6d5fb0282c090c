from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from . import views
from .forms import LoginForm

app_name = "accounts"

reset_done = reverse_lazy("accounts:password_reset_done")
reset_complete = reverse_lazy("accounts:password_reset_complete")

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path(
        "login/",
        auth_views.LoginView.as_view(authentication_form=LoginForm, redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password-reset/",
        auth_views.PasswordResetView.as_view(
            success_url=reset_done,
            email_template_name="registration/password_reset_email.txt",
            subject_template_name="registration/password_reset_subject.txt",
        ),
        name="password_reset",
    ),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(success_url=reset_complete),
        name="password_reset_confirm",
    ),
    path("password-reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("tenants/", views.switch_tenant, name="switch_tenant"),
    path("tenants/new/", views.create_tenant, name="create_tenant"),
    path("invite/<str:token>/", views.accept_invitation, name="accept_invitation"),
]

# Under t/<slug:tenant_slug>/ (engagement_site/urls.py), all wrapped in accounts.scoping.tenant_view.
tenant_urlpatterns = [
    path("settings/", views.tenant_settings, name="tenant_settings"),
    path("settings/delete/", views.delete_tenant, name="delete_tenant"),
    path("settings/members/", views.members, name="members"),
    path("settings/members/<uuid:member_id>/", views.update_member, name="update_member"),
    path("settings/members/<uuid:member_id>/remove/", views.remove_member, name="remove_member"),
    path(
        "settings/invitations/<uuid:invitation_id>/revoke/",
        views.revoke_invitation,
        name="revoke_invitation",
    ),
    path("settings/api-keys/", views.api_keys, name="api_keys"),
    path("settings/api-keys/<uuid:key_id>/revoke/", views.revoke_api_key, name="revoke_api_key"),
]
