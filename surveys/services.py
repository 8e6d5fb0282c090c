"""Writes for surveys: create, edit, invite, answer, remind, close, accept proposals, propose weights."""

import logging
import math
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F, Sum
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts import rls
from accounts.models import Department, Membership, Tenant, User, hash_token
from core.site import site_url
from events.models import Activity, DailyActivityCount

from .models import (
    PERSONAL_PREFIX,
    SHARE_PREFIX,
    ActivityRating,
    ProposedActivity,
    Survey,
    SurveyActivity,
    SurveyInvitee,
    SurveyResponse,
    SurveyShareLink,
    normalize_name,
)

log = logging.getLogger(__name__)

MAX_EMAILS_PER_INVITE = 500


# --- Surveys --------------------------------------------------------------------


def default_question_for(tenant: Tenant) -> str:
    return f"An engaged user of {tenant.product_name} does…"


def _set_activities(survey: Survey, activities: list[Activity]) -> None:
    for activity in activities:
        if activity.tenant_id != survey.tenant_id:
            raise ValidationError({"activities": "Choose activities of this workspace."})
    SurveyActivity.objects.for_tenant(survey.tenant).filter(survey=survey).exclude(
        activity__in=[a.pk for a in activities]
    ).delete()
    for position, activity in enumerate(activities):
        SurveyActivity.objects.update_or_create(
            tenant=survey.tenant, survey=survey, activity=activity, defaults={"position": position}
        )


@transaction.atomic
def survey_create(
    *,
    tenant: Tenant,
    title: str,
    question: str = "",
    activities: list[Activity],
    closes_at=None,
    allow_proposals: bool = True,
    anonymous: bool = False,
    created_by: User | None = None,
) -> Survey:
    survey = Survey(
        tenant=tenant,
        title=title.strip(),
        question=question.strip() or default_question_for(tenant),
        closes_at=closes_at,
        allow_proposals=allow_proposals,
        anonymous=anonymous,
        created_by=created_by,
    )
    survey.full_clean()
    survey.save()
    _set_activities(survey, activities)
    return survey


def survey_ensure_editable(*, survey: Survey) -> None:
    """Refuse to change a closed survey (closed by an editor or past its closing date): results are final."""
    closed_since = survey.closed_since
    if closed_since is None:
        return
    day = timezone.localtime(closed_since, survey.tenant.tzinfo).date()
    raise ValidationError(f"This survey closed on {day:%Y-%m-%d}: a closed survey can't be changed.")


@transaction.atomic
def survey_update(
    *,
    survey: Survey,
    title: str,
    question: str,
    activities: list[Activity],
    closes_at=None,
    allow_proposals: bool = True,
    anonymous: bool = False,
) -> Survey:
    # Re-read under a row lock: a close racing this edit must win, and a survey past its
    # closing date must not be reopened by moving the date.
    survey_ensure_editable(survey=Survey.objects.for_tenant(survey.tenant_id).select_for_update().select_related("tenant").get(pk=survey.pk))
    if anonymous != survey.anonymous and survey.responses.exists():
        # Respondents answered under the promise they were given; never flip it afterwards.
        raise ValidationError({"anonymous": "Anonymity can't change once answers have arrived."})
    survey.title, survey.question = title.strip(), question.strip() or default_question_for(survey.tenant)
    survey.closes_at, survey.allow_proposals, survey.anonymous = closes_at, allow_proposals, anonymous
    survey.full_clean()
    survey.save()
    _set_activities(survey, activities)
    return survey


def survey_close(*, survey: Survey) -> Survey:
    if survey.closed_at is None:
        survey.closed_at = timezone.now()
        survey.save(update_fields=["closed_at"])
    return survey


# --- Links ----------------------------------------------------------------------


def survey_link_url(token: str) -> str:
    return site_url() + reverse("surveys:answer", args=[token])


@transaction.atomic
def share_link_create(*, survey: Survey, created_by: User | None = None) -> SurveyShareLink:
    """A new share link; the previous one stops working (one live link per survey)."""
    if survey.is_closed:
        raise ValidationError("The survey is closed.")
    now = timezone.now()
    SurveyShareLink.objects.for_tenant(survey.tenant).filter(survey=survey, revoked_at=None).update(revoked_at=now)
    link = SurveyShareLink(tenant=survey.tenant, survey=survey, created_by=created_by)
    link.token_hash = hash_token(link.token())
    link.full_clean()
    link.save()
    return link


def share_link_revoke(*, survey: Survey) -> int:
    return (
        SurveyShareLink.objects.for_tenant(survey.tenant)
        .filter(survey=survey, revoked_at=None)
        .update(revoked_at=timezone.now())
    )


class LinkError(Exception):
    """A survey link that can't be used; `status` is the HTTP answer (404 unknown, 410 gone)."""

    def __init__(self, message: str, status: int = 410, survey: Survey | None = None):
        super().__init__(message)
        self.status, self.survey = status, survey


@dataclass
class ResolvedLink:
    survey: Survey
    invitee: SurveyInvitee | None = None
    share_link: SurveyShareLink | None = None


def link_resolve(token: str) -> ResolvedLink:
    """The survey (and invitee or share link) a public token opens, or LinkError saying why not.

    The one lookup not scoped by `for_tenant`: a visitor of /s/<token>/ has no
    tenant yet; the token, 192 random-looking bits, is what names it (so the
    lookup is an explicit row-level security bypass; the page then runs in the
    survey's tenant).
    """
    if token.startswith(PERSONAL_PREFIX):
        with rls.bypass("survey token lookup"):
            invitee = (
                SurveyInvitee.objects.unscoped().select_related("survey__tenant", "membership")
                .filter(token_hash=hash_token(token))
                .first()
            )
        if invitee is None:
            raise LinkError("This survey link is not valid. Check that you copied all of it.", status=404)
        if invitee.revoked_at:
            raise LinkError("This invitation was withdrawn.", survey=invitee.survey)
        resolved = ResolvedLink(survey=invitee.survey, invitee=invitee)
    elif token.startswith(SHARE_PREFIX):
        with rls.bypass("survey token lookup"):
            link = (
                SurveyShareLink.objects.unscoped().select_related("survey__tenant")
                .filter(token_hash=hash_token(token)).first()
            )
        if link is None:
            raise LinkError("This survey link is not valid. Check that you copied all of it.", status=404)
        if link.revoked_at:
            raise LinkError("This share link was turned off by the survey's organisers.", survey=link.survey)
        resolved = ResolvedLink(survey=link.survey, share_link=link)
    else:
        raise LinkError("This survey link is not valid. Check that you copied all of it.", status=404)
    if resolved.survey.is_closed:
        raise LinkError("This survey is closed: answers are no longer accepted. Thank you!", survey=resolved.survey)
    return resolved


def link_mark_opened(resolved: ResolvedLink) -> None:
    if resolved.invitee is not None and resolved.invitee.opened_at is None:
        invitee = resolved.invitee
        SurveyInvitee.objects.for_tenant(invitee.tenant_id).filter(pk=invitee.pk, opened_at=None).update(
            opened_at=timezone.now()
        )
    elif resolved.share_link is not None:
        link = resolved.share_link
        SurveyShareLink.objects.for_tenant(link.tenant_id).filter(pk=link.pk).update(open_count=F("open_count") + 1)


# --- Invitations and reminders ----------------------------------------------------


def parse_emails(text: str) -> list[str]:
    """Split a pasted list (commas, semicolons, spaces, lines); every address must be valid."""
    raw = [part.strip().lower() for part in text.replace(";", ",").replace("\n", ",").split(",")]
    emails, bad = [], []
    for part in (p for chunk in raw for p in chunk.split()):
        try:
            validate_email(part)
        except ValidationError:
            bad.append(part)
        else:
            if part not in emails:
                emails.append(part)
    if bad:
        raise ValidationError(f"Not valid email addresses: {', '.join(bad[:5])}.")
    if len(emails) > MAX_EMAILS_PER_INVITE:
        raise ValidationError(f"At most {MAX_EMAILS_PER_INVITE} addresses at once.")
    return emails


def _send_links(invitees: list[SurveyInvitee], template: str, subject: str) -> None:
    """Send each invitee their own link, after commit (a rolled-back invite leaves no email)."""
    if not invitees:
        return
    # A title with a line break would make the header invalid (BadHeaderError).
    subject = " ".join(subject.split())
    messages = []
    for invitee in invitees:
        survey = invitee.survey
        url = survey_link_url(invitee.token())
        context = {"survey": survey, "tenant": survey.tenant, "invitee": invitee, "url": url}
        body = render_to_string(template, context)
        messages.append(EmailMessage(subject=subject, body=body, to=[invitee.email]))

    def send():
        # The invitees are saved; a mail server failure must not turn the page into a
        # 500. It is logged, and "send reminders" re-sends the same links later.
        try:
            with get_connection() as connection:
                connection.send_messages(messages)
        except Exception:
            log.exception("could not send %d survey emails", len(messages))

    transaction.on_commit(send)


@transaction.atomic
def survey_invite(
    *,
    survey: Survey,
    memberships: list[Membership] = (),
    emails: list[str] = (),
    invited_by: User | None = None,
) -> list[SurveyInvitee]:
    """Invite members and/or email addresses; someone already invited is skipped. Returns the new invitees."""
    if survey.is_closed:
        raise ValidationError("The survey is closed: nobody can be invited any more.")
    emails = [e.strip().lower() for e in emails]
    wanted: dict[str, Membership | None] = {}
    for membership in memberships:
        if membership.tenant_id != survey.tenant_id:
            raise ValidationError({"members": "Choose members of this workspace."})
        wanted[membership.user.email.lower()] = membership
    members_by_email = {
        m.user.email.lower(): m
        for m in Membership.objects.for_tenant(survey.tenant).select_related("user").filter(user__email__in=emails)
    }
    for email in emails:
        wanted.setdefault(email, members_by_email.get(email))
    if not wanted:
        raise ValidationError("Choose at least one member, department or email address.")
    existing = set(
        SurveyInvitee.objects.for_tenant(survey.tenant).filter(survey=survey).values_list("email", flat=True)
    )
    created = []
    for email, membership in wanted.items():
        if email in existing:
            continue
        invitee = SurveyInvitee(
            tenant=survey.tenant,
            survey=survey,
            email=email,
            membership=membership,
            department=membership.department if membership else "",
            invited_by=invited_by,
        )
        invitee.token_hash = hash_token(invitee.token())
        invitee.full_clean()
        invitee.save()
        created.append(invitee)
    _send_links(created, "surveys/email/invitation.txt", f"{survey.tenant.name}: {survey.title}")
    return created


def members_to_invite(*, tenant: Tenant, departments: list[str], members: list[Membership]) -> list[Membership]:
    chosen = {m.pk: m for m in members}
    if departments:
        for m in Membership.objects.for_tenant(tenant).select_related("user").filter(department__in=departments):
            chosen.setdefault(m.pk, m)
    return list(chosen.values())


# Clicking "remind" twice (or two editors clicking it) must not mail people twice a day.
REMINDER_COOLDOWN = timedelta(hours=24)


@dataclass
class ReminderResult:
    sent: int
    skipped: int  # not answered yet, but reminded less than REMINDER_COOLDOWN ago


@transaction.atomic
def survey_send_reminders(*, survey: Survey) -> ReminderResult:
    """Email every invitee who has not answered yet, except those reminded in the last 24 hours."""
    if survey.is_closed:
        raise ValidationError("The survey is closed: there is nothing to remind anyone of.")
    pending = list(
        SurveyInvitee.objects.for_tenant(survey.tenant)
        # Lock only the invitee rows: the response join is an outer join, which PostgreSQL can't lock.
        # The lock also makes two simultaneous clicks send one batch: the second sees the new timestamps.
        .select_for_update(of=("self",))
        .filter(survey=survey, revoked_at=None, response__isnull=True)
        .select_related("survey__tenant")
    )
    now = timezone.now()
    due = [i for i in pending if i.last_reminded_at is None or i.last_reminded_at <= now - REMINDER_COOLDOWN]
    for invitee in due:
        invitee.last_reminded_at, invitee.reminder_count = now, invitee.reminder_count + 1
        invitee.save(update_fields=["last_reminded_at", "reminder_count"])
    _send_links(due, "surveys/email/reminder.txt", f"Reminder: {survey.title}")
    return ReminderResult(sent=len(due), skipped=len(pending) - len(due))


def invitee_revoke(*, invitee: SurveyInvitee) -> None:
    if invitee.revoked_at is None:
        invitee.revoked_at = timezone.now()
        invitee.save(update_fields=["revoked_at"])


# --- Answering ------------------------------------------------------------------


class SurveyClosedError(ValidationError):
    pass


@dataclass
class Proposal:
    name: str
    description: str = ""
    importance: int | None = None


@transaction.atomic
def response_submit(
    *,
    resolved: ResolvedLink,
    department: str,
    answer: str,
    ratings: dict[int, int | None],
    proposals: list[Proposal] = (),
    comment: str = "",
    respondent_name: str = "",
) -> SurveyResponse:
    """Store an answer. A personal link has one response, replaced on each submit until the survey closes."""
    survey = Survey.objects.for_tenant(resolved.survey.tenant_id).select_for_update().get(pk=resolved.survey.pk)
    if survey.is_closed:
        raise SurveyClosedError("This survey is closed: answers are no longer accepted.")
    invitee = resolved.invitee
    response = None
    if invitee is not None:
        # Lock the invitee so two tabs submitting at once still make one response.
        invitee = SurveyInvitee.objects.for_tenant(invitee.tenant_id).select_for_update().get(pk=invitee.pk)
        response = SurveyResponse.objects.for_tenant(invitee.tenant_id).filter(invitee=invitee).first()
        if invitee.membership_id and invitee.department:
            department = invitee.department
    if department not in Department.values:
        raise ValidationError({"department": "Choose your department."})
    candidates = {a.pk: a for a in survey.candidate_activities()}
    unknown = set(ratings) - set(candidates)
    if unknown:
        raise ValidationError("Rate only the activities of this survey.")
    if proposals and not survey.allow_proposals:
        raise ValidationError("This survey does not take new activities.")
    now = timezone.now()
    if response is None:
        response = SurveyResponse(
            tenant=survey.tenant, survey=survey, invitee=invitee, share_link=resolved.share_link, submitted_at=now
        )
    response.department, response.answer, response.comment = department, answer.strip(), comment.strip()
    response.respondent_name = "" if survey.anonymous else respondent_name.strip()
    response.updated_at = now
    response.full_clean()
    response.save()
    if invitee is not None and invitee.department != department:
        invitee.department = department
        invitee.save(update_fields=["department"])
    _store_ratings(response, ratings)
    _store_proposals(response, proposals)
    return response


def _store_ratings(response: SurveyResponse, ratings: dict[int, int | None]) -> None:
    response.ratings.all().delete()
    rows = [
        ActivityRating(tenant=response.tenant, response=response, activity_id=activity_id, importance=importance)
        for activity_id, importance in ratings.items()
    ]
    for row in rows:
        # Range checks only: the foreign keys were checked against the survey above.
        row.full_clean(exclude=["tenant", "response", "activity"])
    ActivityRating.objects.bulk_create(rows)


def _store_proposals(response: SurveyResponse, proposals: list[Proposal]) -> None:
    # Accepted proposals are already in the catalog: keep them, replace the rest.
    response.proposals.filter(accepted_at=None).delete()
    kept = set(response.proposals.values_list("normalized_name", flat=True))
    for proposal in proposals:
        key = normalize_name(proposal.name)
        if not key or key in kept:
            continue
        kept.add(key)
        row = ProposedActivity(
            tenant=response.tenant,
            survey=response.survey,
            response=response,
            name=" ".join(proposal.name.split()),
            normalized_name=key,
            description=proposal.description.strip(),
            importance=proposal.importance,
        )
        row.full_clean()
        row.save()


# --- Proposed activities ----------------------------------------------------------


@transaction.atomic
def proposal_accept(*, proposal: ProposedActivity, accepted_by: User | None = None) -> Activity:
    """Put a proposed activity into the catalog ("not tracked yet" until events arrive).

    Every proposal of the survey with the same name is marked accepted; an open
    survey also gets it as a candidate so later respondents rate it.
    """
    tenant, survey = proposal.tenant, proposal.survey
    # An existing catalog entry spelled differently ("printed album") is the same activity.
    activity = Activity.objects.for_tenant(tenant).filter(name__iexact=proposal.name).first()
    if activity is None:
        activity, _ = Activity.objects.get_or_create(
            tenant=tenant, name=proposal.name, defaults={"description": proposal.description}
        )
    ProposedActivity.objects.for_tenant(tenant).filter(
        survey=survey, normalized_name=proposal.normalized_name, accepted_at=None
    ).update(accepted_activity=activity, accepted_at=timezone.now(), accepted_by=accepted_by)
    if not survey.is_closed:
        position = SurveyActivity.objects.for_tenant(tenant).filter(survey=survey).count()
        SurveyActivity.objects.get_or_create(
            tenant=tenant, survey=survey, activity=activity, defaults={"position": position}
        )
    return activity


# --- Propose weights ----------------------------------------------------------------

# The formula shown on the proposal page and documented in docs/surveys.md.
RARITY_WINDOW_DAYS = 30
RARITY_MIN, RARITY_MAX = 0.5, 3.0
RARITY_UNKNOWN = 1.0


@dataclass
class ProposedWeight:
    activity: Activity
    points: int
    importance_mean: float | None
    rating_count: int
    share: float | None  # share of the tenant's events over the window; None when untracked
    rarity: float
    untracked: bool  # not tracked yet (no event ever): points given, but flagged
    proposed: bool = False  # accepted from respondents' proposals and not rated as a candidate

    @property
    def flags(self) -> list[str]:
        flags = []
        if self.proposed:
            flags.append("proposed by respondents")
        if self.untracked:
            flags.append("not tracked yet")
        elif not self.share:
            flags.append(f"no events in the last {RARITY_WINDOW_DAYS} days")
        if not self.rating_count:
            flags.append("nobody rated it")
        return flags


def rarity_for_share(share: float | None) -> float:
    """rarity = clamp(log10(1 / share), 0.5, 3): 10 % of events → 1, 1 % → 2, 0.1 % or less → 3."""
    if share is None:
        return RARITY_UNKNOWN
    if share <= 0:
        return RARITY_MAX
    return min(RARITY_MAX, max(RARITY_MIN, math.log10(1 / share)))


def points_for(importance_mean: float | None, rarity: float) -> int:
    if importance_mean is None:
        return 0
    # Half away from zero (not Python's banker's rounding), so 12.5 gives 13 as on the page.
    return int(math.floor(importance_mean * 10 * rarity + 0.5))


def event_shares(*, tenant: Tenant, days: int = RARITY_WINDOW_DAYS) -> dict[int, float]:
    """Each activity's share of the tenant's events over the last `days` tenant days (one query)."""
    since = tenant.today() - timedelta(days=days - 1)
    rows = (
        DailyActivityCount.objects.for_tenant(tenant)
        .filter(day__gte=since)
        .values("activity_id")
        .annotate(total=Sum("count"))
    )
    totals = {row["activity_id"]: row["total"] for row in rows}
    grand_total = sum(totals.values())
    if not grand_total:
        return {}
    return {activity_id: total / grand_total for activity_id, total in totals.items()}


def survey_propose_weights(*, survey: Survey) -> list[ProposedWeight]:
    """points = round(mean importance x 10 x rarity) for every candidate and accepted proposal (pure computation).

    An activity respondents proposed and an editor accepted counts too, even when it
    was accepted after the close and nobody rated it as a candidate: its importance is
    the one its proposers gave it (see `selectors.weight_inputs`).
    """
    from .selectors import weight_inputs

    shares = event_shares(tenant=survey.tenant)
    any_events = bool(shares)
    proposal = []
    for stat in weight_inputs(survey=survey):
        activity = stat.activity
        untracked = not activity.is_tracked
        if untracked or not any_events:
            share = None
        else:
            share = shares.get(activity.pk, 0.0)
        rarity = rarity_for_share(share)
        proposal.append(
            ProposedWeight(
                activity=activity,
                points=points_for(stat.mean, rarity),
                importance_mean=stat.mean,
                rating_count=stat.count,
                share=share,
                rarity=round(rarity, 3),
                untracked=untracked,
                proposed=not stat.candidate,
            )
        )
    proposal.sort(key=lambda w: (-w.points, w.activity.name))
    return proposal


@transaction.atomic
def _leftover_draft(tenant):
    """Before any version was published, the draft no survey produced (e.g. the starting model):
    the proposal takes its place, so the first published version is v1, not v2."""
    from scoring.models import ModelStatus, ScoringModel

    models = ScoringModel.objects.for_tenant(tenant)
    if models.exclude(status=ModelStatus.DRAFT).exists():
        return None
    return models.filter(status=ModelStatus.DRAFT, source_surveys__isnull=True).order_by("version").first()


@transaction.atomic  # the survey row is locked until its draft is recorded on it
def survey_create_draft_model(*, survey: Survey, created_by: User | None = None):
    """Create a draft scoring model from the weights proposal and remember it on the survey.

    The draft starts from the published version's settings (window, cap, tiers;
    `scoring_model_create_draft` copies them) and its points are replaced by the
    proposal's. Activities the proposal gives 0 points are left out. A survey
    produces at most one model version at a time. Before anything was published,
    a draft no survey produced is reused (`_leftover_draft`).
    """
    from scoring.services import scoring_model_create_draft, scoring_model_update

    survey = Survey.objects.for_tenant(survey.tenant_id).select_for_update().get(pk=survey.pk)
    if survey.scoring_model_id is not None:
        # One survey, one model version: the published version keeps pointing at its survey.
        # Deleting that draft on the scoring pages frees the survey to propose again.
        raise ValidationError(f"This survey already produced scoring model {survey.scoring_model}: adjust that one.")
    weights = survey_propose_weights(survey=survey)
    points = {w.activity.pk: w.points for w in weights if w.points > 0}
    if not points:
        raise ValidationError("No activity has points yet: the survey needs ratings first.")
    draft = _leftover_draft(survey.tenant) or scoring_model_create_draft(tenant=survey.tenant, created_by=created_by)
    name = f"From survey: {survey.title}"[:100]
    draft = scoring_model_update(model=draft, points=points, name=name)
    survey.scoring_model = draft
    survey.save(update_fields=["scoring_model"])
    return draft
