"""Survey services against the real database: create, invite, answer, edit, remind, close."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from accounts.models import Department, Membership, hash_token
from events.models import Activity
from surveys import services
from surveys.models import ActivityRating, ProposedActivity, Survey, SurveyInvitee, SurveyResponse

from . import factories


def test_create_uses_the_default_question_and_the_chosen_activities(tenant):
    survey = factories.survey(tenant)
    assert survey.question == "An engaged user of Rocket does…"
    assert [a.name for a in survey.candidate_activities()] == factories.ACTIVITY_NAMES
    assert survey.status == "open"


def test_create_rejects_another_tenants_activity(tenant, other_tenant):
    foreign = factories.activities(other_tenant, ["Logged in"])
    with pytest.raises(ValidationError):
        services.survey_create(tenant=tenant, title="x", activities=foreign)
    assert not Survey.objects.filter(tenant=tenant).exists()


def test_create_requires_a_title(tenant):
    with pytest.raises(ValidationError) as error:
        services.survey_create(tenant=tenant, title="  ", activities=[])
    assert "title" in error.value.message_dict
    assert not Survey.objects.unscoped().exists()


def test_update_edits_the_candidates_in_order(tenant):
    survey = factories.survey(tenant)
    logged_in, added, shared = factories.activities(tenant)
    services.survey_update(
        survey=survey, title="New", question="Q?", activities=[shared, logged_in], allow_proposals=False
    )
    survey.refresh_from_db()
    assert survey.title == "New" and not survey.allow_proposals
    assert list(survey.candidate_activities()) == [shared, logged_in]


def test_anonymity_cannot_change_after_answers(tenant):
    survey = factories.survey(tenant)
    factories.answer(survey)
    with pytest.raises(ValidationError):
        services.survey_update(
            survey=survey, title="t", question="q", activities=list(survey.candidate_activities()), anonymous=True
        )
    survey.refresh_from_db()
    assert not survey.anonymous


def test_invite_members_and_emails_sends_personal_links(
    tenant, editor, viewer, owner, mailoutbox, django_capture_on_commit_callbacks
):
    survey = factories.survey(tenant)
    members = services.members_to_invite(tenant=tenant, departments=[Department.SALES], members=[])
    assert [m.user for m in members] == [viewer]
    with django_capture_on_commit_callbacks(execute=True):
        invitees = services.survey_invite(
            survey=survey, memberships=members, emails=["pat@partner.test", "Eve.Editor@acme.test"], invited_by=owner
        )
    assert sorted(i.email for i in invitees) == ["eve.editor@acme.test", "pat@partner.test", "vic.viewer@acme.test"]
    by_email = {i.email: i for i in invitees}
    # An email address of a member is recognised as that member (department known).
    assert by_email["eve.editor@acme.test"].membership.user == editor
    assert by_email["eve.editor@acme.test"].department == Department.PRODUCT
    assert by_email["pat@partner.test"].membership is None and by_email["pat@partner.test"].department == ""
    assert len(mailoutbox) == 3
    for message in mailoutbox:
        invitee = by_email[message.to[0]]
        token = invitee.token()
        assert token in message.body
        # Only the hash is stored.
        assert invitee.token_hash == hash_token(token)
        assert not SurveyInvitee.objects.unscoped().filter(token_hash=token).exists()


def test_invite_skips_people_already_invited(tenant, mailoutbox, django_capture_on_commit_callbacks):
    survey = factories.survey(tenant)
    with django_capture_on_commit_callbacks(execute=True):
        services.survey_invite(survey=survey, emails=["a@x.test"])
        again = services.survey_invite(survey=survey, emails=["a@x.test", "b@x.test"])
    assert [i.email for i in again] == ["b@x.test"]
    assert SurveyInvitee.objects.unscoped().filter(survey=survey).count() == 2
    assert len(mailoutbox) == 2


def test_invite_rejects_another_tenants_member(tenant, other_tenant, outsider):
    survey = factories.survey(tenant)
    foreign = Membership.objects.get(tenant=other_tenant, user=outsider)
    with pytest.raises(ValidationError):
        services.survey_invite(survey=survey, memberships=[foreign])
    assert not SurveyInvitee.objects.unscoped().exists()


def test_parse_emails_names_the_bad_ones():
    assert services.parse_emails("a@x.test, b@x.test\nA@x.test; c@x.test") == ["a@x.test", "b@x.test", "c@x.test"]
    with pytest.raises(ValidationError) as error:
        services.parse_emails("a@x.test, not-an-email")
    assert "not-an-email" in str(error.value)


def test_personal_link_keeps_one_response_and_edits_it(tenant):
    survey = factories.survey(tenant)
    guest = factories.invitee(survey)
    first = factories.answer(survey, invitee=guest, department=Department.SALES, ratings={"Logged in": 3})
    second = factories.answer(
        survey,
        invitee=guest,
        department=Department.SALES,
        ratings={"Logged in": 9, "Shared photo": None},
        answer="Edited answer",
    )
    assert first.pk == second.pk
    assert SurveyResponse.objects.unscoped().filter(survey=survey).count() == 1
    second.refresh_from_db()
    assert second.answer == "Edited answer"
    ratings = dict(
        ActivityRating.objects.unscoped().filter(response=second).values_list("activity__name", "importance")
    )
    assert ratings == {"Logged in": 9, "Shared photo": None}
    guest.refresh_from_db()
    assert guest.department == Department.SALES


def test_member_department_comes_from_the_membership(tenant, viewer):
    survey = factories.survey(tenant)
    invitee = factories.member_invitee(survey, viewer)
    response = factories.answer(survey, invitee=invitee, department=Department.FINANCE)
    assert response.department == Department.SALES


def test_share_link_makes_a_new_response_each_time(tenant):
    survey = factories.survey(tenant)
    factories.answer(survey)
    factories.answer(survey)
    assert SurveyResponse.objects.unscoped().filter(survey=survey, invitee=None).count() == 2


def test_closed_survey_refuses_answers(tenant):
    survey = factories.survey(tenant)
    guest = factories.invitee(survey)
    factories.answer(survey, invitee=guest, answer="Before closing")
    services.survey_close(survey=survey)
    with pytest.raises(services.SurveyClosedError):
        factories.answer(survey, invitee=guest, answer="After closing")
    assert SurveyResponse.objects.unscoped().get(survey=survey).answer == "Before closing"


def test_closing_date_in_the_past_closes_the_survey(tenant):
    survey = factories.survey(tenant)
    guest = factories.invitee(survey)
    Survey.objects.unscoped().filter(pk=survey.pk).update(closes_at=timezone.now() - timedelta(minutes=1))
    survey.refresh_from_db()
    assert survey.is_closed and survey.status == "closed"
    with pytest.raises(services.SurveyClosedError):
        factories.answer(survey, invitee=guest)
    assert not SurveyResponse.objects.unscoped().exists()


def test_ratings_must_be_survey_activities_and_in_range(tenant):
    survey = factories.survey(tenant, names=["Logged in"])
    other = factories.activities(tenant, ["Not a candidate"])[0]
    link = services.share_link_create(survey=survey)
    resolved = services.ResolvedLink(survey=survey, share_link=link)
    with pytest.raises(ValidationError):
        services.response_submit(resolved=resolved, department="sales", answer="a", ratings={other.pk: 5})
    logged_in = survey.candidate_activities().get()
    with pytest.raises(ValidationError):
        services.response_submit(resolved=resolved, department="sales", answer="a", ratings={logged_in.pk: 11})
    with pytest.raises(ValidationError):
        services.response_submit(resolved=resolved, department="pirates", answer="a", ratings={})
    assert not SurveyResponse.objects.unscoped().exists()


def test_proposals_are_replaced_on_edit_but_accepted_ones_stay(tenant, owner):
    survey = factories.survey(tenant)
    guest = factories.invitee(survey)
    response = factories.answer(survey, invitee=guest, proposals=[("Printed album", "desc", 8), ("Made a story",)])
    album = response.proposals.get(name="Printed album")
    services.proposal_accept(proposal=album, accepted_by=owner)
    factories.answer(survey, invitee=guest, proposals=[("printed  ALBUM",), ("Followed a friend",)])
    names = sorted(ProposedActivity.objects.unscoped().filter(response=response).values_list("name", flat=True))
    assert names == ["Followed a friend", "Printed album"]


def test_proposals_refused_when_the_survey_takes_none(tenant):
    survey = factories.survey(tenant, allow_proposals=False)
    with pytest.raises(ValidationError):
        factories.answer(survey, proposals=[("Printed album",)])
    assert not SurveyResponse.objects.unscoped().exists()


def test_accepting_a_proposal_adds_an_untracked_activity_and_a_candidate(tenant, owner):
    survey = factories.survey(tenant)
    factories.answer(survey, department="sales", proposals=[("Printed album", "Orders a print")])
    factories.answer(survey, department="finance", proposals=[("printed album",)])
    proposal = ProposedActivity.objects.unscoped().filter(survey=survey).first()
    activity = services.proposal_accept(proposal=proposal, accepted_by=owner)
    assert activity.tenant == tenant and activity.name == "Printed album" and activity.first_seen_at is None
    assert activity.description == "Orders a print"
    assert ProposedActivity.objects.unscoped().filter(survey=survey, accepted_activity=activity).count() == 2
    assert activity in survey.candidate_activities()


def test_reminders_go_to_those_who_have_not_answered(tenant, mailoutbox, django_capture_on_commit_callbacks):
    survey = factories.survey(tenant)
    answered = factories.invitee(survey, "done@x.test")
    pending = factories.invitee(survey, "late@x.test")
    withdrawn = factories.invitee(survey, "gone@x.test")
    services.invitee_revoke(invitee=withdrawn)
    factories.answer(survey, invitee=answered)
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.survey_send_reminders(survey=survey) == services.ReminderResult(sent=1, skipped=0)
    assert [m.to for m in mailoutbox] == [["late@x.test"]]
    # The reminder carries the same personal link as the invitation.
    assert pending.token() in mailoutbox[0].body
    pending.refresh_from_db()
    assert pending.reminder_count == 1 and pending.last_reminded_at is not None


def test_reminders_skip_those_reminded_in_the_last_24_hours(tenant, mailoutbox, django_capture_on_commit_callbacks):
    survey = factories.survey(tenant)
    recent = factories.invitee(survey, "recent@x.test")
    earlier = factories.invitee(survey, "earlier@x.test")
    never = factories.invitee(survey, "never@x.test")
    now = timezone.now()
    SurveyInvitee.objects.unscoped().filter(pk=recent.pk).update(
        last_reminded_at=now - timedelta(hours=23), reminder_count=1
    )
    SurveyInvitee.objects.unscoped().filter(pk=earlier.pk).update(
        last_reminded_at=now - timedelta(hours=25), reminder_count=1
    )
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        result = services.survey_send_reminders(survey=survey)
    assert result == services.ReminderResult(sent=2, skipped=1)
    assert sorted(m.to[0] for m in mailoutbox) == ["earlier@x.test", "never@x.test"]
    counts = dict(SurveyInvitee.objects.unscoped().filter(survey=survey).values_list("email", "reminder_count"))
    assert counts == {"recent@x.test": 1, "earlier@x.test": 2, "never@x.test": 1}
    recent.refresh_from_db()
    assert recent.last_reminded_at < now - timedelta(hours=22)  # untouched: the cooldown is not restarted
    # A second click right away sends nothing: everyone was reminded just now.
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.survey_send_reminders(survey=survey) == services.ReminderResult(sent=0, skipped=3)
    assert mailoutbox == []
    never.refresh_from_db()
    assert never.reminder_count == 1


def test_a_survey_past_its_closing_date_cant_be_edited(tenant):
    survey = factories.survey(tenant)
    closed_at = timezone.now() - timedelta(days=2)
    Survey.objects.unscoped().filter(pk=survey.pk).update(closes_at=closed_at)
    survey.refresh_from_db()
    assert survey.is_closed and survey.closed_since == closed_at
    day = closed_at.astimezone(tenant.tzinfo).date().isoformat()
    with pytest.raises(ValidationError, match=f"closed on {day}"):
        services.survey_update(
            survey=survey,
            title="Reopened",
            question="",
            activities=list(survey.candidate_activities()),
            closes_at=timezone.now() + timedelta(days=30),
        )
    survey.refresh_from_db()
    assert survey.title != "Reopened" and survey.closes_at == closed_at and survey.is_closed


def test_closed_survey_takes_no_invitations_or_reminders(tenant, mailoutbox):
    survey = factories.survey(tenant)
    factories.invitee(survey)
    services.survey_close(survey=survey)
    mailoutbox.clear()
    with pytest.raises(ValidationError):
        services.survey_invite(survey=survey, emails=["new@x.test"])
    with pytest.raises(ValidationError):
        services.survey_send_reminders(survey=survey)
    assert mailoutbox == []
    assert SurveyInvitee.objects.unscoped().filter(survey=survey).count() == 1


class TestLinks:
    def test_a_personal_link_resolves(self, tenant):
        survey = factories.survey(tenant)
        guest = factories.invitee(survey)
        resolved = services.link_resolve(guest.token())
        assert resolved.invitee == guest and resolved.survey == survey

    @pytest.mark.parametrize("token", ["", "nonsense", "p_" + "0" * 48, "s_" + "0" * 48, "p_'; drop table"])
    def test_unknown_tokens_are_404(self, tenant, token):
        with pytest.raises(services.LinkError) as error:
            services.link_resolve(token)
        assert error.value.status == 404

    def test_revoked_links_are_410(self, tenant):
        survey = factories.survey(tenant)
        guest = factories.invitee(survey)
        services.invitee_revoke(invitee=guest)
        link = services.share_link_create(survey=survey)
        services.share_link_revoke(survey=survey)
        for token in (guest.token(), link.token()):
            with pytest.raises(services.LinkError) as error:
                services.link_resolve(token)
            assert error.value.status == 410

    def test_a_new_share_link_replaces_the_old_one(self, tenant):
        survey = factories.survey(tenant)
        old = services.share_link_create(survey=survey)
        new = services.share_link_create(survey=survey)
        assert services.link_resolve(new.token()).share_link == new
        with pytest.raises(services.LinkError):
            services.link_resolve(old.token())

    def test_links_of_a_closed_survey_are_410(self, tenant):
        survey = factories.survey(tenant)
        guest = factories.invitee(survey)
        services.survey_close(survey=survey)
        with pytest.raises(services.LinkError) as error:
            services.link_resolve(guest.token())
        assert error.value.status == 410 and "closed" in str(error.value)


class FailingBackend(BaseEmailBackend):
    def send_messages(self, messages):
        raise ConnectionRefusedError("mail server down")


def test_a_mail_failure_keeps_the_invitations(tenant, settings, django_capture_on_commit_callbacks, caplog):
    settings.EMAIL_BACKEND = "tests.surveys.test_services.FailingBackend"
    survey = factories.survey(tenant)
    with django_capture_on_commit_callbacks(execute=True):
        services.survey_invite(survey=survey, emails=["a@x.test"])
    assert SurveyInvitee.objects.unscoped().filter(survey=survey).count() == 1
    assert "could not send 1 survey emails" in caplog.text


def test_a_title_with_a_line_break_makes_a_valid_subject(tenant, mailoutbox, django_capture_on_commit_callbacks):
    survey = factories.survey(tenant, title="Engaged?\nBcc: evil@x.test")
    with django_capture_on_commit_callbacks(execute=True):
        services.survey_invite(survey=survey, emails=["a@x.test"])
    assert mailoutbox[0].subject == "Acme: Engaged? Bcc: evil@x.test"
    assert mailoutbox[0].bcc == []


def test_accepting_matches_the_catalog_whatever_the_case(tenant, owner):
    survey = factories.survey(tenant)
    factories.answer(survey, proposals=[("shared PHOTO",)])
    activity = services.proposal_accept(
        proposal=ProposedActivity.objects.unscoped().get(survey=survey), accepted_by=owner
    )
    assert activity.name == "Shared photo"
    assert Activity.objects.filter(tenant=tenant, name__iexact="shared photo").count() == 1
