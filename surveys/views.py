"""Survey pages. Thin: logic lives in services and selectors.

Tenant pages are wrapped in `tenant_view` (viewers read, editors write); the
public answering page `/s/<token>/` needs no login: the token is the access.
"""


from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Role
from accounts.scoping import get_tenant_object, run_in_tenant, tenant_view
from core.csv_export import csv_response
from core.forms import add_service_errors
from core.ratelimit import RateLimit
from core.site import site_url
from events.models import Activity

from . import selectors, services
from .forms import AnswerForm, InviteForm, SurveyForm, initial_from_response
from .models import ProposedActivity, Survey, SurveyInvitee, SurveyResponse, SurveyShareLink


def _survey(request, survey_id) -> Survey:
    return get_tenant_object(request.tenant, Survey, public_id=survey_id)


def _to_detail(survey: Survey):
    return redirect("surveys:detail", tenant_slug=survey.tenant.slug, survey_id=survey.public_id)


# --- List, create, edit ---------------------------------------------------------------


@tenant_view()
@require_GET
def survey_list(request):
    surveys = selectors.surveys_of(request.tenant)
    return render(request, "surveys/list.html", {"surveys": surveys, "can_edit": request.membership.can(Role.EDITOR)})


@tenant_view(role=Role.EDITOR)
@require_http_methods(["GET", "POST"])
def create_survey(request):
    tenant = request.tenant
    initial = {
        "title": f"What does an engaged user of {tenant.product_name} do?",
        "activities": list(Activity.objects.for_tenant(tenant).filter(test_only=False)),
        "allow_proposals": True,
    }
    form = SurveyForm(request.POST or None, tenant=tenant, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            survey = services.survey_create(tenant=tenant, created_by=request.user, **form.service_kwargs())
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Survey created. Now invite your teammates.")
            return _to_detail(survey)
    return render(request, "surveys/form.html", {"form": form, "survey": None}, status=400 if form.errors else 200)


@tenant_view(role=Role.EDITOR)
@require_http_methods(["GET", "POST"])
def edit_survey(request, survey_id):
    survey = _survey(request, survey_id)
    if request.method == "GET":
        try:
            services.survey_ensure_editable(survey=survey)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return _to_detail(survey)
    initial = {
        "title": survey.title,
        "question": survey.question,
        "closes_on": survey.closes_at.astimezone(request.tenant.tzinfo).date() if survey.closes_at else None,
        "activities": list(survey.candidate_activities()),
        "allow_proposals": survey.allow_proposals,
        "anonymous": survey.anonymous,
    }
    form = SurveyForm(request.POST or None, tenant=request.tenant, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.survey_update(survey=survey, **form.service_kwargs())
        except ValidationError as error:
            add_service_errors(form, error)
            survey.refresh_from_db()
        else:
            messages.success(request, "Survey saved.")
            return _to_detail(survey)
    return render(request, "surveys/form.html", {"form": form, "survey": survey}, status=400 if form.errors else 200)


def _detail_page(request, survey, invite_form=None, status=200, share_url=None):
    share_link = SurveyShareLink.objects.for_tenant(request.tenant).filter(survey=survey, revoked_at=None).first()
    context = {
        "survey": survey,
        "can_edit": request.membership.can(Role.EDITOR),
        "invite_form": invite_form or InviteForm(tenant=request.tenant),
        "invitees": SurveyInvitee.objects.for_tenant(request.tenant)
        .filter(survey=survey)
        .select_related("response", "membership__user"),
        "share_link": share_link,
        "share_url": services.survey_link_url(share_link.token()) if share_link else None,
        "rate": selectors.response_rate(survey=survey),
        "activities": survey.candidate_activities(),
        "scoring_model": _produced_scoring_model(survey),
    }
    return render(request, "surveys/detail.html", context, status=status)


@tenant_view()
@require_GET
def survey_detail(request, survey_id):
    return _detail_page(request, _survey(request, survey_id))


# --- Invitations, links, reminders, close -----------------------------------------------


@tenant_view(role=Role.EDITOR)
@require_POST
def invite(request, survey_id):
    survey = _survey(request, survey_id)
    form = InviteForm(request.POST, tenant=request.tenant)
    if form.is_valid():
        members = services.members_to_invite(
            tenant=request.tenant, departments=form.cleaned_data["departments"], members=form.cleaned_data["members"]
        )
        try:
            created = services.survey_invite(
                survey=survey, memberships=members, emails=form.cleaned_data["emails"], invited_by=request.user
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            skipped = len(members) + len(form.cleaned_data["emails"]) - len(created)
            note = f" ({skipped} already invited)" if skipped > 0 else ""
            messages.success(request, f"Invited {len(created)} people with a personal link{note}.")
            return _to_detail(survey)
    return _detail_page(request, survey, invite_form=form, status=400)


@tenant_view(role=Role.EDITOR)
@require_POST
def revoke_invitee(request, survey_id, invitee_id):
    survey = _survey(request, survey_id)
    invitee = get_tenant_object(request.tenant, SurveyInvitee, survey=survey, public_id=invitee_id)
    services.invitee_revoke(invitee=invitee)
    messages.success(request, f"The personal link of {invitee.email} no longer works.")
    return _to_detail(survey)


@tenant_view(role=Role.EDITOR)
@require_POST
def create_share_link(request, survey_id):
    survey = _survey(request, survey_id)
    try:
        services.share_link_create(survey=survey, created_by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return _detail_page(request, survey, status=400)
    messages.success(request, "New share link created; any previous one stopped working.")
    return _to_detail(survey)


@tenant_view(role=Role.EDITOR)
@require_POST
def revoke_share_link(request, survey_id):
    survey = _survey(request, survey_id)
    services.share_link_revoke(survey=survey)
    messages.success(request, "The share link was turned off.")
    return _to_detail(survey)


@tenant_view(role=Role.EDITOR)
@require_POST
def send_reminders(request, survey_id):
    survey = _survey(request, survey_id)
    try:
        result = services.survey_send_reminders(survey=survey)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return _detail_page(request, survey, status=400)
    text = f"Reminder sent to {result.sent} people who have not answered yet."
    if result.skipped:
        hours = int(services.REMINDER_COOLDOWN.total_seconds() // 3600)
        text += f" {result.skipped} skipped: reminded less than {hours} hours ago."
    messages.success(request, text)
    return redirect("surveys:response_rate", tenant_slug=request.tenant.slug, survey_id=survey.public_id)


@tenant_view(role=Role.EDITOR)
@require_POST
def close_survey(request, survey_id):
    survey = _survey(request, survey_id)
    services.survey_close(survey=survey)
    messages.success(request, "The survey is closed. Links now say so; results are final.")
    return _to_detail(survey)


@tenant_view()
@require_GET
def response_rate(request, survey_id):
    survey = _survey(request, survey_id)
    context = {
        "survey": survey,
        "rate": selectors.response_rate(survey=survey),
        "can_edit": request.membership.can(Role.EDITOR),
    }
    return render(request, "surveys/response_rate.html", context)


@never_cache
@tenant_view()
@require_GET
def response_rate_json(request, survey_id):
    survey = _survey(request, survey_id)
    return JsonResponse(selectors.response_rate(survey=survey))


# --- Results ---------------------------------------------------------------------------


def _sort(request) -> str:
    sort = request.GET.get("sort", "importance")
    return sort if sort in selectors.SORTS else "importance"


@tenant_view()
@require_GET
def results(request, survey_id):
    survey = _survey(request, survey_id)
    sort = _sort(request)
    stats = selectors.activity_stats(survey=survey, sort=sort)
    context = {
        "survey": survey,
        "sort": sort,
        "sorts": selectors.SORTS,
        "stats": stats,
        "heatmap": selectors.heatmap(survey=survey, stats=stats),
        "answers": selectors.answers_by_department(survey=survey),
        "proposals": selectors.proposal_groups(survey=survey),
        "response_count": SurveyResponse.objects.for_tenant(request.tenant).filter(survey=survey).count(),
        "can_edit": request.membership.can(Role.EDITOR),
    }
    return render(request, "surveys/results.html", context)


def _csv_cell(value):
    return f"{value:.2f}" if isinstance(value, float) else value


@tenant_view()
@require_GET
def results_csv(request, survey_id):
    survey = _survey(request, survey_id)
    stats = selectors.activity_stats(survey=survey, sort=_sort(request))
    departments = selectors.departments_answered(survey=survey)
    header = ["activity", "display_name", "ratings", "not_relevant", "mean", "median", "stddev", "disagreement"]
    header += [f"mean_{d}" for d in departments] + [f"ratings_{d}" for d in departments]

    def rows():
        for s in stats:
            cells = s.cells(departments)
            row = [s.activity.name, s.activity.display_name, s.count, s.not_relevant, s.mean, s.median, s.stddev]
            row += [s.disagreement] + [c.mean for c in cells] + [c.count for c in cells]
            yield [_csv_cell(v) for v in row]

    return csv_response(f"survey-{survey.public_id}-results.csv", header, rows())


@tenant_view(role=Role.EDITOR)
@require_POST
def accept_proposal(request, survey_id, proposal_id):
    survey = _survey(request, survey_id)
    proposal = get_tenant_object(request.tenant, ProposedActivity, survey=survey, public_id=proposal_id)
    activity = services.proposal_accept(proposal=proposal, accepted_by=request.user)
    messages.success(request, f"“{activity.name}” is in the catalog, not tracked yet: see the tracking plan.")
    return redirect(
        reverse("surveys:results", kwargs={"tenant_slug": request.tenant.slug, "survey_id": survey.public_id})
        + "#proposals"
    )


@tenant_view()
@require_GET
def tracking_plan(request):
    activities = [
        (activity, selectors.tracking_snippets(activity=activity))
        for activity in selectors.untracked_activities(tenant=request.tenant)
    ]
    return render(request, "surveys/tracking_plan.html", {"activities": activities, "site_url": site_url(request)})


# --- From results to weights ---------------------------------------------------------------


def _produced_scoring_model(survey: Survey):
    """The scoring model version the survey produced, with its link (None when there is none)."""
    model = survey.scoring_model
    if model is None:
        return None
    url = None
    try:
        url = reverse("scoring:edit_model", kwargs={"tenant_slug": survey.tenant.slug, "model_id": model.public_id})
    except NoReverseMatch:
        # The scoring pages may not expose that route (yet): show the version without a link.
        pass
    return {"model": model, "url": url}


@tenant_view(write_role=Role.EDITOR)
@require_http_methods(["GET", "POST"])
def propose_weights(request, survey_id):
    survey = _survey(request, survey_id)
    status = 200
    if request.method == "POST":
        try:
            draft = services.survey_create_draft_model(survey=survey, created_by=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            status = 400
        else:
            messages.success(
                request,
                f"Draft scoring model v{draft.version} created from this survey: "
                "adjust it if you like, preview it on real data, then publish it.",
            )
            # Straight on to the draft: the onboarding path is survey -> proposal -> draft -> preview -> publish.
            return redirect("scoring:edit_model", tenant_slug=request.tenant.slug, model_id=draft.public_id)
    context = {
        "survey": survey,
        "weights": services.survey_propose_weights(survey=survey),
        "window_days": services.RARITY_WINDOW_DAYS,
        "rarity_min": services.RARITY_MIN,
        "rarity_max": services.RARITY_MAX,
        "scoring_model": _produced_scoring_model(survey),
        "can_edit": request.membership.can(Role.EDITOR),
    }
    return render(request, "surveys/propose_weights.html", context, status=status)


# --- Public answering page -------------------------------------------------------------------


def client_ip(request) -> str:
    """The client address, trusting exactly NUM_PROXIES reverse proxies (as django-axes does)."""
    proxies = getattr(settings, "AXES_IPWARE_PROXY_COUNT", None) or 0
    if proxies:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


# Answers per IP per share link: a sliding hour, so a burst across a clock hour cannot pass twice the limit.
SHARE_LINK_LIMIT = RateLimit("survey-share", window=3600, sliding=True)


def share_link_allowed(request, link: SurveyShareLink) -> bool:
    """Count a submission on a share link from this IP; False past the configured limit (fails open)."""
    key = f"{link.public_id.hex}:{client_ip(request)}"
    return SHARE_LINK_LIMIT.hit(key, settings.SURVEY_SHARE_LINK_LIMIT_PER_HOUR).allowed


def _link_error(request, error: services.LinkError):
    context = {"reason": str(error), "survey": error.survey}
    if error.survey is None:
        return render(request, "surveys/public/link_invalid.html", context, status=error.status)
    return run_in_tenant(
        error.survey.tenant, render, request, "surveys/public/link_invalid.html", context, status=error.status
    )


@never_cache
@require_http_methods(["GET", "POST"])
def answer(request, token):
    try:
        resolved = services.link_resolve(token)
    except services.LinkError as error:
        return _link_error(request, error)
    # No login: the token names the tenant, whose transaction (RLS) the page runs in.
    return run_in_tenant(resolved.survey.tenant, _answer, request, resolved, token)


def _answer(request, resolved, token):
    survey, invitee = resolved.survey, resolved.invitee
    activities = list(survey.candidate_activities())
    existing = selectors.response_of(invitee)
    known_department = bool(invitee and invitee.membership_id and invitee.department)
    form_kwargs = {
        "survey": survey,
        "activities": activities,
        "ask_department": not known_department,
        "ask_name": invitee is None and not survey.anonymous,
    }
    if request.method == "GET":
        services.link_mark_opened(resolved)
        initial = initial_from_response(activities, existing) if existing else {}
        form = AnswerForm(initial=initial, **form_kwargs)
        return _answer_page(request, survey, form, token, existing)
    if resolved.share_link is not None and not share_link_allowed(request, resolved.share_link):
        return render(request, "surveys/public/rate_limited.html", {"survey": survey}, status=429)
    form = AnswerForm(request.POST, **form_kwargs)
    if form.is_valid():
        try:
            services.response_submit(resolved=resolved, **form.service_kwargs())
        except services.SurveyClosedError as error:
            return _link_error(request, services.LinkError(" ".join(error.messages), survey=survey))
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            return redirect("surveys:thanks", token=token)
    return _answer_page(request, survey, form, token, existing, status=400)


def _answer_page(request, survey, form, token, existing, status=200):
    context = {"survey": survey, "form": form, "token": token, "existing": existing}
    return render(request, "surveys/public/answer.html", context, status=status)


@never_cache
@require_GET
def thanks(request, token):
    try:
        resolved = services.link_resolve(token)
    except services.LinkError as error:
        return _link_error(request, error)
    context = {"survey": resolved.survey, "token": token, "personal": resolved.invitee is not None}
    return run_in_tenant(resolved.survey.tenant, render, request, "surveys/public/thanks.html", context)
