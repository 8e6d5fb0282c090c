"""The demo tenant's team survey: closed, ~25 answers from departments that disagree.

Sales values invites and social posts, product values editing and sharing,
finance values what people pay for (the Pro editor, upgrades), marketing values
email and social reach, customer success values steady use. Deterministic
(seeded random) and idempotent: a second run finds the survey and stops.
Seeded before scoring, so the demo's published model comes from this survey's
weights proposal.
"""

import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Department, Membership, Role, Tenant, hash_token
from events.demo import ACTIVITIES  # the survey rates the demo's own activities, in this order
from events.models import Activity

from . import services
from .models import ProposedActivity, Survey, SurveyInvitee, SurveyResponse

DEMO_SURVEY_TITLE = "What does an engaged user of PhotoShare do?"
SEED = 5

# Importance 0-10 per department, in the order of ACTIVITIES (the last: albums, launched a month ago);
# each answer adds a little noise.
PROFILES = {
    Department.SALES: [3, 5, 4, 6, 4, 10, 7, 6, 4, 5, 6],
    Department.PRODUCT: [2, 7, 9, 9, 6, 5, 4, 4, 1, 2, 9],
    Department.FINANCE: [4, 6, 8, 4, 2, 5, 2, 2, 3, 5, 5],
    Department.MARKETING: [3, 4, 3, 7, 4, 8, 9, 8, 7, 9, 7],
    Department.CUSTOMER_SUCCESS: [6, 7, 6, 6, 8, 4, 3, 3, 4, 4, 7],
    Department.ENGINEERING: [2, 6, 7, 7, 5, 5, 3, 3, 1, 2, 6],
    Department.LEADERSHIP: [3, 6, 7, 8, 5, 8, 5, 5, 3, 4, 8],
}
# How many answer per department (25 in all); members answer with their personal links first.
HEADCOUNT = {
    Department.SALES: 5,
    Department.PRODUCT: 5,
    Department.FINANCE: 4,
    Department.MARKETING: 3,
    Department.CUSTOMER_SUCCESS: 4,
    Department.ENGINEERING: 3,
    Department.LEADERSHIP: 1,
}
ANSWERS = {
    Department.SALES: [
        "Invites friends and colleagues: an Invited friend is a new lead for us.",
        "Posts to Facebook and Twitter, brings the team along, Invited friend every month.",
        "Someone who shows PhotoShare to others. Invited friend beats everything.",
    ],
    Department.PRODUCT: [
        "Adds photos, then Edited photo and Shared photo: the core loop.",
        "Edits with the filters and shares the result; logging in alone means nothing.",
        "Shared photo after Edited photo: that's a user who gets the value.",
    ],
    Department.FINANCE: [
        "Uses the paid features: the Pro editor (Edited photo) and upgrades.",
        "Pays for it. Upgrades to Pro, buys prints, keeps the subscription.",
    ],
    Department.MARKETING: [
        "Opened email, Clicked email, and posts to Twitter: they amplify our campaigns.",
        "Posts to Facebook and Posted to Twitter with our watermark.",
    ],
    Department.CUSTOMER_SUCCESS: [
        "Logs in every week and comments: Commented on photo shows a living community.",
        "Steady use: Added photo weekly, answers comments, never calls support.",
    ],
    Department.ENGINEERING: [
        "Uses the editor a lot (Edited photo) and shares; the API load says so.",
        "Added photo and Edited photo on several devices.",
    ],
    Department.LEADERSHIP: ["Shares photos and invites friends: growth and value together."],
}
PROPOSALS = {
    Department.FINANCE: [
        ("Upgraded to Pro", "Starts a paid Pro plan", 10),
        ("Bought prints", "Orders printed photos", 8),
    ],
    Department.SALES: [("Upgraded to Pro", "Moves from free to Pro", 8)],
    Department.PRODUCT: [("Printed photo book", "Orders a photo book made from an album", 7)],
}


def _ratings(rng: random.Random, department: str, activities: list[Activity]) -> dict[int, int | None]:
    ratings = {}
    for base, activity in zip(PROFILES[department], activities, strict=True):
        if base <= 2 and rng.random() < 0.25:
            ratings[activity.pk] = None  # "not relevant"
            continue
        ratings[activity.pk] = max(0, min(10, base + rng.choice([-2, -1, -1, 0, 0, 0, 1, 1, 2])))
    return ratings


def _invite_without_email(survey: Survey, membership: Membership) -> SurveyInvitee:
    # The demo answers for its members: no invitation email to print on the console.
    invitee = SurveyInvitee(
        tenant=survey.tenant,
        survey=survey,
        email=membership.user.email,
        membership=membership,
        department=membership.department,
    )
    invitee.token_hash = hash_token(invitee.token())
    invitee.save()
    return invitee


@transaction.atomic
def seed_demo_survey(tenant: Tenant) -> str:
    existing = Survey.objects.for_tenant(tenant).filter(title=DEMO_SURVEY_TITLE).first()
    if existing is not None:
        return f"Survey: “{existing.title}” already there ({existing.responses.count()} responses)."
    rng = random.Random(SEED)
    activities = [Activity.objects.get_or_create(tenant=tenant, name=name)[0] for name in ACTIVITIES]
    members = list(Membership.objects.for_tenant(tenant).select_related("user").order_by("user__email"))
    owner = next((m.user for m in members if m.role == Role.OWNER), None)
    now = timezone.now()
    survey = services.survey_create(
        tenant=tenant, title=DEMO_SURVEY_TITLE, activities=activities, created_by=owner, allow_proposals=True
    )
    share_link = services.share_link_create(survey=survey, created_by=owner)
    accepted = []
    for department, headcount in HEADCOUNT.items():
        department_members = [m for m in members if m.department == department]
        for i in range(headcount):
            if i < len(department_members):
                invitee = _invite_without_email(survey, department_members[i])
                resolved, name = services.ResolvedLink(survey=survey, invitee=invitee), ""
            else:
                invitee = None
                resolved = services.ResolvedLink(survey=survey, share_link=share_link)
                name = f"{Department(department).label} teammate {i + 1}"
            proposals = [services.Proposal(*p) for p in PROPOSALS.get(department, [])] if i == 0 else []
            response = services.response_submit(
                resolved=resolved,
                department=department,
                answer=rng.choice(ANSWERS[department]),
                ratings=_ratings(rng, department, activities),
                proposals=proposals,
                respondent_name=name,
            )
            answered_at = now - timedelta(days=18 - rng.randint(0, 12), minutes=rng.randint(0, 600))
            SurveyResponse.objects.for_tenant(survey.tenant_id).filter(pk=response.pk).update(
                submitted_at=answered_at, updated_at=answered_at
            )
            if invitee is not None:
                SurveyInvitee.objects.for_tenant(survey.tenant_id).filter(pk=invitee.pk).update(
                    invited_at=now - timedelta(days=20), opened_at=answered_at
                )
            accepted += [p for p in response.proposals.all() if p.name == "Upgraded to Pro"]
    Survey.objects.for_tenant(survey.tenant_id).filter(pk=survey.pk).update(created_at=now - timedelta(days=20))
    services.survey_close(survey=survey)
    Survey.objects.for_tenant(survey.tenant_id).filter(pk=survey.pk).update(closed_at=now - timedelta(days=5))
    survey.refresh_from_db()
    # Accepted after closing: the catalog gets it "not tracked yet", so the tracking plan has an entry.
    already = ProposedActivity.objects.for_tenant(survey.tenant_id).filter(survey=survey, accepted_at__isnull=False)
    if accepted and not already.exists():
        services.proposal_accept(proposal=accepted[0], accepted_by=owner)
    return f"Survey: “{survey.title}” closed with {survey.responses.count()} responses."
