"""The public answering page /s/<token>/: no login, personal and share links, errors, abuse limit."""

import re
from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import Department
from surveys import services
from surveys.forms import AnswerForm
from surveys.models import ProposedActivity, Survey, SurveyInvitee, SurveyResponse

from . import factories

# No cache.clear(): the abuse counters are keyed by the share link's random id, so
# tests can't see each other's counts, and clearing would flush a shared Redis.


def url(token):
    return reverse("surveys:answer", args=[token])


def form_data(survey, *, department="sales", answer="They share photos every week.", ratings=None, **extra):
    data = {"department": department, "answer": answer, "comment": ""}
    for activity in survey.candidate_activities():
        data[AnswerForm.rating_field(activity)] = (ratings or {}).get(activity.name, "5")
    data.update(extra)
    return data


@pytest.fixture
def survey(tenant):
    return factories.survey(tenant)


@pytest.fixture
def guest(survey):
    return factories.invitee(survey, "guest@partner.test")


class TestPersonalLink:
    def test_it_shows_the_form_and_marks_the_link_opened(self, client, survey, guest):
        response = client.get(url(guest.token()))
        assert response.status_code == 200
        assert b"An engaged user of Rocket does" in response.content
        assert b'name="department"' in response.content  # not known for an email invitee
        assert b"Logged in" in response.content
        guest.refresh_from_db()
        assert guest.opened_at is not None
        assert response["Cache-Control"].startswith("max-age=0")

    def test_it_stores_an_answer(self, client, survey, guest):
        data = form_data(survey, ratings={"Logged in": "2", "Shared photo": "na"}, proposal_name_0="Printed album")
        data["proposal_description_0"] = "Orders a printed album"
        data["proposal_importance_0"] = "8"
        response = client.post(url(guest.token()), data)
        assert response.status_code == 302
        assert response["Location"] == reverse("surveys:thanks", args=[guest.token()])
        stored = SurveyResponse.objects.unscoped().get(invitee=guest)
        assert stored.department == "sales" and stored.answer == "They share photos every week."
        ratings = dict(stored.ratings.values_list("activity__name", "importance"))
        assert ratings == {"Logged in": 2, "Added photo": 5, "Shared photo": None}
        proposal = ProposedActivity.objects.unscoped().get(response=stored)
        assert (proposal.name, proposal.description, proposal.importance) == (
            "Printed album",
            "Orders a printed album",
            8,
        )
        assert client.get(response["Location"]).status_code == 200

    def test_it_edits_the_same_response_until_close(self, client, survey, guest):
        client.post(url(guest.token()), form_data(survey, answer="First"))
        page = client.get(url(guest.token()))
        assert b"First" in page.content and b"Save my changes" in page.content
        client.post(url(guest.token()), form_data(survey, answer="Second", ratings={"Logged in": "9"}))
        assert SurveyResponse.objects.unscoped().filter(survey=survey).count() == 1
        stored = SurveyResponse.objects.unscoped().get(invitee=guest)
        assert stored.answer == "Second"
        assert stored.ratings.get(activity__name="Logged in").importance == 9

        services.survey_close(survey=survey)
        response = client.post(url(guest.token()), form_data(survey, answer="Third"))
        assert response.status_code == 410
        assert b"closed" in response.content
        stored.refresh_from_db()
        assert stored.answer == "Second"

    def test_a_member_is_not_asked_for_a_department(self, client, survey, viewer):
        invitee = factories.member_invitee(survey, viewer)
        page = client.get(url(invitee.token()))
        assert b'name="department"' not in page.content
        data = form_data(survey)
        del data["department"]
        assert client.post(url(invitee.token()), data).status_code == 302
        assert SurveyResponse.objects.unscoped().get(invitee=invitee).department == Department.SALES

    def test_bad_input_is_shown_and_nothing_is_lost(self, client, survey, guest):
        data = form_data(survey, department="", answer="My long thoughtful answer")
        data.pop(AnswerForm.rating_field(survey.candidate_activities().first()))
        data["proposal_description_0"] = "a description without a name"
        response = client.post(url(guest.token()), data)
        assert response.status_code == 400
        content = response.content.decode()
        assert "My long thoughtful answer" in content
        assert "a description without a name" in content
        assert "Choose your department" in content or "This field is required" in content
        assert "Pick a rating from 0 to 10" in content
        assert "Give the activity a name" in content
        # The ratings given are still selected.
        kept = AnswerForm.rating_field(survey.candidate_activities().get(name="Shared photo"))
        assert re.search(rf'name="{kept}" value="5"[^>]*checked', content)
        assert not SurveyResponse.objects.unscoped().exists()

    def test_out_of_range_rating_is_refused(self, client, survey, guest):
        response = client.post(url(guest.token()), form_data(survey, ratings={"Logged in": "11"}))
        assert response.status_code == 400
        assert not SurveyResponse.objects.unscoped().exists()

    def test_a_withdrawn_link_is_410(self, client, survey, guest):
        services.invitee_revoke(invitee=guest)
        for response in (client.get(url(guest.token())), client.post(url(guest.token()), form_data(survey))):
            assert response.status_code == 410
            assert b"withdrawn" in response.content
        assert not SurveyResponse.objects.unscoped().exists()

    def test_an_expired_survey_shows_a_clear_page(self, client, survey, guest):
        Survey.objects.unscoped().filter(pk=survey.pk).update(closes_at=timezone.now() - timedelta(seconds=1))
        response = client.get(url(guest.token()))
        assert response.status_code == 410
        assert b"This survey is closed" in response.content
        assert client.post(url(guest.token()), form_data(survey)).status_code == 410
        assert not SurveyResponse.objects.unscoped().exists()

    def test_a_closed_survey_shows_a_clear_page(self, client, survey, guest):
        services.survey_close(survey=survey)
        response = client.get(url(guest.token()))
        assert response.status_code == 410
        assert b"This survey is closed" in response.content
        assert client.post(url(guest.token()), form_data(survey)).status_code == 410
        assert not SurveyResponse.objects.unscoped().exists()


@pytest.mark.parametrize("token", ["nonsense", "p_" + "a" * 48, "s_" + "a" * 48, "p_%3Cscript%3E"])
def test_unknown_tokens_are_a_clear_404(client, db, token):
    response = client.get(url(token))
    assert response.status_code == 404
    assert b"not valid" in response.content


class TestShareLink:
    @pytest.fixture
    def link(self, survey):
        return services.share_link_create(survey=survey)

    def test_anyone_can_answer_more_than_once(self, client, survey, link):
        assert client.get(url(link.token())).status_code == 200
        for name in ("Ann", "Bob"):
            response = client.post(url(link.token()), form_data(survey, respondent_name=name))
            assert response.status_code == 302
        assert sorted(SurveyResponse.objects.unscoped().values_list("respondent_name", flat=True)) == ["Ann", "Bob"]
        link.refresh_from_db()
        assert link.open_count == 1

    def test_anonymous_survey_asks_no_name_and_stores_none(self, client, tenant):
        survey = factories.survey(tenant, anonymous=True)
        link = services.share_link_create(survey=survey)
        assert b'name="respondent_name"' not in client.get(url(link.token())).content
        client.post(url(link.token()), form_data(survey, respondent_name="Sneaky"))
        assert SurveyResponse.objects.unscoped().get().respondent_name == ""

    def test_a_revoked_link_is_410(self, client, survey, link):
        services.share_link_revoke(survey=survey)
        response = client.post(url(link.token()), form_data(survey))
        assert response.status_code == 410
        assert b"turned off" in response.content
        assert not SurveyResponse.objects.unscoped().exists()

    @override_settings(SURVEY_SHARE_LINK_LIMIT_PER_HOUR=2)
    def test_it_limits_answers_per_address(self, client, survey, link):
        for _ in range(2):
            assert client.post(url(link.token()), form_data(survey)).status_code == 302
        response = client.post(url(link.token()), form_data(survey))
        assert response.status_code == 429
        assert b"Too many answers" in response.content
        assert SurveyResponse.objects.unscoped().count() == 2
        # Another address is not affected.
        other = client.post(url(link.token()), form_data(survey), REMOTE_ADDR="203.0.113.9")
        assert other.status_code == 302
        # Personal links are never limited.
        guest = factories.invitee(survey)
        assert client.post(url(guest.token()), form_data(survey)).status_code == 302

    @override_settings(
        SURVEY_SHARE_LINK_LIMIT_PER_HOUR=1,
        CACHES={"default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # a closed port: Redis is down
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }},
    )
    def test_with_redis_down_the_share_link_still_takes_answers(self, client, survey, link, caplog):
        from core import ratelimit

        ratelimit.reset_outages()
        try:
            for _ in range(2):  # past the limit of 1: the limiter fails open
                assert client.post(url(link.token()), form_data(survey)).status_code == 302
        finally:
            ratelimit.reset_outages()
        assert SurveyResponse.objects.for_tenant(survey.tenant).count() == 2
        assert "survey-share: rate limit skipped" in caplog.text

    @override_settings(SURVEY_SHARE_LINK_LIMIT_PER_HOUR=1, AXES_IPWARE_PROXY_COUNT=1)
    def test_behind_a_proxy_it_counts_the_forwarded_address(self, client, survey, link):
        first = client.post(url(link.token()), form_data(survey), HTTP_X_FORWARDED_FOR="198.51.100.1")
        second = client.post(url(link.token()), form_data(survey), HTTP_X_FORWARDED_FOR="198.51.100.2")
        third = client.post(url(link.token()), form_data(survey), HTTP_X_FORWARDED_FOR="198.51.100.2")
        assert [first.status_code, second.status_code, third.status_code] == [302, 302, 429]


def test_wrong_method_is_405(client, survey, guest):
    assert client.put(url(guest.token())).status_code == 405


def test_no_login_is_needed_and_nothing_leaks_to_a_logged_in_member(client, survey, guest, outsider):
    client.force_login(outsider)
    assert client.get(url(guest.token())).status_code == 200
    assert SurveyInvitee.objects.unscoped().get(pk=guest.pk).opened_at is not None
