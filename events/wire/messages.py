"""Normalising messages: from a decoded JSON object to a `Message` ready to store, or a `Rejection`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .limits import MAX_ID_LEN, MAX_MESSAGE_ID_LEN, MESSAGE_TYPES, _check_kind
from .rejections import Rejection, _coerce_id, _Invalid, _json_type, _preview, _reported_id, _short, _without_nul
from .times import _batch_sent_at, _times


@dataclass(slots=True)
class Message:
    """A valid message, normalised for storage.

    Ids are strings (integral numbers converted), times are aware UTC
    datetimes, and ``timestamp`` is corrected for client clock skew.
    ``activity`` is the event name for track, "Viewed <name> Page/Screen" for
    page/screen, None otherwise; ``group_id`` is ``groupId`` for group and
    ``context.groupId`` for track/page/screen. ``raw`` is the message as
    received (batch context merged, ``writeKey`` dropped, ``messageId`` filled
    in when we assigned one).
    """

    type: str
    message_id: str
    user_id: str | None
    anonymous_id: str | None
    activity: str | None
    group_id: str | None
    previous_id: str | None
    timestamp: datetime
    sent_at: datetime | None
    received_at: datetime
    original_timestamp: datetime | None
    properties: dict[str, Any]
    traits: dict[str, Any]
    context: dict[str, Any]
    raw: dict[str, Any]


def normalize(raw: object, *, kind: str, received_at: datetime, batch_sent_at: str | None) -> Message | Rejection:
    """Validate one message and normalise it, or explain why it is rejected.

    ``kind`` is "batch" (the message's own ``type`` decides) or the single-call
    type from the URL, which wins over any ``type`` in the body. Size limits
    are enforced by ``parse_request``; a ``Rejection`` it produced is returned
    unchanged. Never raises for JSON-like input; raises ``ValueError`` only for
    caller bugs (unknown ``kind``, naive ``received_at``).

    Timestamps are corrected for client clock skew when a ``sentAt`` is known
    (see ``_times``). Results in the future are kept as they are, not clamped:
    after skew correction they reflect what the client meant, and clamping
    would silently alter data. Every time, before and after the correction,
    must lie in [``MIN_TIMESTAMP``, ``MAX_TIMESTAMP``).

    Values bound for varchar columns (ids, the event or page/screen name) are
    rejected when over ``MAX_ID_LEN`` characters or holding a NUL. A NUL
    anywhere else (properties, traits, context...) is found by
    ``parse_request``, which sees the raw text and so needs no walk of every
    message; a caller building messages itself must not pass NULs in nested
    values (the CSV import refuses such rows first).
    """
    return normalize_all([raw], kind=kind, received_at=received_at, batch_sent_at=batch_sent_at)[0]


def normalize_all(
    items: list[Any], *, kind: str, received_at: datetime, batch_sent_at: str | None
) -> list[Message | Rejection]:
    """``normalize`` for each item of one request, in order; what they share is checked once."""
    _check_kind(kind)
    if received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    if received_at.tzinfo is not UTC:
        received_at = received_at.astimezone(UTC)
    batch_sent = _batch_sent_at(batch_sent_at)
    outcomes: list[Message | Rejection] = []
    add = outcomes.append
    for raw in items:
        if isinstance(raw, dict):
            try:
                add(_build(raw, kind, received_at, batch_sent))
            except _Invalid as exc:
                # A NUL would make storing the rejection itself fail.
                add(Rejection(_reported_id(raw), exc.reason, exc.field, _without_nul(raw) if exc.nul else raw))
        elif isinstance(raw, Rejection):
            add(raw)
        else:
            add(Rejection(None, f"message must be a JSON object, got {_json_type(raw)}", None, _preview(raw)))
    return outcomes


def _build(
    raw: dict[str, Any], kind: str, received_at: datetime, batch_sent: datetime | tuple[str, str] | None
) -> Message:
    # The hot path of ingestion (once per message): the common case, string ids of a
    # storable length, is decided inline; anything else goes through the full checks.
    get = raw.get
    mtype = _message_type(raw, kind)
    message_id = get("messageId")
    if not _plain(message_id, MAX_MESSAGE_ID_LEN):
        message_id = _message_id(message_id)
    user_id = get("userId")
    if not _plain(user_id):
        user_id = _id_field(raw, "userId")
    anonymous_id = get("anonymousId")
    if anonymous_id is not None and not _plain(anonymous_id):
        anonymous_id = _id_field(raw, "anonymousId")
    if user_id is None and anonymous_id is None:
        raise _Invalid("userId", "userId or anonymousId is required")
    properties = get("properties")
    if type(properties) is not dict:
        properties = _object_field(raw, "properties")
    context = get("context")
    if type(context) is not dict:
        context = _object_field(raw, "context")
    traits = get("traits")
    if type(traits) is not dict:
        if traits is None and mtype in _TRAIT_TYPES and "traits" in context:
            # RudderStack's SDKs send identify traits only here (context.traits), not at the top.
            traits = _context_traits(context)
        else:
            traits = _object_field(raw, "traits")
    if type(get("integrations")) is not dict:
        _object_field(raw, "integrations")
    activity, group_id, previous_id = _TYPE_RULES[mtype](raw, user_id, properties, context)
    timestamp, original, sent_at = _times(raw, received_at, batch_sent)
    if message_id is None:
        message_id = str(uuid.uuid4())
        raw = {**raw, "messageId": message_id}  # a copy: never mutate the caller's dict here
    return Message(
        mtype,
        message_id,
        user_id,
        anonymous_id,
        activity,
        group_id,
        previous_id,
        timestamp,
        sent_at,
        received_at,
        original,
        properties,
        traits,
        context,
        raw,
    )


def _plain(value: object, limit: int = MAX_ID_LEN) -> bool:
    """True for an id kept as it is: a string, not blank, at most `limit` characters, without a NUL."""
    return type(value) is str and 0 < len(value) <= limit and not value.isspace() and "\x00" not in value


def _message_type(raw: dict[str, Any], kind: str) -> str:
    if kind != "batch":
        return kind  # single call: the URL decides
    mtype = raw.get("type")
    if isinstance(mtype, str) and mtype in MESSAGE_TYPES:
        return mtype
    if mtype is None:
        raise _Invalid("type", "type is required")
    raise _Invalid("type", f"type must be one of {', '.join(sorted(MESSAGE_TYPES))}: {_short(mtype)}")


def _message_id(value: object) -> str | None:
    """The messageId as a string, or None when one must be assigned.

    Integral numbers are accepted like other ids ("42"); blank strings count
    as absent and get a generated id.
    """
    try:
        message_id = _coerce_id(value)
    except _Invalid:
        raise _Invalid("messageId", f"messageId must be a string or an integer, got {_json_type(value)}") from None
    return _column_text("messageId", message_id, MAX_MESSAGE_ID_LEN)


def _id_field(raw: dict[str, Any], field: str) -> str | None:
    value = raw.get(field)
    try:
        return _column_text(field, _coerce_id(value))
    except _Invalid as exc:
        if exc.field is not None:
            raise
        raise _Invalid(field, f"{field} must be a string or an integer, got {_json_type(value)}") from None


def _column_text(field: str, value: str | None, limit: int = MAX_ID_LEN) -> str | None:
    """``value`` if its varchar column can hold it; one that cannot would fail the whole batch."""
    if value is None:
        return None
    if len(value) > limit:  # PostgreSQL counts characters, as len() does
        raise _Invalid(field, f"{field} must be at most {limit} characters")
    if "\x00" in value:
        raise _Invalid(field, f"{field} contains a NUL character (\\u0000), which cannot be stored", nul=True)
    return value


def _object_field(raw: dict[str, Any], field: str) -> dict[str, Any]:
    value = raw.get(field)
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise _Invalid(field, f"{field} must be an object, got {_json_type(value)}")


# Per-type rules: (raw, user_id, properties, context) -> (activity, group_id, previous_id)
_Extras = tuple[str | None, str | None, str | None]


def _track_rule(raw: dict[str, Any], user_id: str | None, props: dict, ctx: dict) -> _Extras:
    event = raw.get("event")
    if not isinstance(event, str) or not event or event.isspace():
        raise _Invalid("event", "event must be a non-empty string")
    return _column_text("event", event), _context_group(ctx), None


def _page_rule(raw: dict[str, Any], user_id: str | None, props: dict, ctx: dict) -> _Extras:
    return _view_activity(raw, props, "Page"), _context_group(ctx), None


def _screen_rule(raw: dict[str, Any], user_id: str | None, props: dict, ctx: dict) -> _Extras:
    return _view_activity(raw, props, "Screen"), _context_group(ctx), None


def _identify_rule(raw: dict[str, Any], user_id: str | None, props: dict, ctx: dict) -> _Extras:
    return None, None, None


def _group_rule(raw: dict[str, Any], user_id: str | None, props: dict, ctx: dict) -> _Extras:
    group_id = _id_field(raw, "groupId")
    if group_id is None:
        raise _Invalid("groupId", "groupId is required")
    return None, group_id, None


def _alias_rule(raw: dict[str, Any], user_id: str | None, props: dict, ctx: dict) -> _Extras:
    previous_id = _id_field(raw, "previousId")
    if previous_id is None:
        raise _Invalid("previousId", "previousId is required")
    if user_id is None:
        raise _Invalid("userId", "userId is required for alias")
    return None, None, previous_id


_TYPE_RULES = {
    "track": _track_rule,
    "page": _page_rule,
    "screen": _screen_rule,
    "identify": _identify_rule,
    "group": _group_rule,
    "alias": _alias_rule,
}


def _view_activity(raw: dict[str, Any], properties: dict[str, Any], noun: str) -> str:
    """"Viewed <name> Screen"; for a page, Segment's "Viewed <category> <name> Page" when it has a category.

    Name and category are the call's own (`page(category, name)`), else analytics.js's
    `properties.name` / `properties.category`.
    """
    for field in ("name", "category"):
        value = raw.get(field)
        if value is not None and not isinstance(value, str):
            raise _Invalid(field, f"{field} must be a string or null, got {_json_type(value)}")
    field, name = "name", _nonblank(raw.get("name"))
    if name is None:
        field, name = "properties.name", _nonblank(properties.get("name"))
    category = None
    if noun == "Page":
        category = _nonblank(raw.get("category")) or _nonblank(properties.get("category"))
    label = " ".join(part for part in (category, name) if part)
    if not label:
        return f"Viewed {noun}"
    # The activity name is what must fit its column: the name gets what the label leaves.
    _column_text(field if name else "category", label, MAX_ID_LEN - len(f"Viewed  {noun}"))
    return f"Viewed {label} {noun}"


def _nonblank(value: object) -> str | None:
    # The activity label is derived text, so surrounding whitespace is dropped.
    if not isinstance(value, str):
        return None
    return value.strip() or None


_TRAIT_TYPES = frozenset({"identify", "group"})


def _context_traits(context: dict[str, Any]) -> dict[str, Any]:
    value = context.get("traits")
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise _Invalid("context.traits", f"context.traits must be an object, got {_json_type(value)}")


def _context_group(context: dict[str, Any]) -> str | None:
    # context.groupId is optional metadata: a value of the wrong type is
    # ignored rather than costing the whole message. One that has the right
    # type but cannot be stored is refused: ignoring it would drop the account.
    try:
        group_id = _coerce_id(context.get("groupId"))
    except _Invalid:
        return None
    return _column_text("context.groupId", group_id)
