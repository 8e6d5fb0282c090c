"""Storing normalised messages: identities, accounts, the catalog, events and the rollup.

`ingest()` is the one write path for events — the HTTP API, the CSV import and
the demo all go through it. A batch is stored atomically, so a caller
acknowledges only committed events: in one transaction, or, for live tracking of
known end users on PostgreSQL, in one statement (`batches._store_tracking_only`). Events are inserted with
`ON CONFLICT (tenant, message_id) DO NOTHING RETURNING ...`: the rollup is
incremented from the rows actually stored, which keeps it equal to the event
count per (end user, activity, day) with duplicates, retries and concurrent
requests. Rows are written in a sorted order so concurrent batches take row
locks in the same order and don't deadlock.

The modules, by concept: `batches` (`ingest()` and its two ways to store),
`lookups` (a batch's known end users and activities, the catalog), `identities`
(end users, alias merges, `first_seen_at` from history), `customer_accounts`
(group ids, traits, attaching end users), `store` (events and the rollup: the
portable inserts and the PostgreSQL one-statement writes), `db` (prepared
statements and the dead-connection retry). Each write exists twice, for
PostgreSQL and portable; both sit side by side in the module of their concept.
"""


# Every name the module had stays importable from events.services (tests and callers use some private ones);
# to replace one in a test, patch the module that uses it (e.g. events.services.batches._store_tracking_only).
from .batches import (  # noqa: F401
    MERGE_ATTEMPTS,
    IngestResult,
    _ingest_in_transaction,
    _store_tracking_only,
    _Survey,
    _survey,
    ingest,
)
from .customer_accounts import (  # noqa: F401
    ATTACH_CHUNK,
    ATTACH_SQL,
    _account_ids,
    _apply_traits,
    _attach_accounts,
    _attach_accounts_portable,
    _attach_accounts_postgresql,
)
from .db import (  # noqa: F401
    INSERT_CHUNK,
    _fetch_prepared,
    _first_statement,
    _placeholders,
    _select_by,
    _server_bound_cursor,
)
from .identities import (  # noqa: F401
    BACKDATE_SQL,
    HISTORY_AGE,
    IdentityResolver,
    _backdate_first_seen,
    _history_starts,
    _lock_end_users,
    _merge_end_users,
)
from .lookups import (  # noqa: F401
    PREFETCH_SQL,
    _activity_ids,
    _prefetch,
)
from .store import (  # noqa: F401
    _ROLLUP_STORED,
    EVENT_COLUMNS,
    STORE_KNOWN_SQL,
    STORE_KNOWN_SQL_PARTITIONED,
    STORE_SQL,
    STORE_SQL_PARTITIONED,
    EndUserMerged,
    _add_to_rollup,
    _day_value,
    _insert_events,
    _payload_json,
    _store_events_postgresql,
)

__all__ = [
    "ATTACH_CHUNK",
    "EndUserMerged",
    "HISTORY_AGE",
    "INSERT_CHUNK",
    "IdentityResolver",
    "IngestResult",
    "MERGE_ATTEMPTS",
    "PREFETCH_SQL",
    "STORE_KNOWN_SQL",
    "STORE_SQL",
    "ingest",
]
