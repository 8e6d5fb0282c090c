"""Survey test data built through the services (no hand-made rows)."""

from accounts.models import Department, Membership
from events.models import Activity
from surveys import services
from surveys.models import SurveyInvitee

ACTIVITY_NAMES = ["Logged in", "Added photo", "Shared photo"]


def activities(tenant, names=ACTIVITY_NAMES):
    return [Activity.objects.get_or_create(tenant=tenant, name=name)[0] for name in names]


def survey(tenant, *, names=ACTIVITY_NAMES, **kwargs):
    kwargs.setdefault("title", "What does an engaged user do?")
    return services.survey_create(tenant=tenant, activities=activities(tenant, names), **kwargs)


def invitee(s, email="guest@example.com"):
    [created] = services.survey_invite(survey=s, emails=[email])
    return created


def member_invitee(s, user):
    membership = Membership.objects.get(tenant=s.tenant, user=user)
    services.survey_invite(survey=s, memberships=[membership])
    return SurveyInvitee.objects.unscoped().get(survey=s, membership=membership)


def answer(s, *, department=Department.PRODUCT, ratings=None, invitee=None, proposals=(), answer="They share photos."):
    """Submit a response; `ratings` maps activity names to 0-10 or None (not relevant)."""
    by_name = {a.name: a for a in s.candidate_activities()}
    ratings = ratings if ratings is not None else {name: 5 for name in by_name}
    if invitee is not None:
        resolved = services.ResolvedLink(survey=s, invitee=invitee)
    else:
        link = s.share_links.filter(revoked_at=None).first() or services.share_link_create(survey=s)
        resolved = services.ResolvedLink(survey=s, share_link=link)
    return services.response_submit(
        resolved=resolved,
        department=department,
        answer=answer,
        ratings={by_name[name].pk: value for name, value in ratings.items()},
        proposals=[services.Proposal(*p) if isinstance(p, tuple) else p for p in proposals],
    )


def survey_isolation_ids(tenant) -> dict:
    """Sample objects of `tenant` for the URL sweep (tests/isolation_ids.py)."""
    s = survey(tenant, title="Isolation sample")
    guest = invitee(s, "isolation@example.com")
    response = answer(s, invitee=guest, proposals=[("Printed album", "Orders a printed album")])
    return {
        "survey_id": s.public_id,
        "invitee_id": guest.public_id,
        "proposal_id": response.proposals.get().public_id,
    }
