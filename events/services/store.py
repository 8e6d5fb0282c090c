"""Events and the daily rollup: the portable inserts, and the PostgreSQL statements that do both in one round trip."""

import json
from collections import Counter
from datetime import datetime

import orjson
from django.db import OperationalError, connection

from accounts.models import Tenant

from .. import partitions
from ..models import DailyActivityCount, Event, MessageId
from ..pg_arrays import DateArray, TextArray, TimestampArray
from .db import INSERT_CHUNK, _fetch_prepared, _placeholders, _server_bound_cursor

EVENT_COLUMNS = (
    "tenant_id, message_id, type, end_user_id, activity_id, account_id, timestamp, received_at, day, payload"
)



def _insert_events(tenant: Tenant, rows: list[tuple]) -> list[tuple[int, int | None, object, str]]:
    """Insert event rows (without tenant), skipping duplicate message ids.

    Returns (end_user, activity, day, message_id) of the rows actually stored. The
    portable path (SQLite); PostgreSQL stores a batch with `STORE_SQL`. As there, the ids
    go into `MessageId` first and only the new ones are stored (the first row of an id
    the batch holds twice), so an event deleted by retention is still a duplicate.
    """
    table = Event._meta.db_table
    ids_table = MessageId._meta.db_table
    stored: list[tuple] = []
    with connection.cursor() as cursor:
        ops = connection.ops
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            ids = list(dict.fromkeys(row[0] for row in chunk))
            cursor.execute(
                f"INSERT INTO {ids_table} (tenant_id, message_id) VALUES {_placeholders(2, len(ids))} "  # noqa: S608
                "ON CONFLICT (tenant_id, message_id) DO NOTHING RETURNING message_id",
                [value for message_id in ids for value in (tenant.pk, message_id)],
            )
            fresh = {row[0] for row in cursor.fetchall()}
            params = []
            for message_id, type_, eu, act, acc, ts, received, day, payload in chunk:
                if message_id not in fresh:
                    continue
                fresh.discard(message_id)  # the first row of an id is the one stored
                ts, received = ops.adapt_datetimefield_value(ts), ops.adapt_datetimefield_value(received)
                params += [tenant.pk, message_id, type_, eu, act, acc, ts, received, ops.adapt_datefield_value(day)]
                params.append(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))
            if not params:
                continue
            values = _placeholders(10, len(params) // 10)
            cursor.execute(
                f"INSERT INTO {table} ({EVENT_COLUMNS}) VALUES {values} "  # noqa: S608
                "RETURNING end_user_id, activity_id, day, message_id",
                params,
            )
            stored.extend(cursor.fetchall())
    return stored



def _add_to_rollup(tenant: Tenant, counts: Counter) -> None:
    """Add counts to the rollup, in key order so concurrent batches lock rows in the same order."""
    if not counts:
        return
    table = DailyActivityCount._meta.db_table
    upsert = f"ON CONFLICT (end_user_id, activity_id, day) DO UPDATE SET count = {table}.count + excluded.count"
    keys = sorted(counts)
    if connection.vendor == "postgresql":
        with _server_bound_cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (tenant_id, end_user_id, activity_id, day, count) "  # noqa: S608
                "SELECT %b, eu, act, d, n FROM unnest(%b::bigint[], %b::bigint[], %b::date[], %b::int[]) "
                f"AS u(eu, act, d, n) {upsert}",
                [
                    tenant.pk,
                    [k[0] for k in keys],
                    [k[1] for k in keys],
                    [k[2] for k in keys],
                    [counts[k] for k in keys],
                ],
            )
            return
    with connection.cursor() as cursor:
        ops = connection.ops
        for start in range(0, len(keys), INSERT_CHUNK):
            chunk = keys[start : start + INSERT_CHUNK]
            params = []
            for end_user_id, activity_id, day in chunk:
                count = counts[(end_user_id, activity_id, day)]
                params += [tenant.pk, end_user_id, activity_id, ops.adapt_datefield_value(day), count]
            cursor.execute(
                f"INSERT INTO {table} (tenant_id, end_user_id, activity_id, day, count) "  # noqa: S608
                f"VALUES {_placeholders(5, len(chunk))} {upsert}",
                params,
            )



def _day_value(value):
    # Rows come back from RETURNING as date (PostgreSQL) or ISO text (SQLite).
    return value if not isinstance(value, str) else datetime.fromisoformat(value).date()



# The end of both store statements: the rollup adds exactly the rows the insert returned
# (duplicates are skipped), in key order so concurrent batches lock in the same order; the
# answer is (whether every end user and activity was there, how many were stored, the message
# ids stored of the messages with no activity: identify, group and alias, whose traits
# `_ingest_in_transaction` applies only when their message is new).
_ROLLUP_STORED = """
), counted AS (
    INSERT INTO events_dailyactivitycount AS r (tenant_id, end_user_id, activity_id, day, count)
    SELECT %(tenant)b, end_user_id, activity_id, day, count(*) FROM stored WHERE activity_id IS NOT NULL
    GROUP BY end_user_id, activity_id, day ORDER BY end_user_id, activity_id, day
    ON CONFLICT (end_user_id, activity_id, day) DO UPDATE SET count = r.count + excluded.count
)
SELECT (SELECT ok FROM complete), count(*), array_agg(message_id) FILTER (WHERE activity_id IS NULL) FROM stored
"""

_INSERT_EVENTS = """
    INSERT INTO events_event (tenant_id, message_id, type, end_user_id, activity_id, account_id,
                              timestamp, received_at, day, payload)"""

# How the insert skips duplicates, by layout of events_event (events/partitions.py).
# Plain table (SQLite; PostgreSQL with EVENTS_PARTITIONED=0): its unique (tenant, message_id).
_PLAIN_DEDUPE = """
    WHERE (SELECT ok FROM complete)
    ORDER BY m
    ON CONFLICT (tenant_id, message_id) DO NOTHING
    RETURNING end_user_id, activity_id, day, message_id
"""


def _partitioned(batch: str, columns: str) -> str:
    """The partitioned table: the ids go into events_messageid first, and only the new ones are stored.

    `batch` yields the rows (with `m`, the message id, and `i`, their order); the first of two
    rows of a batch with one id is the one stored. All in the same statement, so the dedupe
    is exact across months, retries and concurrent batches (a concurrent insert of the same
    id waits on the unique index and then finds it taken).
    """
    return f"""
), batch AS (
    SELECT DISTINCT ON (m) * FROM ({batch}) AS rows WHERE (SELECT ok FROM complete) ORDER BY m, i
), fresh AS (
    INSERT INTO events_messageid (tenant_id, message_id)
    SELECT %(tenant)b, m FROM batch ORDER BY m
    ON CONFLICT (tenant_id, message_id) DO NOTHING
    RETURNING message_id
), stored AS ({_INSERT_EVENTS}
    SELECT %(tenant)b, {columns} FROM batch JOIN fresh ON fresh.message_id = batch.m
    ORDER BY m
    RETURNING end_user_id, activity_id, day, message_id
"""  # noqa: S608 (constants only)


# One statement: the batch as one binary array per column (psycopg sends these without quoting
# each element; json_to_recordset() was measured at 3x the PostgreSQL CPU for the same rows).
# Events are inserted in message-id order and the rollup rows in key order, so concurrent batches
# take their locks in the same order; the rollup adds exactly the rows the insert stored
# (duplicates are skipped).
#
# The event table has no database foreign key to its end user (a check per row: 0.6 ms of
# PostgreSQL CPU per batch of 100): the statement locks the batch's end users itself, FOR KEY
# SHARE, as the key check would, in one pass. A merge (`_merge_end_users`) locks its source FOR
# UPDATE, moves its events and deletes it: a batch that took its lock first is moved with it,
# and a batch that waited finds the end user gone and stores nothing (`complete` is false).
_STORE_HEAD = """
WITH users AS (
    SELECT id FROM events_enduser WHERE tenant_id = %(tenant)b AND id = ANY(%(end_users)b::bigint[])
    ORDER BY id FOR KEY SHARE
), complete AS (
    SELECT count(*) = cardinality(%(end_users)b::bigint[]) AS ok FROM users"""
_STORE_ROWS = """
    SELECT * FROM unnest(%(m)b::text[], %(ty)b::text[], %(eu)b::bigint[], %(act)b::bigint[], %(acc)b::bigint[],
                         %(ts)b::timestamptz[], %(ra)b::timestamptz[], %(d)b::date[], %(p)b::text[])
        WITH ORDINALITY AS b(m, ty, eu, act, acc, ts, ra, d, p, i)"""
STORE_SQL = (
    _STORE_HEAD  # noqa: S608 (constants only)
    + "\n), stored AS ("
    + _INSERT_EVENTS
    + "\n    SELECT %(tenant)b, m, ty, eu, act, acc, ts, ra, d, p::jsonb FROM ("
    + _STORE_ROWS
    + ") AS b"
    + _PLAIN_DEDUPE
    + _ROLLUP_STORED
)
STORE_SQL_PARTITIONED = (
    _STORE_HEAD + _partitioned(_STORE_ROWS, "m, ty, eu, act, acc, ts, ra, d, p::jsonb") + _ROLLUP_STORED
)


# `STORE_SQL` for a batch of known end users and activities, given by user id and name: the lookups
# join in (and lock the end users), so the batch takes one round trip. `complete` is false when one
# of them is missing, merged away meanwhile, or the activity was proposed in a survey and never
# received; then nothing is inserted and the batch takes the transactional path, which creates them.
# So does a batch older than an activity's first_seen_at (which moves earlier) or one that makes a
# test-only activity real (see `lookups._activity_ids`).
_KNOWN_HEAD = """
WITH users AS (
    SELECT user_id, id FROM events_enduser
    WHERE tenant_id = %(tenant)b AND user_id = ANY(%(user_ids)b::text[])
    ORDER BY id FOR KEY SHARE
), activities AS (
    SELECT name, id FROM events_activity
    WHERE tenant_id = %(tenant)b AND name = ANY(%(names)b::text[]) AND first_seen_at IS NOT NULL
      AND first_seen_at <= %(earliest)b::timestamptz AND NOT test_only
), complete AS (
    SELECT (SELECT count(*) FROM users) = %(users)b AND (SELECT count(*) FROM activities) = %(activities)b AS ok"""
_KNOWN_ROWS = """
    SELECT b.m, b.ty, u.id AS eu, a.id AS act, b.ts, b.ra, b.d, b.p, b.i
    FROM unnest(%(m)b::text[], %(ty)b::text[], %(uid)b::text[], %(name)b::text[],
                %(ts)b::timestamptz[], %(ra)b::timestamptz[], %(d)b::date[], %(p)b::text[])
        WITH ORDINALITY AS b(m, ty, uid, name, ts, ra, d, p, i)
    JOIN users u ON u.user_id = b.uid
    JOIN activities a ON a.name = b.name"""
STORE_KNOWN_SQL = (
    _KNOWN_HEAD  # noqa: S608 (constants only)
    + "\n), stored AS ("
    + _INSERT_EVENTS
    + "\n    SELECT %(tenant)b, m, ty, eu, act, NULL, ts, ra, d, p::jsonb FROM ("
    + _KNOWN_ROWS
    + ") AS b"
    + _PLAIN_DEDUPE
    + _ROLLUP_STORED
)
STORE_KNOWN_SQL_PARTITIONED = (
    _KNOWN_HEAD + _partitioned(_KNOWN_ROWS, "m, ty, eu, act, NULL::bigint, ts, ra, d, p::jsonb") + _ROLLUP_STORED
)


def store_sql(known: bool) -> str:
    """The store statement for this database's layout of events_event."""
    if partitions.is_partitioned():
        return STORE_KNOWN_SQL_PARTITIONED if known else STORE_SQL_PARTITIONED
    return STORE_KNOWN_SQL if known else STORE_SQL



class EndUserMerged(OperationalError):
    """An end user of the batch was merged into another (and deleted) by a concurrent batch.

    Like a serialization failure: `ingest` runs the batch again, up to
    `MERGE_ATTEMPTS` times; then the API answers 503 and the client retries.
    """

    def __init__(self, message="an end user of the batch was merged or deleted while it was stored; retry"):
        super().__init__(message)



def _store_events_postgresql(tenant: Tenant, rows: list[tuple]) -> tuple[int, set[str]]:
    """Insert the rows and add them to the rollup.

    Returns how many were stored (not duplicates) and the stored message ids of the
    messages without an activity (identify, group, alias).
    """
    m, ty, eu, act, acc, ts, ra, d, payloads = zip(*rows, strict=True)
    payloads = TextArray([_payload_json(payload) for payload in payloads])
    params = {"tenant": tenant.pk, "end_users": sorted(set(eu)), "m": TextArray(m), "ty": TextArray(ty),
              "eu": [*eu], "act": [*act], "acc": [*acc], "ts": TimestampArray(ts), "ra": TimestampArray(ra),
              "d": DateArray(d), "p": payloads}  # fmt: skip
    ((complete, stored, new_ids),) = _fetch_prepared(store_sql(known=False), params)
    if not complete:
        raise EndUserMerged
    return stored, set(new_ids or ())



def _payload_json(payload) -> str:
    # orjson: ~10x faster than json.dumps. It refuses integers beyond 64 bits (which jsonb
    # keeps) and nesting beyond 255 levels: json.dumps writes those.
    try:
        return orjson.dumps(payload).decode()
    except orjson.JSONEncodeError:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
