"""Tenant survey pages: it works, it checks the tenant (404), the role (403), bad input (400), the method (405)."""

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Department, Membership
from events.models import Activity
from surveys import services
from surveys.models import ProposedActivity, Survey, SurveyInvitee, SurveyResponse, SurveyShareLink

from . import factories


@pytest.fixture
def survey(tenant):
    return factories.survey(tenant)


def u(name, survey, *extra):
    return reverse(f"surveys:{name}", args=[survey.tenant.slug, survey.public_id, *extra])


def login(client, user):
    client.force_login(user)
    return client


class TestList:
    def test_it_works(self, client, viewer, survey):
        response = login(client, viewer).get(reverse("surveys:list", args=[survey.tenant.slug]))
        assert response.status_code == 200
        assert survey.title.encode() in response.content
        assert b"New survey" not in response.content

    def test_it_shows_only_the_tenants_surveys(self, client, outsider, other_tenant, survey):
        response = login(client, outsider).get(reverse("surveys:list", args=[other_tenant.slug]))
        assert response.status_code == 200
        assert survey.title.encode() not in response.content


class TestCreate:
    def url(self, tenant):
        return reverse("surveys:create", args=[tenant.slug])

    def test_it_prefills_from_the_catalog(self, client, editor, tenant):
        factories.activities(tenant)
        response = login(client, editor).get(self.url(tenant))
        assert response.status_code == 200
        assert b"What does an engaged user of Rocket do?" in response.content
        assert response.content.count(b"checked") >= 3  # every catalog activity pre-selected

    def test_it_works(self, client, editor, tenant):
        logged_in, added, _ = factories.activities(tenant)
        data = {
            "title": "Q4 survey",
            "question": "",
            "closes_on": "2030-01-31",
            "activities": [str(logged_in.pk), str(added.pk)],
            "allow_proposals": "on",
            "anonymous": "on",
        }
        response = login(client, editor).post(self.url(tenant), data)
        survey = Survey.objects.get(tenant=tenant)
        assert response.status_code == 302 and response["Location"] == u("detail", survey)
        assert survey.title == "Q4 survey" and survey.anonymous and survey.allow_proposals
        assert survey.question == "An engaged user of Rocket does…"
        assert set(survey.candidate_activities()) == {logged_in, added}
        # End of the closing day in the tenant's time zone (Europe/Paris: UTC+1 in January).
        assert survey.closes_at.isoformat().startswith("2030-01-31T22:59:59")
        assert survey.created_by == editor

    def test_it_rejects_bad_input(self, client, editor, tenant, other_tenant):
        foreign = factories.activities(other_tenant, ["Foreign"])[0]
        response = login(client, editor).post(
            self.url(tenant), {"title": "", "activities": [str(foreign.pk)], "closes_on": "not a date"}
        )
        assert response.status_code == 400
        assert b"This field is required" in response.content
        assert b"Select a valid choice" in response.content
        assert b"Enter a valid date" in response.content
        assert not Survey.objects.unscoped().exists()

    def test_it_refuses_a_closing_date_in_the_past(self, client, editor, tenant):
        response = login(client, editor).post(
            self.url(tenant), {"title": "Late", "allow_proposals": "on", "closes_on": "2020-01-01"}
        )
        assert response.status_code == 400
        assert b"The closing date is in the past" in response.content
        assert not Survey.objects.unscoped().exists()

    def test_it_needs_activities_or_proposals(self, client, editor, tenant):
        response = login(client, editor).post(self.url(tenant), {"title": "Empty"})
        assert response.status_code == 400
        assert b"let respondents propose activities" in response.content
        assert not Survey.objects.unscoped().exists()

    def test_it_requires_the_editor_role(self, client, viewer, tenant):
        client = login(client, viewer)
        assert client.get(self.url(tenant)).status_code == 403
        assert client.post(self.url(tenant), {"title": "x", "allow_proposals": "on"}).status_code == 403
        assert not Survey.objects.unscoped().exists()


class TestEdit:
    def test_it_works(self, client, editor, survey):
        logged_in = survey.candidate_activities().get(name="Logged in")
        data = {"title": "Renamed", "question": "Q?", "activities": [str(logged_in.pk)], "allow_proposals": ""}
        response = login(client, editor).post(u("edit", survey), data)
        assert response.status_code == 302
        survey.refresh_from_db()
        assert survey.title == "Renamed" and list(survey.candidate_activities()) == [logged_in]

    def test_it_requires_the_editor_role(self, client, viewer, survey):
        response = login(client, viewer).post(u("edit", survey), {"title": "Hacked", "allow_proposals": "on"})
        assert response.status_code == 403
        survey.refresh_from_db()
        assert survey.title != "Hacked"

    def test_a_closed_survey_cant_be_edited(self, client, editor, survey):
        services.survey_close(survey=survey)
        response = login(client, editor).post(u("edit", survey), {"title": "Late", "allow_proposals": "on"})
        assert response.status_code == 400
        assert b"closed survey" in response.content
        survey.refresh_from_db()
        assert survey.title != "Late"

    def test_a_survey_past_its_closing_date_cant_be_reopened(self, client, editor, survey):
        closed_at = timezone.now() - timedelta(days=1)
        Survey.objects.unscoped().filter(pk=survey.pk).update(closes_at=closed_at)
        day = closed_at.astimezone(survey.tenant.tzinfo).date().isoformat()
        client = login(client, editor)
        data = {"title": "Reopened", "closes_on": "2030-01-31", "allow_proposals": "on"}
        response = client.post(u("edit", survey), data)
        assert response.status_code == 400
        assert f"This survey closed on {day}".encode() in response.content
        survey.refresh_from_db()
        assert survey.title != "Reopened" and survey.closes_at == closed_at
        # The overview offers no Edit link, and the form itself sends the editor back.
        assert u("edit", survey).encode() not in client.get(u("detail", survey)).content
        page = client.get(u("edit", survey), follow=True)
        assert page.redirect_chain == [(u("detail", survey), 302)]
        assert f"closed on {day}".encode() in page.content

    def test_an_open_survey_shows_the_edit_link(self, client, editor, survey):
        assert u("edit", survey).encode() in login(client, editor).get(u("detail", survey)).content


class TestDetail:
    def test_it_works(self, client, viewer, survey):
        factories.invitee(survey, "guest@x.test")
        response = login(client, viewer).get(u("detail", survey))
        assert response.status_code == 200
        assert b"guest@x.test" in response.content
        assert b"Send invitations" not in response.content  # viewers read only

    def test_another_tenants_survey_is_404(self, client, outsider, other_tenant, survey):
        client = login(client, outsider)
        # Even through the outsider's own workspace URL.
        for name in ("detail", "results", "results_csv", "response_rate", "response_rate_json", "propose_weights"):
            url = reverse(f"surveys:{name}", args=[other_tenant.slug, survey.public_id])
            assert client.get(url).status_code == 404, name


class TestInvite:
    def test_it_invites_departments_members_and_emails(
        self, client, editor, viewer, admin_user, survey, mailoutbox, django_capture_on_commit_callbacks
    ):
        admin_membership = Membership.objects.get(tenant=survey.tenant, user=admin_user)
        data = {
            "departments": [Department.SALES],
            "members": [str(admin_membership.public_id)],
            "emails": "pat@partner.test\nsam@partner.test",
        }
        with django_capture_on_commit_callbacks(execute=True):
            response = login(client, editor).post(u("invite", survey), data)
        assert response.status_code == 302
        emails = set(SurveyInvitee.objects.unscoped().filter(survey=survey).values_list("email", flat=True))
        assert emails == {"vic.viewer@acme.test", "adam.admin@acme.test", "pat@partner.test", "sam@partner.test"}
        assert len(mailoutbox) == 4
        assert all("/s/p_" in m.body for m in mailoutbox)

    def test_it_rejects_bad_emails(self, client, editor, survey, mailoutbox):
        response = login(client, editor).post(u("invite", survey), {"emails": "ok@x.test, nope"})
        assert response.status_code == 400
        assert b"Not valid email addresses: nope" in response.content
        assert not SurveyInvitee.objects.unscoped().exists() and mailoutbox == []

    def test_it_needs_someone(self, client, editor, survey):
        response = login(client, editor).post(u("invite", survey), {})
        assert response.status_code == 400
        assert b"Choose at least one member" in response.content

    def test_it_refuses_another_tenants_member(self, client, editor, survey, other_tenant, outsider):
        foreign = Membership.objects.get(tenant=other_tenant, user=outsider)
        response = login(client, editor).post(u("invite", survey), {"members": [str(foreign.public_id)]})
        assert response.status_code == 400
        assert not SurveyInvitee.objects.unscoped().exists()

    def test_it_requires_the_editor_role(self, client, viewer, survey, mailoutbox):
        response = login(client, viewer).post(u("invite", survey), {"emails": "a@x.test"})
        assert response.status_code == 403
        assert not SurveyInvitee.objects.unscoped().exists() and mailoutbox == []

    def test_it_only_takes_post(self, client, editor, survey):
        assert login(client, editor).get(u("invite", survey)).status_code == 405

    def test_withdrawing_a_personal_link(self, client, editor, viewer, survey):
        guest = factories.invitee(survey)
        assert login(client, viewer).post(u("revoke_invitee", survey, guest.public_id)).status_code == 403
        guest.refresh_from_db()
        assert guest.revoked_at is None
        assert login(client, editor).post(u("revoke_invitee", survey, guest.public_id)).status_code == 302
        guest.refresh_from_db()
        assert guest.revoked_at is not None


class TestShareLink:
    def test_create_show_and_revoke(self, client, editor, survey):
        client = login(client, editor)
        assert client.post(u("create_share_link", survey)).status_code == 302
        link = SurveyShareLink.objects.unscoped().get(survey=survey)
        page = client.get(u("detail", survey))
        assert link.token().encode() in page.content
        assert client.post(u("revoke_share_link", survey)).status_code == 302
        link.refresh_from_db()
        assert link.revoked_at is not None
        assert link.token().encode() not in client.get(u("detail", survey)).content

    def test_it_requires_the_editor_role(self, client, viewer, survey):
        assert login(client, viewer).post(u("create_share_link", survey)).status_code == 403
        assert not SurveyShareLink.objects.unscoped().exists()


class TestRemindAndClose:
    def test_reminders(self, client, editor, survey, mailoutbox, django_capture_on_commit_callbacks):
        factories.invitee(survey, "late@x.test")
        mailoutbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            response = login(client, editor).post(u("send_reminders", survey))
        assert response.status_code == 302
        assert [m.to for m in mailoutbox] == [["late@x.test"]]

    def test_reminders_say_how_many_were_skipped(
        self, client, editor, survey, mailoutbox, django_capture_on_commit_callbacks
    ):
        factories.invitee(survey, "late@x.test")
        recent = factories.invitee(survey, "recent@x.test")
        SurveyInvitee.objects.unscoped().filter(pk=recent.pk).update(
            last_reminded_at=timezone.now() - timedelta(hours=1)
        )
        mailoutbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            response = login(client, editor).post(u("send_reminders", survey), follow=True)
        assert response.status_code == 200
        assert [m.to for m in mailoutbox] == [["late@x.test"]]
        assert b"Reminder sent to 1 people" in response.content
        assert b"1 skipped: reminded less than 24 hours ago" in response.content

    def test_reminders_need_the_editor_role(self, client, viewer, survey, mailoutbox):
        factories.invitee(survey, "late@x.test")
        mailoutbox.clear()
        assert login(client, viewer).post(u("send_reminders", survey)).status_code == 403
        assert mailoutbox == [] and SurveyInvitee.objects.unscoped().get().reminder_count == 0

    def test_close(self, client, editor, survey):
        assert login(client, editor).post(u("close", survey)).status_code == 302
        survey.refresh_from_db()
        assert survey.is_closed
        response = client.post(u("send_reminders", survey))
        assert response.status_code == 400 and b"closed" in response.content

    def test_close_needs_the_editor_role(self, client, viewer, survey):
        assert login(client, viewer).post(u("close", survey)).status_code == 403
        survey.refresh_from_db()
        assert not survey.is_closed


class TestResponseRate:
    def test_page_and_json(self, client, viewer, survey):
        member = factories.member_invitee(survey, viewer)
        factories.answer(survey, invitee=member)
        client = login(client, viewer)
        page = client.get(u("response_rate", survey))
        assert page.status_code == 200 and b"js/survey_rate.js" in page.content
        data = client.get(u("response_rate_json", survey)).json()
        assert data["totals"]["answered"] == 1 and data["status"] == "open"
        assert data["departments"][0]["label"] == "Sales"

    def test_it_shows_how_often_the_share_link_was_opened(self, client, viewer, survey):
        old = services.share_link_create(survey=survey)
        client.get(reverse("surveys:answer", args=[old.token()]))
        link = services.share_link_create(survey=survey)  # replaces the first: its opens still count
        for _ in range(2):
            assert client.get(reverse("surveys:answer", args=[link.token()])).status_code == 200
        client = login(client, viewer)
        page = client.get(u("response_rate", survey))
        assert b'share link opened <span data-total="share_opens">3</span> times' in page.content
        assert client.get(u("response_rate_json", survey)).json()["totals"]["share_opens"] == 3


class TestResults:
    @pytest.fixture
    def answered(self, survey):
        factories.answer(
            survey,
            department="sales",
            ratings={"Logged in": 2, "Added photo": 6, "Shared photo": 9},
            answer="<script>alert(1)</script> Shared photo!",
            proposals=[("Printed album", "Orders prints")],
        )
        factories.answer(survey, department="product", ratings={"Logged in": 4, "Added photo": 6, "Shared photo": None})
        return survey

    def test_it_works(self, client, viewer, answered):
        response = login(client, viewer).get(u("results", answered) + "?sort=disagreement")
        assert response.status_code == 200
        content = response.content.decode()
        assert "&lt;script&gt;alert(1)&lt;/script&gt; <mark>Shared photo</mark>!" in content
        assert "<script>alert(1)" not in content
        assert 'class="heat-2"' in content and 'class="heat-4"' in content
        assert "Printed album" in content
        assert "style=" not in content  # CSP: no inline styles
        assert "Accept into catalog" not in content  # viewer

    def test_unknown_sort_falls_back(self, client, viewer, answered):
        client = login(client, viewer)
        fallback = client.get(u("results", answered) + "?sort=evil")
        default = client.get(u("results", answered))
        assert fallback.status_code == 200 and fallback.context["sort"] == "importance"

        def rows(response):
            return [stat.activity.name for stat in response.context["stats"]]

        # The rows come in the default order (by importance), not in any order "evil" could mean.
        assert rows(fallback) == rows(default) and len(rows(default)) > 1
        means = [stat.mean for stat in fallback.context["stats"] if stat.mean is not None]
        assert means == sorted(means, reverse=True)
        content = fallback.content.decode()
        assert [content.index(name) for name in rows(fallback)] == sorted(content.index(n) for n in rows(fallback))

    def test_csv(self, client, viewer, answered):
        response = login(client, viewer).get(u("results_csv", answered))
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.getvalue().decode())))
        logged_in = next(r for r in rows if r["activity"] == "Logged in")
        assert logged_in["mean"] == "3.00" and logged_in["ratings"] == "2" and logged_in["stddev"] == "1.00"
        assert logged_in["mean_sales"] == "2.00" and logged_in["mean_product"] == "4.00"

    def test_csv_neutralises_formulas(self, client, viewer, tenant):
        survey = factories.survey(tenant, names=["=HYPERLINK(1)"])
        response = login(client, viewer).get(u("results_csv", survey))
        assert "'=HYPERLINK(1)" in response.getvalue().decode()

    def test_accepting_a_proposal(self, client, editor, answered):
        proposal = ProposedActivity.objects.unscoped().get(survey=answered)
        response = login(client, editor).post(u("accept_proposal", answered, proposal.public_id))
        assert response.status_code == 302
        activity = Activity.objects.get(tenant=answered.tenant, name="Printed album")
        assert activity.first_seen_at is None
        plan = client.get(reverse("surveys:tracking_plan", args=[answered.tenant.slug]))
        assert b"Printed album" in plan.content

    def test_accepting_needs_the_editor_role(self, client, viewer, answered):
        proposal = ProposedActivity.objects.unscoped().get(survey=answered)
        assert login(client, viewer).post(u("accept_proposal", answered, proposal.public_id)).status_code == 403
        assert not Activity.objects.unscoped().filter(name="Printed album").exists()

    def test_another_surveys_proposal_is_404(self, client, editor, answered, tenant):
        other = factories.survey(tenant, title="Other")
        proposal = ProposedActivity.objects.unscoped().get(survey=answered)
        response = login(client, editor).post(u("accept_proposal", other, proposal.public_id))
        assert response.status_code == 404
        assert not Activity.objects.unscoped().filter(name="Printed album").exists()


class TestTrackingPlan:
    def test_it_lists_untracked_activities_with_snippets(self, client, viewer, tenant, settings):
        settings.SITE_URL = "https://engage.example.com"
        Activity.objects.create(tenant=tenant, name='It\'s "quoted"')
        from django.utils import timezone

        Activity.objects.create(tenant=tenant, name="Tracked one", first_seen_at=timezone.now())
        response = login(client, viewer).get(reverse("surveys:tracking_plan", args=[tenant.slug]))
        content = response.content.decode()
        assert response.status_code == 200
        assert "Tracked one" not in content
        assert "analytics.host = &quot;https://engage.example.com&quot;" in content
        assert "-X POST https://engage.example.com/v1/track" in content
        assert "YOUR_WRITE_KEY" in content
        # The name is JSON-encoded in code and shell-quoted in curl.
        assert "&quot;It&#x27;s \\&quot;quoted\\&quot;&quot;" in content
        assert "It&#x27;\\&#x27;&#x27;s" in content

    def test_snippets(self, tenant, settings):
        from surveys.selectors import tracking_snippets

        settings.SITE_URL = "http://127.0.0.1:8000"
        activity = Activity.objects.create(tenant=tenant, name="Printed album")
        snippets = tracking_snippets(activity=activity)
        assert 'analytics.track("user-123", "Printed album", {"plan": "pro"})' in snippets["python"]
        assert 'analytics.host = "http://127.0.0.1:8000"' in snippets["python"]
        assert 'apiHost: "127.0.0.1:8000/v1", protocol: "http"' in snippets["javascript"]
        assert 'analytics.track("Printed album"' in snippets["javascript"]
        assert "-u 'YOUR_WRITE_KEY:'" in snippets["curl"]
        assert '"event": "Printed album"' in snippets["curl"]


def test_responses_of_another_tenant_never_show(client, outsider, other_tenant, survey):
    factories.answer(survey, answer="Acme secret answer")
    theirs = factories.survey(other_tenant, title="Globex survey")
    response = login(client, outsider).get(u("results", theirs))
    assert response.status_code == 200
    assert b"Acme secret answer" not in response.content
    assert SurveyResponse.objects.unscoped().filter(survey__tenant=other_tenant).count() == 0


@pytest.mark.parametrize("name", ["results", "detail", "response_rate"])
def test_hot_pages_make_a_constant_number_of_queries(client, viewer, editor, admin_user, survey, name):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(client, viewer)

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(u(name, survey)).status_code == 200
        return len(queries)

    factories.answer(survey, department="sales", proposals=[("Printed album",)])
    before = count()
    for user in (editor, admin_user):
        invitee = factories.member_invitee(survey, user)
        factories.answer(survey, invitee=invitee, proposals=[("Made a story", "", 5)])
    factories.invitee(survey, "guest@x.test")
    assert count() == before
