"""Timestamps on the wire: ISO-8601 parsing, the accepted range and the clock-skew correction."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from .limits import MAX_FUTURE_SKEW, MAX_TIMESTAMP, MIN_TIMESTAMP
from .rejections import _Invalid, _json_type, _short

# Stricter than datetime.fromisoformat (which accepts any separator, week
# dates, basic format...): RFC 3339-like, with optional seconds/fraction/offset.
_ISO_8601 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?)?"
)


def parse_timestamp(value: object) -> datetime:
    """Parse an ISO-8601 date/time string into an aware UTC datetime.

    Accepts ``Z`` or numeric offsets (``+02:00``, ``+0200``, ``+02``),
    fractional seconds of 1-9 digits (truncated to microseconds), and naive or
    date-only strings, which are taken as UTC. The ``ValueError`` message is
    phrased to follow a field name, e.g. "timestamp is " + str(err).
    """
    if not isinstance(value, str):
        # One exception type for every bad wire value keeps callers simple.
        raise ValueError(f"not an ISO-8601 date string (got {_json_type(value)})")
    if not _ISO_8601.fullmatch(value):
        raise ValueError(f"not an ISO-8601 date: {_short(value)}")
    try:
        parsed = datetime.fromisoformat(value.upper())
    except ValueError as exc:
        raise ValueError(f"not a valid date: {_short(value)} ({exc})") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"out of range: {_short(value)}") from None


# --------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------


def _batch_sent_at(value: str | None) -> datetime | tuple[str, str] | None:
    """The envelope sentAt, parsed once per request; (field, reason) to reject with when it is invalid."""
    if value is None:
        return None
    try:
        sent_at = parse_timestamp(value)
    except ValueError as exc:
        return "sentAt", f"batch sentAt is {exc}"
    if not MIN_TIMESTAMP <= sent_at < MAX_TIMESTAMP:
        return "sentAt", f"batch sentAt is {_out_of_range(value)}"
    return sent_at


def _times(
    raw: dict[str, Any], received_at: datetime, batch_sent: datetime | tuple[str, str] | None
) -> tuple[datetime, datetime | None, datetime | None]:
    """Return (timestamp, original_timestamp, sent_at), all UTC.

    With a sentAt (message-level, else the batch's), the client's clock skew is
    removed: timestamp = receivedAt - (sentAt - originalTimestamp). Without a
    client timestamp the server's receivedAt is used; without a sentAt the
    client timestamp is trusted as is. ``batch_sent`` is the envelope sentAt
    (see ``_batch_sent_at``).
    """
    get = raw.get
    value = get("timestamp")
    original = None if value is None else _time_value("timestamp", value)
    value = get("originalTimestamp")
    if value is not None:
        original_field = _time_value("originalTimestamp", value)  # checked even when timestamp wins
        if original is None:
            original = original_field
    value = get("sentAt")
    sent_at = None if value is None else _time_value("sentAt", value)
    if sent_at is None and batch_sent is not None:
        if type(batch_sent) is tuple:
            raise _Invalid(*batch_sent)
        sent_at = batch_sent
    if original is None:
        return received_at, None, sent_at
    if sent_at is None:
        return _not_in_future(original, received_at), original, None
    try:
        corrected = received_at - (sent_at - original)
    except OverflowError:
        corrected = None
    if corrected is None or not MIN_TIMESTAMP <= corrected < MAX_TIMESTAMP:
        raise _Invalid("timestamp", "timestamp is out of range after clock-skew correction")
    return _not_in_future(corrected, received_at), original, sent_at


def _not_in_future(timestamp: datetime, received_at: datetime) -> datetime:
    # Beyond a small skew ahead of the server's clock, the server's clock wins (see MAX_FUTURE_SKEW).
    return received_at if timestamp - received_at > MAX_FUTURE_SKEW else timestamp


def _time_value(field: str, value: object) -> datetime:
    try:
        moment = parse_timestamp(value)
    except ValueError as exc:
        raise _Invalid(field, f"{field} is {exc}") from None
    if not MIN_TIMESTAMP <= moment < MAX_TIMESTAMP:
        raise _Invalid(field, f"{field} is {_out_of_range(value)}")
    return moment


def _out_of_range(value: object) -> str:
    # Phrased to follow "<field> is ", like parse_timestamp's messages.
    return f"out of range: {_short(value)} (years {MIN_TIMESTAMP.year} to {MAX_TIMESTAMP.year - 1} UTC are accepted)"
