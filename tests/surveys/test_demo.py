"""The demo survey: closed, ~25 answers, departments that disagree, deterministic and idempotent."""

from accounts.demo import seed_demo_tenant
from events.models import Activity
from surveys import selectors, services
from surveys.demo import DEMO_SURVEY_TITLE, seed_demo_survey
from surveys.models import ActivityRating, Survey, SurveyResponse


def _fingerprint(survey):
    return sorted(
        ActivityRating.objects.unscoped().filter(response__survey=survey).values_list(
            "response__department", "activity__name", "importance"
        ),
        key=lambda row: tuple(str(v) for v in row),
    )


def test_seed_demo_survey(db, django_capture_on_commit_callbacks, mailoutbox):
    tenant, _ = seed_demo_tenant()
    with django_capture_on_commit_callbacks(execute=True):
        message = seed_demo_survey(tenant)
    assert "25 responses" in message
    assert mailoutbox == []  # the demo sends no invitations
    survey = Survey.objects.get(tenant=tenant, title=DEMO_SURVEY_TITLE)
    assert survey.is_closed
    assert SurveyResponse.objects.unscoped().filter(survey=survey).count() == 25
    assert SurveyResponse.objects.unscoped().filter(survey=survey, invitee__isnull=False).count() == 6  # the demo team
    assert len(selectors.departments_answered(survey=survey)) == 7

    stats = {s.activity.name: s for s in selectors.activity_stats(survey=survey)}

    def dept(name, department):
        return stats[name].by_department[department].mean

    assert dept("Invited friend", "sales") > dept("Invited friend", "product") + 2
    assert dept("Edited photo", "product") > dept("Edited photo", "sales") + 2
    assert dept("Shared photo", "product") > dept("Shared photo", "finance") + 2
    assert dept("Edited photo", "finance") > dept("Edited photo", "marketing") + 2
    # Finance's paid-feature proposal was accepted: in the catalog, not tracked yet.
    assert Activity.objects.get(tenant=tenant, name="Upgraded to Pro").first_seen_at is None
    assert services.survey_propose_weights(survey=survey)[0].points > 0

    # Idempotent: a second run adds nothing.
    fingerprint = _fingerprint(survey)
    assert "already there" in seed_demo_survey(tenant)
    assert Survey.objects.filter(tenant=tenant).count() == 1
    assert _fingerprint(survey) == fingerprint


def test_it_is_deterministic(db):
    tenant, _ = seed_demo_tenant()
    seed_demo_survey(tenant)
    first = _fingerprint(Survey.objects.get(tenant=tenant))
    Survey.objects.filter(tenant=tenant).delete()
    seed_demo_survey(tenant)
    assert _fingerprint(Survey.objects.get(tenant=tenant)) == first
