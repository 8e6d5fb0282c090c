"""Row-level security, the tenant backstop in the database (accounts/rls.py).

PostgreSQL only: skipped on SQLite, a failure under REQUIRE_SERVICES=1. Raw SQL
here leaves out the tenant predicate on purpose: the policy alone must keep
another tenant's rows out.
"""

import threading

import pytest
from django.apps import apps
from django.db import DatabaseError, connection, connections, transaction

from accounts import rls
from accounts.models import ApiKeyKind, Membership, TenantOwned
from accounts.services import api_key_create
from events.models import EndUser

pytestmark = pytest.mark.postgres


@pytest.fixture
def two_tenants(postgres, tenant, other_tenant):
    EndUser.objects.create(tenant=tenant, user_id="a-1")
    EndUser.objects.create(tenant=tenant, user_id="a-2")
    EndUser.objects.create(tenant=other_tenant, user_id="b-1")
    return tenant, other_tenant


def _tenants_seen(sql="SELECT DISTINCT tenant_id FROM events_enduser ORDER BY 1"):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


def _as_app_role_without_tenant():
    """The application role with app.tenant_id unset, for the rest of the transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('role', %s, true)", [rls.APP_ROLE])


def test_the_suites_own_code_sees_every_tenant_as_the_owner(two_tenants):
    a, b = two_tenants
    assert _tenants_seen() == [a.pk, b.pk]


def test_raw_sql_without_the_tenant_predicate_sees_only_the_current_tenant(two_tenants):
    a, b = two_tenants
    with rls.tenant_context(a):
        assert _tenants_seen() == [a.pk]
        assert _tenants_seen("SELECT count(*) FROM events_enduser") == [2]
    with rls.tenant_context(b):
        assert _tenants_seen() == [b.pk]


def test_without_a_tenant_the_app_role_sees_no_row_at_all(two_tenants):
    with transaction.atomic():
        _as_app_role_without_tenant()
        assert _tenants_seen("SELECT count(*) FROM events_enduser") == [0]
        assert _tenants_seen("SELECT count(*) FROM accounts_membership") == [0]
        # An empty setting (what current_setting gives after an earlier SET LOCAL) is no tenant either.
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('app.tenant_id', '', true)")
        assert _tenants_seen("SELECT count(*) FROM events_enduser") == [0]


def test_the_orm_without_for_tenant_is_held_to_the_tenant_too(two_tenants):
    a, b = two_tenants
    with rls.tenant_context(b):
        assert list(EndUser.objects.unscoped().values_list("user_id", flat=True)) == ["b-1"]
        assert EndUser.objects.filter(tenant=a).count() == 0


def test_inserting_a_row_of_another_tenant_is_rejected(two_tenants):
    a, b = two_tenants
    with pytest.raises(DatabaseError, match="row-level security"):
        with rls.tenant_context(a):
            EndUser.objects.create(tenant=b, user_id="smuggled")
    with pytest.raises(DatabaseError, match="row-level security"):
        with rls.tenant_context(a), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO events_enduser (tenant_id, public_id, user_id, traits, first_seen_at, updated_at)"
                " VALUES (%s, gen_random_uuid(), 'smuggled', '{}', now(), now())",
                [b.pk],
            )
    assert not EndUser.objects.unscoped().filter(user_id="smuggled").exists()


def test_updates_and_deletes_do_not_reach_another_tenant(two_tenants):
    a, b = two_tenants
    with rls.tenant_context(a), connection.cursor() as cursor:
        cursor.execute("UPDATE events_enduser SET user_id = user_id || '-x'")
        assert cursor.rowcount == 2
        cursor.execute("DELETE FROM events_enduser")
        assert cursor.rowcount == 2
    assert list(EndUser.objects.unscoped().values_list("user_id", flat=True)) == ["b-1"]
    with pytest.raises(DatabaseError, match="row-level security"):
        # Moving a row to another tenant fails the WITH CHECK clause.
        with rls.tenant_context(b), connection.cursor() as cursor:
            cursor.execute("UPDATE events_enduser SET tenant_id = %s", [a.pk])


def test_bypass_is_the_owner_for_one_transaction(two_tenants):
    a, b = two_tenants
    with rls.tenant_context(a):
        with rls.bypass("test"):
            assert _tenants_seen() == [a.pk, b.pk]
        assert _tenants_seen() == [a.pk]  # the outer scope is back


def test_role_audit(postgres, db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, rolbypassrls, rolcanlogin, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = %s",
            [rls.APP_ROLE],
        )
        assert cursor.fetchone() == (False, False, False, False, False)
        cursor.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = %s)",
            [rls.APP_ROLE],
        )
        assert cursor.fetchone() == (0,)
        tables = rls.tenant_tables(cursor)
        cursor.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
            " (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %s)"
            " FROM pg_class c WHERE c.relname = ANY(%s) AND c.relnamespace = current_schema()::regnamespace",
            [rls.POLICY, tables],
        )
        rows = cursor.fetchall()
    assert sorted(name for name, *_ in rows) == sorted(tables)
    assert [name for name, enabled, forced, policies in rows if not (enabled and forced and policies == 1)] == []
    tenant_models = {m._meta.db_table for m in apps.get_models() if issubclass(m, TenantOwned)}
    assert tenant_models <= set(tables)
    assert {"events_event", "events_dailyactivitycount", "accounts_membership", "accounts_apikey"} <= set(tables)


@pytest.mark.django_db(transaction=True)
def test_an_application_connection_is_the_app_role(postgres):
    seen = {}

    def run():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_user, session_user, NULLIF(current_setting('app.tenant_id', true), '')")
                seen["row"] = cursor.fetchone()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    current, session, tenant_setting = seen["row"]
    assert current == rls.APP_ROLE and session != rls.APP_ROLE and tenant_setting is None


@pytest.mark.django_db(transaction=True)
def test_nothing_of_a_tenant_survives_its_transaction_on_a_reused_connection(postgres, tenant, other_tenant):
    EndUser.objects.create(tenant=tenant, user_id="a-1")
    EndUser.objects.create(tenant=other_tenant, user_id="b-1")
    conn = connections["default"]
    with rls.tenant_context(tenant):
        backend_pid = conn.connection.info.backend_pid
        assert rls.current_tenant_setting() == str(tenant.pk)
    assert rls.current_tenant_setting() is None
    with rls.tenant_context(other_tenant):
        assert conn.connection.info.backend_pid == backend_pid  # the same connection
        assert _tenants_seen() == [other_tenant.pk]
    assert rls.current_tenant_setting() is None
    # A task's session-level tenant is reset when it ends, even when it fails.
    with pytest.raises(ZeroDivisionError), rls.session_tenant(tenant):
        assert rls.current_tenant_setting() == str(tenant.pk)
        1 / 0  # noqa: B018
    assert rls.current_tenant_setting() is None
    # The ingestion path's autocommit statement: its setting ends with it.
    with conn.cursor() as cursor:
        with rls.autocommit_scope(other_tenant):
            cursor.execute("SELECT count(*) FROM events_enduser")
        assert cursor.fetchone() == (1,)
    assert rls.current_tenant_setting() is None
    with conn.cursor() as cursor:
        cursor.execute("SELECT current_user = session_user")
        assert cursor.fetchone() == (True,)  # this test's own code is the owner again


@pytest.mark.django_db(transaction=True)
def test_a_request_sees_its_tenant_and_keys_are_found_before_it_is_known(postgres, client, owner, tenant, other_tenant):
    # The read API finds the key with no tenant set (an explicit bypass), then runs in the key's tenant.
    _, plaintext = api_key_create(tenant=tenant, kind=ApiKeyKind.READ, name="k")
    response = client.get("/api/v1/tenant", headers={"authorization": f"Bearer {plaintext}"})
    assert response.status_code == 200 and response.json()["slug"] == tenant.slug
    client.force_login(owner)
    response = client.get(f"/t/{tenant.slug}/settings/members/")
    assert response.status_code == 200 and owner.email in response.content.decode()
    assert Membership.objects.unscoped().count() == 2  # the owner of each tenant, seen by the suite as the owner role


def test_memberships_are_visible_to_their_own_user_and_written_only_in_their_tenant(
    postgres, owner, tenant, other_tenant, outsider
):
    Membership.objects.create(tenant=other_tenant, user=owner, role="viewer")
    with rls.user_context(owner):
        # The switcher: the owner's memberships in both tenants, nobody else's.
        assert sorted(Membership.objects.unscoped().values_list("tenant__slug", "user__email")) == [
            (tenant.slug, owner.email),  # acme
            (other_tenant.slug, owner.email),  # globex
        ]
    with rls.tenant_context(tenant):
        assert list(Membership.objects.unscoped().values_list("user__email", flat=True)) == [owner.email]
    with pytest.raises(DatabaseError, match="row-level security"):
        with rls.tenant_context(tenant, user=outsider):
            # Seen as the outsider's own row is not enough to write it into another tenant.
            Membership.objects.unscoped().filter(user=outsider).update(role="owner")
            Membership.objects.create(tenant=other_tenant, user=outsider, role="admin")


@pytest.mark.django_db(transaction=True)
def test_a_page_sets_the_tenant_with_one_statement(postgres, client, owner, tenant, other_tenant):
    """Membership gate, view, rendering and the switcher: one set_config for the whole page."""
    client.force_login(owner)
    client.get(f"/t/{tenant.slug}/settings/")  # session, connection
    statements = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    def rls_statements():
        return [sql for sql in statements if "set_config" in sql or "current_setting" in sql]

    with connection.execute_wrapper(record):
        response = client.get(f"/t/{tenant.slug}/settings/members/")
        assert response.status_code == 200 and owner.email in response.content.decode()
        assert len(rls_statements()) == 1
        assert "accounts_tenant WHERE slug" in rls_statements()[0]  # the URL's tenant, in the same statement
        statements.clear()
        denied = client.get(f"/t/{other_tenant.slug}/settings/members/")
    assert denied.status_code == 404
    # The 404 page renders the switcher after the tenant transaction ended: the user's own memberships.
    assert len(rls_statements()) == 2, rls_statements()


@pytest.mark.django_db(transaction=True)
def test_a_nested_session_scope_gives_the_outer_tenant_back(postgres, tenant, other_tenant):
    """seed_demo scopes itself to the demo tenant and publishing runs an eager task that scopes itself
    too: leaving the task's scope must not leave the command without its tenant."""
    assert not connection.in_atomic_block
    with rls.session_tenant(tenant):
        with rls.session_tenant(other_tenant):
            assert rls.current_tenant_setting() == str(other_tenant.pk)
        assert rls.current_tenant_setting() == str(tenant.pk)
    assert not rls.current_tenant_setting()
