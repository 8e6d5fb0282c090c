"""The tenant backstop in the database: PostgreSQL row-level security (RLS).

The scoping layer (`TenantQuerySet.for_tenant`, `accounts.scoping`,
`accounts.api`) and `scoping.tenant_sql`'s predicate in the raw SQL keep every
query inside one tenant. This module makes a forgotten predicate harmless: on
PostgreSQL every table with a `tenant_id` column has

    ENABLE + FORCE ROW LEVEL SECURITY
    POLICY tenant_isolation USING / WITH CHECK
        (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint)

so a statement sees and writes only the rows of the tenant set in
`app.tenant_id`, and nothing at all when it is unset (NULL matches no row: it
fails closed). See docs/security.md, "Row-level security".

Roles. The login of DATABASE_URL (the owner: it runs migrations and owns the
tables) must be a superuser or have BYPASSRLS. Every application connection
switches at once to `engagement_app` (`SET ROLE`, in `on_connection_created`):
NOLOGIN NOSUPERUSER NOBYPASSRLS, owns nothing, may only SELECT/INSERT/UPDATE/
DELETE. No second credential is needed; the role is created by the migration
`accounts.0002_row_level_security`. `migrate` and `flush` run as the owner
(`owner_session`). The explicit way back to the owner for one transaction is
`bypass(reason)`: greppable, used only where no tenant is known yet (a key or
token lookup, the membership gate, the tenant switcher) or where platform code
spans tenants (the admin site, the beat sweep).

Setting the tenant:
- pages and the read API: `tenant_context(tenant)` — a transaction
  (`transaction.atomic`) whose first statement is
  `SELECT set_config('role', 'engagement_app', true), set_config('app.tenant_id', %s, true)`.
  Transaction-local, so nothing survives COMMIT on a persistent (CONN_MAX_AGE)
  or pooled connection. The view *and the rendering of its response* run
  inside (a lazy queryset in a template is evaluated at render time).
- the ingestion hot path (one statement in autocommit): `autocommit_scope`
  sends the same set_config in the same network round trip (psycopg pipeline
  mode: both statements form one implicit transaction up to the Sync).
- Celery tasks and management commands: `session_tenant(tenant_id)` — their
  services open several transactions of their own, so the setting is
  session-level for the task's duration and reset in a `finally`; entering
  reads the previous value in the same statement and logs a leak if one is found.

With `DATABASE_RLS=0`, or on SQLite, every helper here is a no-op (no role
switch, no set_config, no transaction): the policies stay in the schema, and
the owner (a superuser or BYPASSRLS, as required) is not subject to them.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, transaction

log = logging.getLogger(__name__)

APP_ROLE = "engagement_app"
TENANT_SETTING = "app.tenant_id"
USER_SETTING = "app.user_id"

_state = threading.local()


def enabled(using: str = DEFAULT_DB_ALIAS) -> bool:
    return settings.DATABASE_RLS and connections[using].vendor == "postgresql"


def _tenant_value(tenant) -> str:
    pk = getattr(tenant, "pk", tenant)
    if pk is None:
        from .models import TenantScopeError

        raise TenantScopeError("A tenant scope needs a saved tenant.")
    return str(int(pk))


# --- The application role ----------------------------------------------------------------


def _owner_thread() -> bool:
    return getattr(_state, "owner", False)


def set_owner_thread(owner: bool) -> None:
    """Make this thread's connections the owner's (True) or the app role's (False), now and when they reconnect.

    Used by `owner_session` (migrations) and by the test suite, whose own setup
    code (fixtures creating rows of several tenants) is platform code.
    """
    _state.owner = owner
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.connection is not None and enabled():
        # On the driver's connection: this is not the application's work (query counts leave it out).
        with connection.wrap_database_errors:
            connection.connection.execute("SET ROLE NONE" if owner else f"SET ROLE {APP_ROLE}")


def on_connection_created(sender, connection, **kwargs) -> None:
    """Every new application connection becomes `engagement_app` (one statement per connection, not per request)."""
    if connection.vendor != "postgresql" or not settings.DATABASE_RLS or connection.alias not in settings.DATABASES:
        return  # the no-database connection that creates test databases stays the owner
    if _owner_thread():
        return
    try:
        connection.connection.execute(f"SET ROLE {APP_ROLE}")
    except Exception as error:
        # Never go on as the owner, which row-level security does not restrict: drop the
        # connection (the next use connects again and retries).
        connection.connection.close()
        connection.connection = None
        raise ImproperlyConfigured(
            f"Cannot SET ROLE {APP_ROLE} ({error}). Run `manage.py migrate` (it creates the role), "
            "or set DATABASE_RLS=0."
        ) from error


@contextmanager
def owner_session():
    """Run as the owner role for a whole command (migrate, flush): DDL, TRUNCATE, data migrations."""
    previous = _owner_thread()
    set_owner_thread(True)
    try:
        yield
    finally:
        set_owner_thread(previous)


# --- Per transaction ---------------------------------------------------------------------


# The tenant of a URL's slug, set in the same statement (accounts_tenant has no policy): no slug
# match gives '' (no tenant), and the membership check that follows then finds nothing (404).
_BY_SLUG = "COALESCE((SELECT id::text FROM accounts_tenant WHERE slug = %s), '')"


def _current_user() -> str:
    return getattr(_state, "user", "")


@contextmanager
def _local(role: str, tenant: str, using: str = DEFAULT_DB_ALIAS, slug: str | None = None, user: str = ""):
    """A transaction (or savepoint) with the role, tenant and user settings; the outer ones come back after."""
    connection = connections[using]
    nested = connection.in_atomic_block
    value, params = ("%s", [tenant]) if slug is None else (_BY_SLUG, [slug])
    sets = f"set_config('role', %s, true), set_config(%s, {value}, true), set_config(%s, %s, true)"
    set_params = [role, TENANT_SETTING, *params, USER_SETTING, user]
    outer_user = _current_user()
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            if nested:
                # Inside an outer transaction (a test, a bypass within a request): put the outer
                # scope back on the way out; a rollback to the savepoint reverts it by itself.
                cursor.execute(
                    f"SELECT current_setting('role'), COALESCE(current_setting(%s, true), ''), {sets}",
                    [TENANT_SETTING, *set_params],
                )
                previous = cursor.fetchone()[:2]
            else:
                cursor.execute(f"SELECT {sets}", set_params)
        _state.user = user
        try:
            yield
            if nested:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT set_config('role', %s, true), set_config(%s, %s, true), set_config(%s, %s, true)",
                        [previous[0], TENANT_SETTING, previous[1], USER_SETTING, outer_user],
                    )
        finally:
            _state.user = outer_user if nested else ""


@contextmanager
def tenant_context(tenant=None, using: str = DEFAULT_DB_ALIAS, *, slug: str | None = None, user=None):
    """A transaction in which the database shows only `tenant`'s rows (a no-op without RLS).

    `slug`: the tenant named in a URL, resolved by the same statement (pages
    check the membership inside, so the gate itself needs no bypass).
    `user`: the logged-in user, whose own memberships of other tenants the
    switcher lists (the one policy with a second clause, `accounts_membership`).
    """
    if not enabled(using):
        yield
        return
    tenant_value = "" if slug is not None else _tenant_value(tenant)
    with _local(APP_ROLE, tenant_value, using, slug=slug, user=_user_value(user)):
        yield


@contextmanager
def user_context(user, using: str = DEFAULT_DB_ALIAS):
    """The user's own memberships, in every tenant, are visible (the tenant switcher).

    Free inside a page's tenant transaction, which set this user already.
    """
    value = _user_value(user)
    if not enabled(using) or (value and value == _current_user() and connections[using].in_atomic_block):
        yield
        return
    with _local(APP_ROLE, "", using, user=value):
        yield


def _user_value(user) -> str:
    pk = getattr(user, "pk", user)
    return "" if pk is None else str(int(pk))


def set_local_tenant(tenant, using: str = DEFAULT_DB_ALIAS) -> None:
    """Set the tenant for the rest of the current transaction (the read API, once its key is known)."""
    if not enabled(using):
        return
    connection = connections[using]
    if not connection.in_atomic_block:
        raise RuntimeError("set_local_tenant() outside a transaction would last one statement.")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('role', %s, true), set_config(%s, %s, true)",
            [APP_ROLE, TENANT_SETTING, _tenant_value(tenant)],
        )


@contextmanager
def bypass(reason: str, using: str = DEFAULT_DB_ALIAS):
    """DANGER: a transaction as the owner role, which RLS does not restrict.

    Only for reads made before a tenant is known (key and token lookups, the
    membership gate) and for platform code that spans tenants (admin site, beat
    sweep). `reason` says which; keep every use greppable as `rls.bypass(`.
    """
    if not enabled(using):
        yield
        return
    with _local("none", "", using):
        yield


# --- Per task or command -----------------------------------------------------------------


@contextmanager
def session_tenant(tenant, using: str = DEFAULT_DB_ALIAS):
    """The tenant for everything this connection runs until the block ends (tasks, commands).

    Session-level because the services a task calls open (and commit) their own
    transactions. Reset in `finally`, to the previous values, read by the same
    statement that sets the new ones; a leftover tenant found there is logged
    (it would mean a reset was missed) and replaced anyway.
    """
    if not enabled(using):
        yield
        return
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('role'), COALESCE(current_setting(%s, true), ''),"
            " set_config('role', %s, false), set_config(%s, %s, false)",
            [TENANT_SETTING, APP_ROLE, TENANT_SETTING, _tenant_value(tenant)],
        )
        previous_role, previous_tenant = cursor.fetchone()[:2]
    # Nested scopes are legitimate (a command scoped to its tenant runs an eager task that scopes
    # itself): the inner one restores the outer one's tenant. A tenant found with no scope open is a
    # leftover from a missed reset: logged, and cleared at the end.
    outer = getattr(_state, "session_depth", 0)
    if previous_tenant and not outer and not connection.in_atomic_block:
        log.warning("rls: tenant %s was still set on a connection (a missed reset); replaced", previous_tenant)
    _state.session_depth = outer + 1
    try:
        yield
    finally:
        _state.session_depth = outer
        keep = outer or connection.in_atomic_block
        _session_reset(connection, previous_role, previous_tenant if keep else "")


def tenant_id_of(model, pk) -> int | None:
    """The tenant of one row, for a task that was given only the row's id."""
    # RLS bypass: the row's id is all the task message carries; only its tenant_id is read.
    with bypass(f"the tenant of a {model.__name__}, to scope a task"):
        return model._base_manager.filter(pk=pk).values_list("tenant_id", flat=True).first()


@contextmanager
def task_scope(model, pk, using: str = DEFAULT_DB_ALIAS):
    """`session_tenant` for the tenant of `model` row `pk` (a task given a job's id).

    A row that is gone leaves the task unscoped: it then sees no tenant row at
    all, and finds nothing to do.
    """
    if not enabled(using):
        yield
        return
    tenant_id = tenant_id_of(model, pk)
    if tenant_id is None:
        yield
        return
    with session_tenant(tenant_id, using):
        yield


def _session_reset(connection, role: str, tenant: str) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('role', %s, false), set_config(%s, %s, false)", [role, TENANT_SETTING, tenant]
            )
    except Exception:  # noqa: BLE001 - a dead or aborted connection: never reuse it with a tenant set
        if not connection.in_atomic_block:
            connection.close()
        # Inside an aborted transaction the rollback reverts the setting itself.


# --- Autocommit statements (the ingestion hot path) -------------------------------------


@contextmanager
def autocommit_scope(tenant, using: str = DEFAULT_DB_ALIAS):
    """Scope the statement(s) of the block to `tenant` on an autocommit connection, in the same round trip.

    Outside a transaction a transaction-local set_config would end with its own
    statement. In psycopg's pipeline mode the set_config and the block's
    statements are sent together and form one implicit transaction, committed
    at the Sync when the block ends (rolled back whole on an error). Fetch the
    results after the block: fetching inside costs a second round trip. Inside
    a transaction (a caller's atomic, a test) it is a plain transaction-local set.
    Measured: ~50 us a statement on this machine, against ~200 us for
    BEGIN + set_config + COMMIT around it.
    """
    if not enabled(using):
        yield
        return
    connection = connections[using]
    params = [APP_ROLE, TENANT_SETTING, _tenant_value(tenant)]
    sql = "SELECT set_config('role', %s, true), set_config(%s, %s, true)"
    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    with connection.wrap_database_errors, raw.pipeline():
        raw.execute(sql, params, prepare=True)
        yield


def current_tenant_setting(using: str = DEFAULT_DB_ALIAS) -> str | None:
    """What the connection has in `app.tenant_id` now (tests and diagnostics)."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT NULLIF(current_setting(%s, true), '')", [TENANT_SETTING])
        return cursor.fetchone()[0]


# --- Schema (used by migrations) -----------------------------------------------------------

POLICY = "tenant_isolation"
PREDICATE = f"tenant_id = NULLIF(current_setting('{TENANT_SETTING}', true), '')::bigint"


def tenant_tables(cursor) -> list[str]:
    """Every table of the current schema with a tenant_id column: all of them are tenant-owned."""
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped"
        " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.relname"
    )
    return [row[0] for row in cursor.fetchall()]


# Memberships are also read by user before any tenant is chosen (the tenant switcher lists the
# user's own workspaces): they are visible to their own user too, and written only in the tenant.
USER_PREDICATE = f"user_id = NULLIF(current_setting('{USER_SETTING}', true), '')::bigint"
USER_VISIBLE_TABLES = {"accounts_membership"}


def enable_sql(table: str) -> list[str]:
    """The statements that put `table` under the tenant policy (idempotent)."""
    using = f"{PREDICATE} OR {USER_PREDICATE}" if table in USER_VISIBLE_TABLES else PREDICATE
    return [
        f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY',
        f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY',
        f'DROP POLICY IF EXISTS {POLICY} ON "{table}"',
        f'CREATE POLICY {POLICY} ON "{table}" USING ({using}) WITH CHECK ({PREDICATE})',
    ]


ROLE_SQL = f"""
DO $$
BEGIN
    -- Roles are cluster-wide and several databases (test databases too) migrate at once:
    -- create it once, and let a concurrent creation win.
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        BEGIN
            CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    -- A non-superuser owner needs membership to SET ROLE to it.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT {APP_ROLE} TO %I', current_user);
    END IF;
END
$$;
"""  # noqa: S608 (constants only)


def grant_sql() -> list[str]:
    return [
        f"GRANT USAGE ON SCHEMA {{schema}} TO {APP_ROLE}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {{schema}} TO {APP_ROLE}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {{schema}} TO {APP_ROLE}",
        # Tables and sequences later migrations create (as this same owner) get the same grants.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {{schema}} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {{schema}} GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}",
    ]


def install(schema_editor) -> None:
    """Create the role, grant it DML, and put every tenant table under the policy."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(ROLE_SQL)
        cursor.execute("SELECT quote_ident(current_schema())")
        schema = cursor.fetchone()[0]
        for statement in grant_sql():
            cursor.execute(statement.format(schema=schema))
        for table in tenant_tables(cursor):
            for statement in enable_sql(table):
                cursor.execute(statement)


def uninstall(schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table in tenant_tables(cursor):
            cursor.execute(f'DROP POLICY IF EXISTS {POLICY} ON "{table}"')
            cursor.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
            cursor.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')
        # The role is shared by every database of the cluster: it stays.
