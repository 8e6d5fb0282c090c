"""Helpers for the accounts tests (the actors live in tests/conftest.py).

With REDIS_URL set the cache is Redis and django-axes keeps its login attempts
there, outside the per-test database transaction: every test here starts with
an empty cache so failed log-ins of one test never lock out another.
"""

import pytest
from django.core.cache import cache

from tests.conftest import PASSWORD


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def log_in(client, email, password=PASSWORD):
    """Log in through the real form (Client.login can't: axes needs the request)."""
    return client.post("/login/", {"username": email, "password": password})


def logged_in_user_id(client):
    return client.session.get("_auth_user_id")
