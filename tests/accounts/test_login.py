"""Log-in by email, log-out, and django-axes lockout of a username+IP pair.

Axes keeps attempts in the database with the embedded default (rolled back
with each test) and in the Redis cache when REDIS_URL is set (emptied before
each test by tests/accounts/conftest.py), so these tests run in both setups.
The test client always comes from 127.0.0.1.
"""

import pytest
from django.conf import settings
from django.core.cache import cache
from pytest_django.asserts import assertContains, assertRedirects

from tests.conftest import PASSWORD

from .conftest import log_in, logged_in_user_id

LOCKED_TEXT = "Too many failed log-in attempts"
WRONG_TEXT = "Please enter a correct email and password."


@pytest.fixture(autouse=True)
def _fresh_attempts(db):
    cache.clear()


def fail_until_locked(client, email):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, email, "not-the-password")


def test_it_works(client, owner, tenant):
    response = log_in(client, owner.email)

    assertRedirects(response, "/", fetch_redirect_response=False)
    assert logged_in_user_id(client) == str(owner.pk)
    assertRedirects(client.get("/"), f"/t/{tenant.slug}/")


def test_it_ignores_the_case_of_the_email(client, owner, tenant):
    response = log_in(client, "Olivia.OWNER@Acme.Test")

    assert response.status_code == 302
    assert logged_in_user_id(client) == str(owner.pk)


def test_it_follows_next(client, owner, tenant):
    response = client.post(
        f"/login/?next=/t/{tenant.slug}/settings/",
        {"username": owner.email, "password": PASSWORD, "next": f"/t/{tenant.slug}/settings/"},
    )

    assertRedirects(response, f"/t/{tenant.slug}/settings/", fetch_redirect_response=False)


def test_it_rejects_a_wrong_password(client, owner):
    response = log_in(client, owner.email, "not-the-password")

    # Django's LoginView answers an invalid form with 200.
    assertContains(response, WRONG_TEXT)
    assert logged_in_user_id(client) is None


def test_it_rejects_an_unknown_email(client, db):
    response = log_in(client, "nobody@nowhere.test", PASSWORD)

    assertContains(response, WRONG_TEXT)
    assert logged_in_user_id(client) is None


def test_it_rejects_an_inactive_user(client, owner):
    owner.is_active = False
    owner.save()

    response = log_in(client, owner.email)

    assertContains(response, WRONG_TEXT)
    assert logged_in_user_id(client) is None


def test_it_logs_out_by_post(client, owner, tenant):
    log_in(client, owner.email)

    response = client.post("/logout/")

    assertRedirects(response, "/login/", fetch_redirect_response=False)
    assert logged_in_user_id(client) is None
    assert client.get(f"/t/{tenant.slug}/").status_code == 302


def test_it_does_not_log_out_by_get(client, owner, tenant):
    log_in(client, owner.email)

    response = client.get("/logout/")

    assert response.status_code == 405
    assert logged_in_user_id(client) == str(owner.pk)


def test_it_locks_out_after_repeated_failures(client, owner):
    fail_until_locked(client, owner.email)

    # Even the right password is refused now.
    response = log_in(client, owner.email)

    assertContains(response, LOCKED_TEXT, status_code=429)
    assert logged_in_user_id(client) is None


def test_it_locks_out_whatever_the_case_of_the_email(client, owner):
    """Log-in ignores the case of the email, so the lockout must too: else each case variant gets fresh tries."""
    fail_until_locked(client, owner.email)

    response = log_in(client, owner.email.upper())

    assertContains(response, LOCKED_TEXT, status_code=429)
    assert logged_in_user_id(client) is None


def test_it_counts_only_failures(client, owner):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, owner.email, "not-the-password")

    response = log_in(client, owner.email)

    assert response.status_code == 302
    assert logged_in_user_id(client) == str(owner.pk)


def test_it_does_not_lock_another_username_from_the_same_address(client, owner, admin_user):
    fail_until_locked(client, owner.email)

    # Another person behind the same address (an office NAT) is not locked out:
    # a wrong password is an ordinary error, the right one logs in.
    response = log_in(client, admin_user.email, "not-the-password")
    assertContains(response, WRONG_TEXT)

    response = log_in(client, admin_user.email)
    assert response.status_code == 302
    assert logged_in_user_id(client) == str(admin_user.pk)
