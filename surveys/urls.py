from django.urls import path

from . import views

app_name = "surveys"

T = "surveys/"  # under t/<slug:tenant_slug>/ (engagement_site/urls.py)
S = T + "<uuid:survey_id>/"

urlpatterns = [
    # Public, no login: the token is the access (personal link or share link).
    path("s/<str:token>/", views.answer, name="answer"),
    path("s/<str:token>/thanks/", views.thanks, name="thanks"),
]

# Under t/<slug:tenant_slug>/, all wrapped in accounts.scoping.tenant_view.
tenant_urlpatterns = [
    path(T, views.survey_list, name="list"),
    path(T + "new/", views.create_survey, name="create"),
    path(T + "tracking-plan/", views.tracking_plan, name="tracking_plan"),
    path(S, views.survey_detail, name="detail"),
    path(S + "edit/", views.edit_survey, name="edit"),
    path(S + "invite/", views.invite, name="invite"),
    path(S + "invitees/<uuid:invitee_id>/revoke/", views.revoke_invitee, name="revoke_invitee"),
    path(S + "share-link/", views.create_share_link, name="create_share_link"),
    path(S + "share-link/revoke/", views.revoke_share_link, name="revoke_share_link"),
    path(S + "remind/", views.send_reminders, name="send_reminders"),
    path(S + "close/", views.close_survey, name="close"),
    path(S + "response-rate/", views.response_rate, name="response_rate"),
    path(S + "response-rate.json", views.response_rate_json, name="response_rate_json"),
    path(S + "results/", views.results, name="results"),
    path(S + "results.csv", views.results_csv, name="results_csv"),
    path(S + "proposals/<uuid:proposal_id>/accept/", views.accept_proposal, name="accept_proposal"),
    path(S + "weights/", views.propose_weights, name="propose_weights"),
]
