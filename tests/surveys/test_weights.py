"""The weights proposal: the rarity formula, event shares over 30 days, flags, and the draft scoring model."""

import math
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from events.models import Activity, DailyActivityCount, EndUser
from surveys import services
from surveys.models import ProposedActivity, Survey

from . import factories


@pytest.mark.parametrize(
    "share,rarity",
    [(0.1, 1.0), (0.01, 2.0), (0.001, 3.0), (0.00001, 3.0), (0.5, 0.5), (0.8, 0.5), (0.0, 3.0), (None, 1.0)],
)
def test_rarity_for_share(share, rarity):
    assert services.rarity_for_share(share) == pytest.approx(rarity)


def test_points_round_half_up_and_need_a_rating():
    assert services.points_for(6.25, 1.0) == 63
    assert services.points_for(5.0, 0.5) == 25
    assert services.points_for(None, 3.0) == 0


def _counts(tenant, rows):
    user = EndUser.objects.get_or_create(tenant=tenant, user_id=f"u-{tenant.slug}")[0]
    today = tenant.today()
    for name, days_ago, count in rows:
        activity = Activity.objects.get_or_create(tenant=tenant, name=name)[0]
        DailyActivityCount.objects.create(
            tenant=tenant, end_user=user, activity=activity, day=today - timedelta(days=days_ago), count=count
        )


@pytest.fixture
def survey(tenant, other_tenant):
    survey = factories.survey(tenant)
    Activity.objects.filter(tenant=tenant, name__in=["Logged in", "Shared photo"]).update(first_seen_at=timezone.now())
    for logged_in, shared in [(4, 8), (6, 8)]:
        factories.answer(survey, ratings={"Logged in": logged_in, "Added photo": None, "Shared photo": shared})
    # Last 30 tenant days: 80 logins, 18 "Added photo" (never tracked? see below), 2 shares out of 100 events.
    _counts(tenant, [("Logged in", 0, 50), ("Logged in", 29, 30), ("Added photo", 3, 18), ("Shared photo", 1, 2)])
    # Outside the window, and another tenant's events: both ignored.
    _counts(tenant, [("Shared photo", 30, 10_000)])
    _counts(other_tenant, [("Shared photo", 0, 10_000)])
    return survey


def test_proposal_formula(survey):
    weights = {w.activity.name: w for w in services.survey_propose_weights(survey=survey)}
    logged_in = weights["Logged in"]
    assert logged_in.share == pytest.approx(0.80)
    assert logged_in.rarity == 0.5  # log10(1/0.8) = 0.1 → floor 0.5
    assert logged_in.importance_mean == 5.0 and logged_in.rating_count == 2
    assert logged_in.points == 25  # 5 x 10 x 0.5
    assert not logged_in.untracked and logged_in.flags == []

    shared = weights["Shared photo"]
    assert shared.share == pytest.approx(0.02)
    assert shared.rarity == pytest.approx(math.log10(50), abs=1e-3)
    assert shared.points == round(8 * 10 * math.log10(50))  # 135.9 → 136
    assert shared.points == 136

    # "Added photo" has events, yet first_seen_at is empty here: not tracked yet, neutral rarity, flagged.
    added = weights["Added photo"]
    assert added.untracked and added.share is None and added.rarity == 1.0
    assert added.points == 0 and "not tracked yet" in added.flags and "nobody rated it" in added.flags

    assert [w.activity.name for w in services.survey_propose_weights(survey=survey)] == [
        "Shared photo",
        "Logged in",
        "Added photo",
    ]


def test_untracked_activity_gets_points_but_is_flagged(tenant):
    survey = factories.survey(tenant, names=["Printed album"])
    factories.answer(survey, ratings={"Printed album": 7})
    [weight] = services.survey_propose_weights(survey=survey)
    assert (weight.points, weight.rarity, weight.untracked) == (70, 1.0, True)


def test_tracked_activity_without_recent_events_is_rarest(tenant, survey):
    Activity.objects.filter(tenant=tenant, name="Added photo").update(first_seen_at=timezone.now())
    DailyActivityCount.objects.filter(tenant=tenant, activity__name="Added photo").delete()
    factories.answer(survey, ratings={"Logged in": 5, "Added photo": 4, "Shared photo": 8})
    added = {w.activity.name: w for w in services.survey_propose_weights(survey=survey)}["Added photo"]
    assert added.share == 0.0 and added.rarity == 3.0 and added.points == 120
    assert added.flags == ["no events in the last 30 days"]


def test_shares_are_one_query(survey, django_assert_num_queries):
    with django_assert_num_queries(1):
        services.event_shares(tenant=survey.tenant)


class TestProposalPage:
    def url(self, survey):
        return reverse("surveys:propose_weights", args=[survey.tenant.slug, survey.public_id])

    def test_it_shows_the_formula(self, client, viewer, survey):
        client.force_login(viewer)
        response = client.get(self.url(survey))
        assert response.status_code == 200
        assert b"points = round(mean importance" in response.content
        assert b"<strong>136</strong>" in response.content
        assert b"not tracked yet" in response.content

    def test_an_editor_creates_a_draft_scoring_model(self, client, editor, survey):
        from scoring.models import ScoringModel

        client.force_login(editor)
        response = client.post(self.url(survey))
        assert response.status_code == 302
        survey.refresh_from_db()
        draft = survey.scoring_model
        assert draft is not None and draft.is_draft and draft.tenant == survey.tenant
        points = dict(draft.weights.values_list("activity__name", "points"))
        assert points == {"Shared photo": 136, "Logged in": 25}
        assert list(draft.source_surveys.all()) == [survey]
        assert ScoringModel.objects.filter(tenant=survey.tenant).count() == 1
        # One model per survey: a second try says which one to adjust, and creates nothing.
        again = client.post(self.url(survey))
        assert again.status_code == 400 and b"already produced scoring model" in again.content
        assert ScoringModel.objects.filter(tenant=survey.tenant).count() == 1
        assert b"Create draft scoring model" not in client.get(self.url(survey)).content
        page = client.get(reverse("surveys:detail", args=[survey.tenant.slug, survey.public_id]))
        assert str(draft).encode() in page.content
        assert reverse("scoring:edit_model", args=[survey.tenant.slug, draft.public_id]).encode() in page.content

    def test_deleting_the_draft_frees_the_survey(self, client, editor, survey):
        from scoring.services import scoring_model_delete_draft

        draft = services.survey_create_draft_model(survey=survey, created_by=editor)
        scoring_model_delete_draft(model=draft)
        survey.refresh_from_db()
        assert survey.scoring_model is None
        assert services.survey_create_draft_model(survey=survey).weights.count() == 2

    def test_a_viewer_cannot_create_one(self, client, viewer, survey):
        from scoring.models import ScoringModel

        client.force_login(viewer)
        assert client.post(self.url(survey)).status_code == 403
        assert not ScoringModel.objects.unscoped().exists()
        assert Survey.objects.unscoped().get(pk=survey.pk).scoring_model is None

    def test_no_ratings_no_draft(self, client, editor, tenant):
        from scoring.models import ScoringModel

        survey = factories.survey(tenant)
        client.force_login(editor)
        response = client.post(self.url(survey))
        assert response.status_code == 400
        assert b"needs ratings first" in response.content
        assert not ScoringModel.objects.unscoped().exists()


class TestAcceptedProposals:
    def test_one_accepted_after_the_close_gets_points_from_its_proposers(self, owner, survey):
        factories.answer(survey, proposals=[("Printed album", "Orders prints", 8)])
        factories.answer(survey, department="sales", proposals=[("printed  album", "", 6)])
        factories.answer(survey, department="finance", proposals=[("Printed album",)])  # no importance given
        services.survey_close(survey=survey)
        proposal = ProposedActivity.objects.unscoped().filter(survey=survey).first()
        activity = services.proposal_accept(proposal=proposal, accepted_by=owner)
        assert activity not in survey.candidate_activities()  # closed: nobody can rate it on the form

        weights = {w.activity.name: w for w in services.survey_propose_weights(survey=survey)}
        album = weights["Printed album"]
        assert (album.importance_mean, album.rating_count) == (7.0, 2)
        assert (album.share, album.rarity, album.untracked, album.points) == (None, 1.0, True, 70)
        assert album.flags == ["proposed by respondents", "not tracked yet"]
        # The candidates keep their own ratings: (8 + 8 + 5 + 5 + 5) / 5 = 6.2, x 10 x log10(50) = 105.
        assert weights["Shared photo"].importance_mean == pytest.approx(6.2)
        assert weights["Shared photo"].points == 105

        draft = services.survey_create_draft_model(survey=survey, created_by=owner)
        assert dict(draft.weights.values_list("activity__name", "points"))["Printed album"] == 70

    def test_an_unaccepted_proposal_gets_no_points(self, survey):
        factories.answer(survey, proposals=[("Printed album", "", 9)])
        assert "Printed album" not in {w.activity.name for w in services.survey_propose_weights(survey=survey)}

    def test_one_accepted_while_open_adds_the_later_ratings(self, owner, tenant):
        survey = factories.survey(tenant, names=["Logged in"])
        proposer = factories.invitee(survey, "proposer@x.test")
        factories.answer(survey, invitee=proposer, ratings={"Logged in": 5}, proposals=[("Printed album", "", 9)])
        services.proposal_accept(proposal=ProposedActivity.objects.unscoped().get(survey=survey), accepted_by=owner)
        factories.answer(survey, ratings={"Logged in": 5, "Printed album": 5})

        album = {w.activity.name: w for w in services.survey_propose_weights(survey=survey)}["Printed album"]
        assert (album.importance_mean, album.rating_count, album.points) == (7.0, 2, 70)
        assert album.flags == ["not tracked yet"]  # a candidate now, rated on the form
        # The proposer edits the answer and rates it on the form: one person, one value.
        factories.answer(survey, invitee=proposer, ratings={"Logged in": 5, "Printed album": 3})
        album = {w.activity.name: w for w in services.survey_propose_weights(survey=survey)}["Printed album"]
        assert (album.importance_mean, album.rating_count, album.points) == (4.0, 2, 40)

    def test_the_proposal_page_shows_it(self, client, viewer, owner, survey):
        factories.answer(survey, proposals=[("Printed album", "", 9)])
        services.survey_close(survey=survey)
        services.proposal_accept(proposal=ProposedActivity.objects.unscoped().get(survey=survey), accepted_by=owner)
        client.force_login(viewer)
        content = client.get(reverse("surveys:propose_weights", args=[survey.tenant.slug, survey.public_id])).content
        assert b"Printed album" in content and b"<strong>90</strong>" in content
        assert b"proposed by respondents" in content


def test_the_published_model_and_its_survey_link_to_each_other(client, editor, viewer, survey):
    from scoring.services import scoring_model_publish

    weights = services.survey_propose_weights(survey=survey)
    assert weights[0].points == 136
    draft = services.survey_create_draft_model(survey=survey, created_by=editor)
    scoring_model_publish(model=draft, published_by=editor, backfill_days=1)
    draft.refresh_from_db()
    assert draft.status == "published"

    slug = survey.tenant.slug
    survey_url = reverse("surveys:detail", args=[slug, survey.public_id])
    model_url = reverse("scoring:edit_model", args=[slug, draft.public_id])
    client.force_login(viewer)
    detail = client.get(survey_url).content.decode()
    assert f'<a href="{model_url}">{draft}</a> (published)' in detail
    survey_link = f'From survey: <a href="{survey_url}">{survey.title}</a>'
    for page in (model_url, reverse("scoring:models", args=[slug])):
        response = client.get(page)
        assert response.status_code == 200
        assert survey_link in response.content.decode(), page
