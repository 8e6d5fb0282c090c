"""The limits of the Segment tracking API as this server enforces them, and its endpoint kinds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

MAX_REQUEST_BYTES = 512_000
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_MESSAGES = 2500
MAX_MESSAGE_ID_LEN = 100
# RejectedMessage.field is a varchar(100).
MAX_FIELD_LEN = 100
# The varchar(255) columns of events/models.py that ids and activity names go
# to (EndUser.user_id/anonymous_id, Identity.anonymous_id,
# CustomerAccount.group_id, Activity.name). One value over it would make
# PostgreSQL refuse the whole batch, so the message is rejected here instead.
MAX_ID_LEN = 255
# Stored times must convert to any tenant's time zone (Python's datetime ends
# at years 1 and 9999: "0001-01-01T00:00Z" overflows in America/New_York) and
# be plausible for product analytics: before the Unix epoch or after 2200 is a
# broken clock or a placeholder, not an activity. [MIN, MAX) in UTC.
MIN_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIMESTAMP = datetime(2200, 1, 1, tzinfo=UTC)
# A timestamp (after the sentAt clock-skew correction) more than this ahead of the server's
# receivedAt is a wrong clock, not an activity to come: it is stored at receivedAt instead
# (the client's value stays in the payload), so "last seen" and today's scores never sit in
# the future.
MAX_FUTURE_SKEW = timedelta(minutes=5)

MESSAGE_TYPES = frozenset({"track", "identify", "group", "page", "screen", "alias"})

# Last path segment after /v1/ -> kind, for the view's routing.
ENDPOINT_KINDS: dict[str, str] = {
    "batch": "batch",
    "import": "batch",
    "b": "batch",
    **{name: name for name in MESSAGE_TYPES},
    **{name[0]: name for name in MESSAGE_TYPES},
}


def _check_kind(kind: str) -> None:
    if kind != "batch" and kind not in MESSAGE_TYPES:
        raise ValueError(f"unknown kind: {kind!r}")
