"""Password reset by email: Django's confirm flow with our templates."""

import re
from urllib.parse import urlparse

import pytest
from pytest_django.asserts import assertContains, assertRedirects

from tests.conftest import PASSWORD

from .conftest import log_in, logged_in_user_id

NEW_PASSWORD = "a-brand-new-passphrase-77"


def reset_link(mail) -> str:
    """The path of the reset link in an email."""
    urls = re.findall(r"https?://\S+", mail.body)
    assert len(urls) == 1, mail.body
    return urlparse(urls[0]).path


@pytest.fixture
def reset_mail(client, owner, mailoutbox):
    response = client.post("/password-reset/", {"email": owner.email})
    assertRedirects(response, "/password-reset/sent/")
    assert len(mailoutbox) == 1
    return mailoutbox[0]


def set_new_password(client, link, password=NEW_PASSWORD):
    response = client.get(link)
    # Django swaps the token for a session value and redirects to .../set-password/.
    assert response.status_code == 302
    form_url = response["Location"]
    assert form_url.endswith("/set-password/")
    assertContains(client.get(form_url), "Choose a new password")
    return client.post(form_url, {"new_password1": password, "new_password2": password})


def test_it_sends_a_reset_email(reset_mail, owner):
    assert reset_mail.to == [owner.email]
    assert "Reset your engagement_site password" in reset_mail.subject
    assert reset_link(reset_mail).startswith("/password-reset/")


def test_it_ignores_the_case_of_the_email(client, owner, mailoutbox):
    client.post("/password-reset/", {"email": owner.email.upper()})

    assert [m.to for m in mailoutbox] == [[owner.email]]


def test_it_sets_a_new_password(client, owner, reset_mail):
    response = set_new_password(client, reset_link(reset_mail))

    assertRedirects(response, "/password-reset/done/")
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)
    assert not owner.check_password(PASSWORD)


def test_the_new_password_logs_in(client, owner, tenant, reset_mail):
    set_new_password(client, reset_link(reset_mail))
    client.logout()

    assert log_in(client, owner.email, PASSWORD).status_code == 200  # the old one no longer works
    assert logged_in_user_id(client) is None
    assert log_in(client, owner.email, NEW_PASSWORD).status_code == 302
    assert logged_in_user_id(client) == str(owner.pk)


def test_the_link_works_only_once(client, owner, reset_mail):
    link = reset_link(reset_mail)
    set_new_password(client, link)

    response = client.get(link, follow=True)

    assertContains(response, "Link not valid")
    # Posting a password anyway changes nothing.
    client.post(
        link.rstrip("/").rsplit("/", 1)[0] + "/set-password/",
        {"new_password1": "x-other-pass-99", "new_password2": "x-other-pass-99"},
    )
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)


def test_it_rejects_a_weak_new_password(client, owner, reset_mail):
    response = set_new_password(client, reset_link(reset_mail), password="123")

    assertContains(response, "This password is too short.")
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_it_rejects_a_tampered_link(client, owner, reset_mail):
    link = reset_link(reset_mail)
    tampered = link[:-3] + ("a" if link[-3] != "a" else "b") + link[-2:]

    assertContains(client.get(tampered, follow=True), "Link not valid")
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_it_does_not_tell_whether_an_email_is_known(client, db, mailoutbox):
    response = client.post("/password-reset/", {"email": "nobody@nowhere.test"}, follow=True)

    assertRedirects(response, "/password-reset/sent/")
    assertContains(response, "Check your email")
    assert mailoutbox == []
