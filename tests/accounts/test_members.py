"""Members: invitations (send, accept, expire, withdraw), roles, departments and removal."""

import hashlib
import re
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from accounts.models import Department, Invitation, Membership, Role, User
from accounts.services import InvitationError, invitation_accept, invitation_create
from tests.conftest import make_user

from .conftest import log_in, logged_in_user_id

NEW_PASSWORD = "a-long-unusual-passphrase-42"


def members_url(tenant):
    return f"/t/{tenant.slug}/settings/members/"


def member_url(tenant, membership, action=""):
    return f"/t/{tenant.slug}/settings/members/{membership.public_id}/{action}"


def membership_of(user, tenant):
    return Membership.objects.get(user=user, tenant=tenant)


def snapshot(tenant):
    """Everything a members test may change, to compare before/after."""
    return (
        sorted(Membership.objects.filter(tenant=tenant).values_list("user__email", "role", "department")),
        sorted(Invitation.objects.filter(tenant=tenant).values_list("email", "role", "accepted_at", "revoked_at")),
    )


def invite(client, tenant, django_capture_on_commit_callbacks, **data):
    data = {"email": "nora.new@acme.test", "role": Role.EDITOR, "department": Department.MARKETING, **data}
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(members_url(tenant), data)


def link_in(mail) -> str:
    urls = re.findall(r"https?://\S+", mail.body)
    assert len(urls) == 1, mail.body
    return urlparse(urls[0]).path


def token_of(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[1]


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def invitation(tenant, owner):
    """A pending invitation and its token, made through the service."""
    invitation, token = invitation_create(
        tenant=tenant, email="nora.new@acme.test", role=Role.EDITOR, department=Department.MARKETING, invited_by=owner
    )
    return invitation, token


# --- Inviting -------------------------------------------------------------------


def test_it_works(admin_client, tenant, admin_user, mailoutbox, django_capture_on_commit_callbacks):
    response = invite(admin_client, tenant, django_capture_on_commit_callbacks)

    assertRedirects(response, members_url(tenant), fetch_redirect_response=False)
    invitation = Invitation.objects.get(tenant=tenant)
    assert (invitation.email, invitation.role, invitation.department) == (
        "nora.new@acme.test",
        Role.EDITOR,
        Department.MARKETING,
    )
    assert invitation.invited_by == admin_user
    assert invitation.status == "pending"
    # Valid for 7 days.
    assert abs(invitation.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)
    # One email, with a link whose token is stored only as a SHA-256 hash.
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["nora.new@acme.test"]
    assert "Acme" in mail.subject
    token = token_of(link_in(mail))
    assert link_in(mail) == f"/invite/{token}/"
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    for field in Invitation._meta.concrete_fields:
        assert token not in str(getattr(invitation, field.attname))
    # The page confirms and lists the pending invitation.
    page = admin_client.get(members_url(tenant))
    assertContains(page, "Invitation sent to nora.new@acme.test")
    assertContains(page, "nora.new@acme.test")


def test_it_lower_cases_the_email(admin_client, tenant, mailoutbox, django_capture_on_commit_callbacks):
    invite(admin_client, tenant, django_capture_on_commit_callbacks, email="Nora.New@ACME.test")

    assert Invitation.objects.get(tenant=tenant).email == "nora.new@acme.test"


@pytest.mark.parametrize("actor", ["editor", "viewer"])
def test_it_checks_role_to_invite(client, request, tenant, actor, mailoutbox, django_capture_on_commit_callbacks):
    client.force_login(request.getfixturevalue(actor))
    before = snapshot(tenant)

    response = invite(client, tenant, django_capture_on_commit_callbacks)

    assert response.status_code == 403
    assert snapshot(tenant) == before
    assert mailoutbox == []


def test_members_can_read_the_member_list(client, tenant, viewer, editor):
    client.force_login(viewer)

    response = client.get(members_url(tenant))

    assertContains(response, editor.email)
    # No management controls for a viewer.
    assert "Send invitation" not in response.content.decode()


def test_it_is_404_for_another_tenant(outsider_client, tenant, mailoutbox, django_capture_on_commit_callbacks):
    before = snapshot(tenant)

    response = invite(outsider_client, tenant, django_capture_on_commit_callbacks)

    assert response.status_code == 404
    assert snapshot(tenant) == before
    assert mailoutbox == []


def test_it_rejects_an_invalid_email(admin_client, tenant, mailoutbox, django_capture_on_commit_callbacks):
    before = snapshot(tenant)

    response = invite(admin_client, tenant, django_capture_on_commit_callbacks, email="not-an-email")

    assertContains(response, "Enter a valid email address.", status_code=400)
    assert snapshot(tenant) == before
    assert mailoutbox == []


def test_it_rejects_an_unknown_role_or_department(admin_client, tenant, mailoutbox, django_capture_on_commit_callbacks):
    before = snapshot(tenant)

    response = invite(admin_client, tenant, django_capture_on_commit_callbacks, role="superhero", department="moon")

    assertContains(response, "Select a valid choice. superhero is not one of the available choices.", status_code=400)
    assertContains(response, "Select a valid choice. moon is not one of the available choices.", status_code=400)
    assert snapshot(tenant) == before


def test_it_rejects_inviting_an_existing_member(
    admin_client, tenant, editor, mailoutbox, django_capture_on_commit_callbacks
):
    before = snapshot(tenant)

    response = invite(admin_client, tenant, django_capture_on_commit_callbacks, email=editor.email.upper())

    assertContains(response, f"{editor.email} is already a member of Acme.", status_code=400)
    assert snapshot(tenant) == before
    assert mailoutbox == []


def test_an_admin_cannot_invite_an_owner(admin_client, tenant, mailoutbox, django_capture_on_commit_callbacks):
    before = snapshot(tenant)

    response = invite(admin_client, tenant, django_capture_on_commit_callbacks, role=Role.OWNER)

    assertContains(response, "Select a valid choice. owner is not one of the available choices.", status_code=400)
    assert snapshot(tenant) == before
    assert mailoutbox == []


def test_an_owner_can_invite_an_owner(owner_client, tenant, mailoutbox, django_capture_on_commit_callbacks):
    response = invite(owner_client, tenant, django_capture_on_commit_callbacks, role=Role.OWNER)

    assert response.status_code == 302
    assert Invitation.objects.get(tenant=tenant).role == Role.OWNER
    assert len(mailoutbox) == 1


def test_reinviting_replaces_the_pending_invitation(
    client, admin_client, tenant, mailoutbox, django_capture_on_commit_callbacks
):
    invite(admin_client, tenant, django_capture_on_commit_callbacks, role=Role.VIEWER)
    invite(admin_client, tenant, django_capture_on_commit_callbacks, role=Role.EDITOR)

    assert len(mailoutbox) == 2
    old_link, new_link = link_in(mailoutbox[0]), link_in(mailoutbox[1])
    assert old_link != new_link
    pending = Invitation.objects.filter(tenant=tenant, revoked_at=None)
    assert [i.role for i in pending] == [Role.EDITOR]
    client.logout()
    assertContains(client.get(old_link), "withdrawn or replaced", status_code=410)
    assertContains(client.get(new_link), "Join Acme")


def test_no_mail_is_sent_when_the_invitation_is_rolled_back(
    tenant, owner, mailoutbox, django_capture_on_commit_callbacks
):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                invitation_create(
                    tenant=tenant, email="nora.new@acme.test", role=Role.VIEWER, department="other", invited_by=owner
                )
                raise RuntimeError("something later failed")
        except RuntimeError:
            pass

    assert mailoutbox == []
    assert not Invitation.objects.unscoped().exists()


# --- Accepting ------------------------------------------------------------------


def test_a_new_person_sees_the_form(client, invitation):
    _invitation, token = invitation

    response = client.get(f"/invite/{token}/")

    assertContains(response, "Join Acme")
    assertContains(response, "nora.new@acme.test")
    assertContains(response, 'name="password"')
    assert "no-store" in response["Cache-Control"]


def test_a_new_person_accepts(client, tenant, invitation):
    invitation, token = invitation

    response = client.post(f"/invite/{token}/", {"full_name": "Nora New", "password": NEW_PASSWORD})

    assertRedirects(response, f"/t/{tenant.slug}/", fetch_redirect_response=False)
    user = User.objects.get(email="nora.new@acme.test")
    assert user.full_name == "Nora New"
    assert user.check_password(NEW_PASSWORD)
    membership = membership_of(user, tenant)
    assert (membership.role, membership.department) == (Role.EDITOR, Department.MARKETING)
    invitation.refresh_from_db()
    assert invitation.accepted_by == user
    assert invitation.accepted_at is not None
    assert logged_in_user_id(client) == str(user.pk)


def test_a_new_person_needs_a_good_password(client, tenant, invitation):
    _invitation, token = invitation
    before = snapshot(tenant)

    response = client.post(f"/invite/{token}/", {"full_name": "Nora New", "password": "nora.new@acme.test"})

    assertContains(response, "The password is too similar to the email.", status_code=400)
    assert snapshot(tenant) == before
    assert not User.objects.filter(email="nora.new@acme.test").exists()


def test_a_new_person_needs_a_name(client, tenant, invitation):
    _invitation, token = invitation
    before = snapshot(tenant)

    response = client.post(f"/invite/{token}/", {"full_name": "", "password": NEW_PASSWORD})

    assertContains(response, "This field is required.", status_code=400)
    assert snapshot(tenant) == before


def test_a_logged_in_user_accepts(client, tenant, other_tenant, outsider, owner):
    _invitation, token = invitation_create(
        tenant=tenant, email=outsider.email, role=Role.VIEWER, department=Department.FINANCE, invited_by=owner
    )
    client.force_login(outsider)

    page = client.get(f"/invite/{token}/")
    assertContains(page, f"You will join as <strong>{outsider.email}</strong>", html=False)
    response = client.post(f"/invite/{token}/")

    assertRedirects(response, f"/t/{tenant.slug}/", fetch_redirect_response=False)
    membership = membership_of(outsider, tenant)
    assert (membership.role, membership.department) == (Role.VIEWER, Department.FINANCE)
    # Still a member of their own workspace too.
    assert membership_of(outsider, other_tenant).role == Role.OWNER


def test_an_anonymous_visitor_with_an_account_is_sent_to_log_in(client, tenant, other_tenant, outsider, owner):
    _invitation, token = invitation_create(
        tenant=tenant, email=outsider.email.upper(), role=Role.VIEWER, department="other", invited_by=owner
    )

    response = client.get(f"/invite/{token}/")

    assertRedirects(response, f"/login/?next=/invite/{token}/", fetch_redirect_response=False)
    # Posting a new account for that email does not work either.
    response = client.post(f"/invite/{token}/", {"full_name": "Mallory", "password": NEW_PASSWORD})
    assert response.status_code == 302
    assert not Membership.objects.filter(tenant=tenant, user=outsider).exists()
    # After logging in, the invitation can be accepted.
    response = log_in(client, outsider.email)
    assert response.status_code == 302
    client.post(f"/invite/{token}/")
    assert membership_of(outsider, tenant).role == Role.VIEWER


def test_an_expired_invitation_is_refused(client, tenant, invitation):
    invitation, token = invitation
    Invitation.objects.unscoped().filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client.post(f"/invite/{token}/", {"full_name": "Nora New", "password": NEW_PASSWORD})

    assertContains(response, "expired", status_code=410)
    assert not User.objects.filter(email="nora.new@acme.test").exists()


def test_a_used_invitation_is_refused(client, tenant, invitation):
    invitation, token = invitation
    nora = make_user("nora.new@acme.test", "Nora New")
    invitation_accept(token=token, user=nora)
    before = snapshot(tenant)

    response = client.post(f"/invite/{token}/", {"full_name": "Nora New", "password": NEW_PASSWORD})

    assertContains(response, "already been used", status_code=410)
    assert snapshot(tenant) == before
    assert User.objects.filter(email="nora.new@acme.test").count() == 1


def test_another_login_cannot_redeem_an_invitation(client, tenant, other_tenant, outsider, owner):
    """The attack: B's owner holds a leaked link to an admin invitation of A."""
    invitation, token = invitation_create(
        tenant=tenant, email="victim@acme.test", role=Role.ADMIN, department=Department.OTHER, invited_by=owner
    )
    client.force_login(outsider)
    before = snapshot(tenant)

    page = client.get(f"/invite/{token}/")
    response = client.post(f"/invite/{token}/")

    for answer in (page, response):
        assertContains(answer, "This invitation is for victim@acme.test", status_code=403)
        assertContains(answer, f"you are logged in as {outsider.email}", status_code=403)
        assertNotContains(answer, "Join Acme</button>", status_code=403)
    assert not Membership.objects.filter(tenant=tenant, user=outsider).exists()
    assert snapshot(tenant) == before
    invitation.refresh_from_db()
    assert invitation.status == "pending" and invitation.accepted_by is None
    # The service refuses too, whoever calls it.
    with pytest.raises(InvitationError, match="victim@acme.test"):
        invitation_accept(token=token, user=outsider)
    # The invited address can still use the link afterwards.
    victim = make_user("Victim@acme.test", "Victor Tim")
    client.force_login(victim)
    assertRedirects(client.post(f"/invite/{token}/"), f"/t/{tenant.slug}/", fetch_redirect_response=False)
    assert membership_of(victim, tenant).role == Role.ADMIN


def test_a_withdrawn_invitation_is_refused(client, admin_client, tenant, invitation):
    invitation, token = invitation
    response = admin_client.post(f"/t/{tenant.slug}/settings/invitations/{invitation.public_id}/revoke/")
    assertRedirects(response, members_url(tenant), fetch_redirect_response=False)
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    client.logout()

    response = client.get(f"/invite/{token}/")

    assertContains(response, "withdrawn", status_code=410)


def test_an_unknown_token_is_refused(client, db):
    assertContains(client.get("/invite/not-a-real-token/"), "not valid", status_code=410)


@pytest.mark.parametrize("actor", ["editor", "viewer"])
def test_it_checks_role_to_withdraw(client, request, tenant, invitation, actor):
    invitation, token = invitation
    client.force_login(request.getfixturevalue(actor))

    response = client.post(f"/t/{tenant.slug}/settings/invitations/{invitation.public_id}/revoke/")

    assert response.status_code == 403
    invitation.refresh_from_db()
    assert invitation.status == "pending"


# --- Roles and departments -------------------------------------------------------


def test_an_admin_changes_role_and_department(admin_client, tenant, viewer):
    response = admin_client.post(
        member_url(tenant, membership_of(viewer, tenant)), {"role": Role.EDITOR, "department": Department.SUPPORT}
    )

    assertRedirects(response, members_url(tenant), fetch_redirect_response=False)
    membership = membership_of(viewer, tenant)
    assert (membership.role, membership.department) == (Role.EDITOR, Department.SUPPORT)


@pytest.mark.parametrize("actor", ["editor", "viewer"])
def test_it_checks_role_to_change_roles(client, request, tenant, viewer, editor, actor):
    client.force_login(request.getfixturevalue(actor))
    before = snapshot(tenant)

    response = client.post(
        member_url(tenant, membership_of(viewer, tenant)), {"role": Role.ADMIN, "department": Department.SUPPORT}
    )

    assert response.status_code == 403
    assert snapshot(tenant) == before


def test_it_rejects_an_unknown_role(admin_client, tenant, viewer):
    before = snapshot(tenant)

    response = admin_client.post(
        member_url(tenant, membership_of(viewer, tenant)), {"role": "god", "department": Department.SUPPORT}
    )

    assertContains(response, "Choose a valid role and department.", status_code=400)
    assert snapshot(tenant) == before


def test_the_last_owner_cannot_be_demoted(owner_client, tenant, owner, admin_user):
    before = snapshot(tenant)

    response = owner_client.post(
        member_url(tenant, membership_of(owner, tenant)), {"role": Role.ADMIN, "department": Department.OTHER}
    )

    assertContains(response, "The last owner cannot be demoted.", status_code=400)
    assert snapshot(tenant) == before


def test_the_last_owner_cannot_be_removed(owner_client, tenant, owner, admin_user):
    before = snapshot(tenant)

    response = owner_client.post(member_url(tenant, membership_of(owner, tenant), "remove/"))

    assertContains(response, "The last owner cannot be removed.", status_code=400)
    assert snapshot(tenant) == before


def test_an_admin_cannot_demote_an_owner(admin_client, tenant, owner):
    before = snapshot(tenant)

    response = admin_client.post(
        member_url(tenant, membership_of(owner, tenant)), {"role": Role.VIEWER, "department": Department.OTHER}
    )

    assertContains(response, "Only an owner can change or remove an owner.", status_code=400)
    assert snapshot(tenant) == before


def test_an_admin_cannot_remove_an_owner(admin_client, tenant, owner):
    before = snapshot(tenant)

    response = admin_client.post(member_url(tenant, membership_of(owner, tenant), "remove/"))

    assertContains(response, "Only an owner can change or remove an owner.", status_code=400)
    assert snapshot(tenant) == before


@pytest.mark.parametrize("target", ["admin_user", "editor"])
def test_an_admin_cannot_grant_owner(admin_client, request, tenant, target):
    user = request.getfixturevalue(target)
    before = snapshot(tenant)

    response = admin_client.post(
        member_url(tenant, membership_of(user, tenant)), {"role": Role.OWNER, "department": Department.OTHER}
    )

    assertContains(response, "Only an owner can change or remove an owner.", status_code=400)
    assert snapshot(tenant) == before


def test_an_owner_makes_another_owner(owner_client, tenant, owner, admin_user):
    response = owner_client.post(
        member_url(tenant, membership_of(admin_user, tenant)),
        {"role": Role.OWNER, "department": Department.ENGINEERING},
    )

    assert response.status_code == 302
    assert membership_of(admin_user, tenant).role == Role.OWNER
    # With two owners, the first may now step down.
    response = owner_client.post(
        member_url(tenant, membership_of(owner, tenant)), {"role": Role.ADMIN, "department": Department.OTHER}
    )
    assert response.status_code == 302
    assert membership_of(owner, tenant).role == Role.ADMIN


# --- Removing -------------------------------------------------------------------


def test_an_admin_removes_a_member(admin_client, tenant, editor):
    response = admin_client.post(member_url(tenant, membership_of(editor, tenant), "remove/"))

    assertRedirects(response, members_url(tenant), fetch_redirect_response=False)
    assert not Membership.objects.filter(tenant=tenant, user=editor).exists()
    # The user still exists; they just lost access.
    assert User.objects.filter(pk=editor.pk).exists()
    assert admin_client.get(f"/t/{tenant.slug}/").status_code == 200
    admin_client.force_login(editor)
    assert admin_client.get(f"/t/{tenant.slug}/").status_code == 404


@pytest.mark.parametrize("actor", ["editor", "viewer"])
def test_it_checks_role_to_remove(client, request, tenant, editor, viewer, actor):
    client.force_login(request.getfixturevalue(actor))
    target = viewer if actor == "editor" else editor
    before = snapshot(tenant)

    response = client.post(member_url(tenant, membership_of(target, tenant), "remove/"))

    assert response.status_code == 403
    assert snapshot(tenant) == before


def test_another_tenants_membership_is_404(admin_client, tenant, other_tenant, outsider):
    foreign = membership_of(outsider, other_tenant)

    update = admin_client.post(member_url(tenant, foreign), {"role": Role.VIEWER, "department": Department.OTHER})
    remove = admin_client.post(member_url(tenant, foreign, "remove/"))

    assert update.status_code == 404
    assert remove.status_code == 404
    foreign.refresh_from_db()
    assert foreign.role == Role.OWNER


def test_another_tenants_invitation_is_404(admin_client, tenant, other_tenant, outsider):
    foreign, token = invitation_create(
        tenant=other_tenant, email="x@globex.test", role=Role.VIEWER, department="other", invited_by=outsider
    )

    response = admin_client.post(f"/t/{tenant.slug}/settings/invitations/{foreign.public_id}/revoke/")

    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == "pending"
