"""Connection-level helpers: prepared statements on psycopg cursors, the dead-connection retry, the portable lookups."""

from contextlib import contextmanager

from django.db import InterfaceError, OperationalError, connection

from accounts import rls
from accounts.models import Tenant
from accounts.scoping import tenant_sql

INSERT_CHUNK = 500



def _select_by(model, column: str, tenant: Tenant, values, *extra: str) -> list[tuple]:
    """(column, id, *extra) of the tenant's rows whose `column` is one of `values`.

    The lookup of every batch: on PostgreSQL a prepared statement with one
    array parameter; the ORM's IN list of literals was re-planned each time
    and cost more than the event insert.
    """
    values = list(values)
    if connection.vendor == "postgresql":
        fields = ", ".join([column, "id", *extra])
        where, params = tenant_sql(tenant)
        sql = f"SELECT {fields} FROM {model._meta.db_table} WHERE {where} AND {column} = ANY(%s)"  # noqa: S608
        return _fetch_prepared(sql, [*params, values])
    return list(model.objects.for_tenant(tenant).filter(**{f"{column}__in": values}).values_list(column, "pk", *extra))



def _first_statement(run):
    """Run the first statement of a batch; a connection that died since the last request is replaced, once.

    The ingestion path skips Django's per-request health check (a `SELECT 1`
    round trip), so a persistent connection killed by a restart or an idle
    timeout is found here. Running the statement again is safe: each is
    all-or-nothing, and one that did commit before its answer was lost only
    finds duplicates the second time.
    """
    reused = connection.connection is not None  # else the failure was connecting: no second wait
    try:
        return run()
    except (OperationalError, InterfaceError):
        if not reused or connection.in_atomic_block or connection.is_usable():
            raise  # unreachable, a live connection that failed, or a transaction to keep: 503
        connection.close()
        return run()  # on a new connection



def _fetch_prepared(sql: str, params, scope: Tenant | None = None) -> list[tuple]:
    """Run a prepared statement and fetch its rows.

    `scope`: the statement may run outside a transaction (autocommit), so it
    sets the tenant for row-level security itself, in the same round trip
    (`rls.autocommit_scope`). Inside a transaction the tenant is set already.
    """
    with _server_bound_cursor() as cursor:
        if scope is None:
            cursor.execute(sql, params, prepare=True)
        else:
            with rls.autocommit_scope(scope):
                cursor.execute(sql, params, prepare=True)
        return cursor.fetchall()



def _placeholders(columns: int, rows: int) -> str:
    row = ", ".join(["%s"] * columns)
    return ", ".join([f"({row})"] * rows)



@contextmanager
def _server_bound_cursor():
    """A psycopg cursor with server-side parameter binding, inside Django's current transaction.

    Django's psycopg backend binds parameters client-side, quoting each array
    element into the SQL text; server-side binding sends the arrays as they are.
    Errors come out as Django's (OperationalError, IntegrityError, ...), and
    mark the connection for Django's end-of-request check, as with its own cursors.
    """
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor
