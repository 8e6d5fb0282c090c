"""Shared fixtures: the named actors of every test, and service availability.

Tenant A ("Acme") has an owner, an admin, an editor and a viewer; the outsider
owns tenant B ("Globex"). Tests that need PostgreSQL or Redis use the `postgres`
/ `redis` fixtures: they skip with a reason on a bare machine and fail when
REQUIRE_SERVICES=1 (as in CI).
"""

import os
import threading

import pytest
from django.conf import settings as django_settings
from django.core.management.base import BaseCommand
from django.core.signals import request_finished, request_started
from django.test.utils import CaptureQueriesContext

from accounts import rls
from accounts.models import Department, Role, User

from .factories import (
    PASSWORD,  # noqa: F401 - the actors' password, imported from here by the tests
    MembershipFactory,
    ReadKeyFactory,
    TenantFactory,
    UserFactory,
    WriteKeyFactory,
)

# Live-server and thread tests open connections in short-lived threads; persistent
# connections would outlive them and block dropping the test database.
django_settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
# PBKDF2 at production strength costs ~1.4 s a hash here and most actors pay it;
# the suite tests our code, not the hasher (hashing and checking stay real).
django_settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- Row-level security (PostgreSQL): who the test's own code is ------------------------------
# A test's own code (fixtures creating rows of several tenants, assertions reading them) is
# platform code: on the main thread the connection is the owner role. What it tests runs as the
# application role, as in production: every request through the test client and every management
# command switch this thread to `engagement_app` until they end; other threads (the Celery worker
# of the worker tests, live servers) are application connections from the start.
_MAIN_THREAD = threading.main_thread()
rls.set_owner_thread(True)


def _set_owner(owner: bool) -> None:
    if threading.current_thread() is not _MAIN_THREAD:
        return
    try:
        rls.set_owner_thread(owner)
    except Exception:  # noqa: BLE001 - an aborted transaction: its rollback reverts the role anyway
        rls._state.owner = owner


def _request_as_app(**kwargs):
    _set_owner(False)


def _request_done(**kwargs):
    _set_owner(True)


request_started.connect(_request_as_app, dispatch_uid="tests-rls-request-started")
request_finished.connect(_request_done, dispatch_uid="tests-rls-request-finished")

# Query-count bounds guard against queries that grow with the data. The tenant transaction's own
# statements are a fixed cost, tested apart (tests/accounts/test_rls.py: one set_config per page in
# production); here they, and the savepoint a test's outer transaction puts around them, are left
# out of every CaptureQueriesContext (django_assert_num_queries and friends use it).
_RLS_STATEMENTS = ("SET ROLE", "SELECT set_config('role'", "SELECT current_setting('role')")
_captured_queries = CaptureQueriesContext.captured_queries


def _without_rls_statements(self):
    queries = _captured_queries.fget(self)
    kept, savepoints = [], set()
    for i, query in enumerate(queries):
        sql = query["sql"]
        if sql.startswith(_RLS_STATEMENTS):
            continue
        if sql.startswith("SAVEPOINT") and i + 1 < len(queries) and queries[i + 1]["sql"].startswith(_RLS_STATEMENTS):
            savepoints.add(sql.split()[-1])
            continue
        if sql.startswith(("RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")) and sql.split()[-1] in savepoints:
            continue
        kept.append(query)
    return kept


CaptureQueriesContext.captured_queries = property(_without_rls_statements)

_django_execute = BaseCommand.execute


def _execute_as_app(self, *args, **options):
    # migrate and flush switch to the owner themselves (accounts/management/commands).
    if self.__module__.rsplit(".", 1)[-1] in ("migrate", "flush") or not rls._owner_thread():
        return _django_execute(self, *args, **options)
    _set_owner(False)
    try:
        return _django_execute(self, *args, **options)
    finally:
        _set_owner(True)


BaseCommand.execute = _execute_as_app


def _missing(service: str, how: str):
    if django_settings.REQUIRE_SERVICES or os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{service} is required (REQUIRE_SERVICES=1) but {how}.")
    pytest.skip(f"{service} not available: {how}.")


NODE_MODULES = django_settings.BASE_DIR / "node_modules"


def node_package(name: str, version: str):
    """`node_modules/<name>` at the version package-lock.json pins, as `make install` leaves it.

    Missing (no npm on the machine, or `make install` not run): a skip with the reason, and a
    failure in CI (REQUIRE_SERVICES=1 or CI=true), where `make install` must have installed it.
    """
    import json

    manifest = NODE_MODULES / name / "package.json"
    how = f"{manifest} is missing (run `make install` with Node.js and npm)"
    if manifest.is_file():
        found = json.loads(manifest.read_text())["version"]
        if found == version:
            return manifest.parent
        how = f"{name} {found} is installed but package-lock.json pins {version} (run `make install`)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is required in CI but {how}.")
    _missing(name, how)


@pytest.fixture
def postgres():
    if django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        _missing("PostgreSQL", "DATABASE_URL does not point at PostgreSQL")


@pytest.fixture(scope="session")
def redis_url():
    url = django_settings.REDIS_URL
    if not url:
        _missing("Redis", "REDIS_URL is not set")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        _missing("Redis", f"{url} does not answer ({error})")
    return url


def make_user(email: str, name: str) -> User:
    return UserFactory(email=email, full_name=name)


@pytest.fixture
def owner(db):
    return make_user("olivia.owner@acme.test", "Olivia Owner")


@pytest.fixture
def tenant(owner):
    return TenantFactory(owner=owner, name="Acme", product_name="Rocket", time_zone="Europe/Paris")


def _member(tenant, email, name, role, department=Department.OTHER):
    return MembershipFactory(tenant=tenant, user=make_user(email, name), role=role, department=department).user


@pytest.fixture
def admin_user(tenant):
    return _member(tenant, "adam.admin@acme.test", "Adam Admin", Role.ADMIN, Department.ENGINEERING)


@pytest.fixture
def editor(tenant):
    return _member(tenant, "eve.editor@acme.test", "Eve Editor", Role.EDITOR, Department.PRODUCT)


@pytest.fixture
def viewer(tenant):
    return _member(tenant, "vic.viewer@acme.test", "Vic Viewer", Role.VIEWER, Department.SALES)


@pytest.fixture
def outsider(db):
    return make_user("oscar.outsider@globex.test", "Oscar Outsider")


@pytest.fixture
def other_tenant(outsider):
    return TenantFactory(owner=outsider, name="Globex", product_name="Widget", time_zone="UTC")


@pytest.fixture
def write_key(tenant):
    """The plaintext of a write key of tenant A (what an SDK sends)."""
    return WriteKeyFactory(tenant=tenant).plaintext


@pytest.fixture
def read_key(tenant):
    """The plaintext of a read key of tenant A (what a sync job sends)."""
    return ReadKeyFactory(tenant=tenant).plaintext


def client_for(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def owner_client(client, owner, tenant):
    return client_for(client, owner)


@pytest.fixture
def outsider_client(client, outsider, other_tenant):
    return client_for(client, outsider)


@pytest.fixture(autouse=True)
def _fresh_insights(settings):
    """Insight results are cached for minutes in production; tests read fresh ones
    (tests/insights/test_cache.py turns the cache on)."""
    settings.INSIGHTS_CACHE_SECONDS = 0
