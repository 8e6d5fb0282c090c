"""Parser and normaliser for the Segment HTTP tracking API wire format.

Pure Python (stdlib only, no Django) so the ingestion view can call it and it
can be tested and benchmarked in isolation. Typical use from a view::

    kind = ENDPOINT_KINDS[last_path_segment]  # e.g. "b" -> "batch", "t" -> "track"
    body = decode_body(request.body, request.headers.get("Content-Encoding"))
    parsed = parse_request(body, kind)
    write_key = basic_auth_key(request.headers.get("Authorization")) or parsed.write_key
    for result in normalize_all(parsed.messages, kind=kind, received_at=now, batch_sent_at=parsed.sent_at):
        # result is a Message (store it) or a Rejection (report it)

Whole-request problems raise ``WireError`` (answer with ``status``); problems
with a single message of a batch become a ``Rejection`` and the rest of the
batch is kept.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = [
    "ENDPOINT_KINDS",
    "MAX_BATCH_MESSAGES",
    "MAX_ID_LEN",
    "MAX_MESSAGE_BYTES",
    "MAX_MESSAGE_ID_LEN",
    "MAX_REQUEST_BYTES",
    "MAX_TIMESTAMP",
    "MESSAGE_TYPES",
    "MIN_TIMESTAMP",
    "Message",
    "ParsedRequest",
    "Rejection",
    "WireError",
    "basic_auth_key",
    "decode_body",
    "normalize",
    "parse_request",
    "parse_timestamp",
]

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

MESSAGE_TYPES = frozenset({"track", "identify", "group", "page", "screen", "alias"})

# Last path segment after /v1/ -> kind, for the view's routing.
ENDPOINT_KINDS: dict[str, str] = {
    "batch": "batch",
    "import": "batch",
    "b": "batch",
    **{name: name for name in MESSAGE_TYPES},
    **{name[0]: name for name in MESSAGE_TYPES},
}

# Integers beyond 2**53 cannot come from JavaScript clients as exact numbers,
# so a float id outside that range is not a faithful integer.
_MAX_SAFE_INTEGER = 2**53
_PREVIEW_CHARS = 200
_SUMMARY_KEYS = ("messageId", "type", "event", "userId", "anonymousId")


class WireError(Exception):
    """A whole-request error; the view answers ``status`` with ``code``/``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"WireError({self.status}, {self.code!r}, {self.message!r})"


@dataclass(slots=True)
class ParsedRequest:
    """A decoded request body.

    ``messages`` holds one item per message, in order, each meant for
    ``normalize``: a dict (batch ``context``/``integrations`` merged in,
    ``writeKey`` removed), whatever non-object value a batch contained, or a
    ``Rejection`` already decided here (oversize or invalid-Unicode batch item).
    """

    messages: list[Any]
    write_key: str | None
    sent_at: str | None


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


@dataclass(slots=True)
class Rejection:
    """A message we refuse, with a human-readable ``reason`` naming ``field``.

    ``message_id`` is the client's id when it was usable. ``raw`` is the
    message as received, or only a short summary when it was oversize or
    unstorable, or a preview of a non-object batch item.
    """

    message_id: str | None
    reason: str
    field: str | None
    raw: Any


class _Invalid(Exception):
    """Internal: a message-level validation failure, turned into a Rejection."""

    def __init__(self, field: str | None, reason: str, nul: bool = False) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.nul = nul  # the message holds a NUL: the stored copy must not


# --------------------------------------------------------------------------
# Body decoding and authentication
# --------------------------------------------------------------------------


def decode_body(raw: bytes, content_encoding: str | None) -> bytes:
    """Return the request body with its content coding removed.

    Only ``gzip`` (and its alias ``x-gzip``) is supported, as in Segment's API.
    Decompression stops one byte past ``MAX_REQUEST_BYTES`` so a gzip bomb
    never allocates more than that.
    """
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        body = raw
    elif codings in (["gzip"], ["x-gzip"]):
        body = _gunzip_capped(raw, MAX_REQUEST_BYTES + 1)
    else:
        raise WireError(400, "unsupported_encoding", f"unsupported Content-Encoding: {content_encoding!r}")
    if len(body) > MAX_REQUEST_BYTES:
        raise _request_too_large()
    return body


def _gunzip_capped(data: bytes, limit: int) -> bytes:
    """Decompress (possibly multi-member) gzip, producing at most ``limit`` bytes."""
    chunks: list[bytes] = []
    produced = 0
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(data, limit - produced)
        except zlib.error as exc:
            raise WireError(400, "invalid_gzip", f"body is not valid gzip: {exc}") from None
        chunks.append(chunk)
        produced += len(chunk)
        if produced >= limit:
            break  # over the cap: the caller reports request_too_large
        if not inflater.eof:
            raise WireError(400, "invalid_gzip", "body is not valid gzip: truncated stream")
        data = inflater.unused_data
        if not data:
            break
    return b"".join(chunks)


def basic_auth_key(authorization: str | None) -> str | None:
    """Extract the write key from ``Authorization: Basic base64(writeKey:)``.

    The password part is ignored and the colon may be missing. Anything
    malformed (other scheme, bad base64, non-UTF-8, empty key) gives None.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "basic" or not token:
        return None
    try:
        # Some clients drop the base64 padding; restore it before strict decoding.
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
        text = decoded.decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    return text.partition(":")[0] or None


# --------------------------------------------------------------------------
# Request parsing
# --------------------------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # 1e400 parses to inf, which cannot be stored as JSON again (nor in jsonb).
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
_SCAN = _DECODER.scan_once  # the C scanner behind json.loads: (text, index) -> (value, end)
_JSON_WS = " \t\n\r"
_WS_CHARS = frozenset(_JSON_WS)
_SKIP_WS = re.compile(r"[ \t\n\r]*").match
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD]")
# PostgreSQL refuses NUL in text and in jsonb, and JSON text can only carry one
# as this escape (raw control characters are invalid JSON).
_NUL_ESCAPE = "\\u0000"
# The escape itself in JSON text, not an escaped backslash followed by "u0000".
_NUL_IN_JSON = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def parse_request(body: bytes, kind: str) -> ParsedRequest:
    """Parse a decoded body for ``kind`` ("batch" or a message type).

    Raises ``WireError`` for whole-request problems. For a single call the
    message's ``writeKey`` is returned as ``write_key``; for a batch it is the
    top-level ``writeKey``, else the first one found on a message.

    A message's size is the UTF-8 length of its JSON text exactly as received
    (for a single call, the body without surrounding whitespace). That costs
    nothing extra to measure, and it is the same figure the official clients
    check before sending (analytics-python: ``len(json.dumps(msg).encode())``
    of the very text it puts in the batch), so we never refuse a message the
    client considered within the limit.
    """
    _check_kind(kind)
    if len(body) > MAX_REQUEST_BYTES:
        raise _request_too_large()
    try:
        # Decode explicitly: json.loads(bytes) would also accept UTF-16/32.
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise WireError(400, "invalid_json", "body is not valid UTF-8") from None
    if kind == "batch":
        return _parse_batch(text, _decode_small_batch(body, text))
    return _parse_single(text)


def _loads(text: str) -> Any:
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise WireError(400, "invalid_json", "body is nested too deeply") from None
    except ValueError as exc:
        raise WireError(400, "invalid_json", f"body is not valid JSON: {exc}") from None


def _parse_single(text: str) -> ParsedRequest:
    data = _loads(text)
    if not isinstance(data, dict):
        raise WireError(400, "invalid_body", "body must be a JSON object")
    size = _utf8_len(text.strip(_JSON_WS))
    if size > MAX_MESSAGE_BYTES:
        raise WireError(400, "message_too_large", f"message is {size} bytes, over the {MAX_MESSAGE_BYTES} byte limit")
    if _may_hold_surrogates(text, 0, len(text)) and _has_lone_surrogate(data):
        raise WireError(400, "invalid_json", "body contains an unpaired UTF-16 surrogate")
    write_key = _write_key(data.pop("writeKey", None))
    nul = _may_hold_nul(text, 0, len(text)) and _nul_rejection(data)
    return ParsedRequest(messages=[nul or data], write_key=write_key, sent_at=None)


# The bytes that matter to `_decode_small_batch`: digits as "0", openers as "{", backslashes, the rest " ".
_SHAPE = bytes(48 if 48 <= byte <= 57 else 123 if byte in b"[{" else byte if byte == 92 else 32 for byte in range(256))
_LONG_INTEGER = b"0" * 19  # 19 digits: past what orjson keeps as an int (it gives a float)
# json's scanner refuses nesting at about Python's recursion limit (1,000 less the frames already on
# the stack); orjson's limit is 1,024. With fewer openers than this, neither is reached from a
# request's stack (well under 200 frames). From a deeper one the scanner alone would refuse such a
# body as too deeply nested; orjson's answer is the right one then. Not lower: the bench's batch
# of 100 messages has 502 openers.
_SMALL_BATCH_MAX_OPENERS = 800


def _decode_small_batch(body: bytes, text: str) -> dict[str, Any] | None:
    """A batch body decoded by orjson, when that is sure to equal `_load_batch`; else None.

    A body no bigger than one message cannot hold a message over the limit, so
    it needs no item spans, and orjson decodes it ~5x faster than json's
    scanner does with spans (78 vs 395 us for 100 bench messages). Where the
    two decoders differ, this declines, for `_load_batch` to decide: integers
    beyond 64 bits (orjson makes them floats), nesting near the limits, NUL and
    surrogate escapes (checked per item, on spans), and anything orjson refuses
    (invalid JSON, NaN, 1e400: json gives the precise error).
    """
    if len(body) > MAX_MESSAGE_BYTES:
        return None
    shape = body.translate(_SHAPE)  # one C pass: ~60 us for these checks on 30 KB, orjson's time
    if shape.count(b"{") >= _SMALL_BATCH_MAX_OPENERS or _LONG_INTEGER in shape:
        return None
    if b"\\" in shape and (_may_hold_surrogates(text, 0, len(text)) or _may_hold_nul(text, 0, len(text))):
        return None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return data if type(data) is dict else None


def _parse_batch(text: str, decoded: dict[str, Any] | None = None) -> ParsedRequest:
    """`decoded`: the body from `_decode_small_batch`, which needs no per-item checks; else None."""
    if decoded is None:
        data, spans = _load_batch(text)
    else:
        data, spans = decoded, None
    items = data.get("batch")
    if not isinstance(items, list):
        raise WireError(400, "invalid_body", "batch must be an array of messages")
    if len(items) > MAX_BATCH_MESSAGES:
        raise WireError(
            400, "too_many_messages", f"batch has {len(items)} messages, over the limit of {MAX_BATCH_MESSAGES}"
        )
    if spans is None:
        check_surrogates = check_nul = False  # `_decode_small_batch` found no escape to check
        spans = [(0, 0)] * len(items)  # and every message is within the size limit
        ascii_only = True
    else:
        # One scan of the whole body spares a per-message search in the usual case.
        check_surrogates = _may_hold_surrogates(text, 0, len(text))
        check_nul = _may_hold_nul(text, 0, len(text))
        ascii_only = text.isascii()  # then a span's length is its UTF-8 size
    context = _envelope_object(data, "context", check_nul)
    integrations = _envelope_object(data, "integrations", check_nul)
    sent_at = _envelope_sent_at(data.get("sentAt"))
    write_key = _write_key(data.get("writeKey"))
    # Once per message: the usual item (ASCII, within the size limit, no escapes that could
    # hide a NUL or a lone surrogate, nothing to merge) costs no function call here.
    checked = check_surrogates or check_nul or not ascii_only
    merged = context or integrations
    messages: list[Any] = []
    add = messages.append
    for item, (start, end) in zip(items, spans, strict=True):
        if type(item) is not dict:
            add(item)  # normalize() turns it into a Rejection
            continue
        if not write_key:
            write_key = _write_key(item.get("writeKey"))
        if checked or end - start > MAX_MESSAGE_BYTES:
            problem = _unacceptable_item(item, text, start, end, check_surrogates, check_nul, ascii_only)
            if problem:
                add(problem)
                continue
        add(_merge_envelope(item, context, integrations) if merged or "writeKey" in item else item)
    return ParsedRequest(messages=messages, write_key=write_key, sent_at=sent_at)


def _load_batch(text: str) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    """Decode a batch body like json.loads, plus the text span of each ``batch`` item."""
    try:
        scanned = _scan_object(text)
    except (StopIteration, ValueError, RecursionError):
        scanned = None
    if scanned is not None:
        return scanned
    data = _loads(text)  # raises the precise error for invalid JSON
    raise WireError(400, "invalid_body", f"body must be a JSON object, got {_json_type(data)}")


def _scan_object(text: str) -> tuple[dict[str, Any], list[tuple[int, int]]] | None:
    """Walk the top-level object with json's own scanner, keeping item spans.

    Returns None (or lets the scanner raise) for anything that is not a
    well-formed JSON object; the caller then defers to json for the error.
    Duplicate keys resolve like json.loads: the last one wins.
    """
    data: dict[str, Any] = {}
    spans: list[tuple[int, int]] = []
    pos = _SKIP_WS(text, 0).end()
    if text[pos : pos + 1] != "{":
        return None
    pos = _SKIP_WS(text, pos + 1).end()
    if text[pos : pos + 1] == "}":
        pos += 1
    else:
        while True:
            if text[pos : pos + 1] != '"':
                return None
            key, pos = _SCAN(text, pos)
            pos = _SKIP_WS(text, pos).end()
            if text[pos : pos + 1] != ":":
                return None
            pos = _SKIP_WS(text, pos + 1).end()
            if key == "batch" and text[pos : pos + 1] == "[":
                value, spans, pos = _scan_array(text, pos)
            else:
                value, pos = _SCAN(text, pos)
            data[key] = value
            pos = _SKIP_WS(text, pos).end()
            separator = text[pos : pos + 1]
            if separator == "}":
                pos += 1
                break
            if separator != ",":
                return None
            pos = _SKIP_WS(text, pos + 1).end()
    if _SKIP_WS(text, pos).end() != len(text):
        return None
    return data, spans


def _scan_array(text: str, pos: int) -> tuple[list[Any], list[tuple[int, int]], int]:
    """Scan the array starting at ``text[pos] == "["``; raise ValueError if malformed."""
    items: list[Any] = []
    spans: list[tuple[int, int]] = []
    pos = _SKIP_WS(text, pos + 1).end()
    if text[pos : pos + 1] == "]":
        return items, spans, pos + 1
    # Hot loop (once per message): locals avoid repeated global/attribute lookups.
    scan, skip_ws, ws_chars = _SCAN, _SKIP_WS, _WS_CHARS
    add_item, add_span = items.append, spans.append
    while True:
        item, end = scan(text, pos)
        add_item(item)
        add_span((pos, end))
        separator = text[end : end + 1]
        if separator in ws_chars:  # only then pay for the regex call
            end = skip_ws(text, end).end()
            separator = text[end : end + 1]
        if separator == "]":
            return items, spans, end + 1
        if separator != ",":
            raise ValueError("malformed array")
        pos = end + 1
        if text[pos : pos + 1] in ws_chars:
            pos = skip_ws(text, pos).end()


def _envelope_object(data: dict[str, Any], key: str, check_nul: bool) -> dict[str, Any] | None:
    value = data.get(key)
    if value is not None and not isinstance(value, dict):
        # A NUL is named first, as in an object ("batch context[0] contains a NUL character").
        if check_nul and (path := _nul_path({key: value})):
            raise WireError(400, "invalid_body", f"batch {_short_path(path)} contains a NUL character")
        raise WireError(400, "invalid_body", f"batch {key} must be an object")
    # Merged into every message: one clear 400 rather than the same rejection N times.
    if check_nul and value and (path := _nul_path(value)):
        raise WireError(400, "invalid_body", f"batch {key}.{_short_path(path)} contains a NUL character")
    return value or None


def _envelope_sent_at(value: object) -> str | None:
    # Validated once here so a bad envelope is one clear 400, not N rejections.
    if value is None:
        return None
    try:
        parse_timestamp(value)
    except ValueError as exc:
        raise WireError(400, "invalid_body", f"batch sentAt is {exc}") from None
    return str(value)  # it parsed, so it already is a str


def _unacceptable_item(
    item: dict[str, Any], text: str, start: int, end: int, check_surrogates: bool, check_nul: bool, ascii_only: bool
) -> Rejection | None:
    """A Rejection for a batch item that is too big or cannot be stored, else None."""
    size = end - start if ascii_only else _utf8_len(text[start:end])
    if size > MAX_MESSAGE_BYTES:
        return _summary_rejection(item, f"message is {size} bytes, over the {MAX_MESSAGE_BYTES} byte limit", size)
    if check_surrogates and _may_hold_surrogates(text, start, end) and _has_lone_surrogate(item):
        return _summary_rejection(item, "message contains an unpaired UTF-16 surrogate", size)
    if check_nul and _may_hold_nul(text, start, end):
        return _nul_rejection(item)
    return None


def _merge_envelope(
    item: dict[str, Any], context: dict[str, Any] | None, integrations: dict[str, Any] | None
) -> dict[str, Any]:
    # The dict is freshly parsed and ours: mutating it avoids a copy per message.
    item.pop("writeKey", None)
    if context:
        _merge_into(item, "context", context)
    if integrations:
        _merge_into(item, "integrations", integrations)
    return item


def _merge_into(item: dict[str, Any], key: str, batch_value: dict[str, Any]) -> None:
    own = item.get(key)
    if own is None:
        item[key] = dict(batch_value)  # a copy, so messages never share one dict
    elif isinstance(own, dict):
        item[key] = {**batch_value, **own}
    # any other type is left alone for normalize() to reject


def _utf8_len(text: str) -> int:
    # str.isascii() is O(1) in CPython, so ASCII text skips the encode.
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _may_hold_surrogates(text: str, start: int, end: int) -> bool:
    # Lone surrogates can only come from \uD800-\uDFFF escapes. Looking for a
    # backslash first is a memchr, ~100x faster than the regex, and settles
    # most bodies; the regex, then the full walk, run only when it may matter.
    return text.find("\\", start, end) >= 0 and _SURROGATE_ESCAPE.search(text, start, end) is not None


def _has_lone_surrogate(value: object) -> bool:
    """True if any key or string holds an unpaired surrogate (not storable as UTF-8)."""
    stack = [value]  # iterative: parsed JSON may be nested deeper than the recursion limit
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if not node.isascii() and _SURROGATE.search(node):
                return True
        elif isinstance(node, dict):
            stack.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _may_hold_nul(text: str, start: int, end: int) -> bool:
    # Same idea as for surrogates: one substring search (C speed) over the
    # text settles almost every body, so the walk below runs only when needed.
    return text.find(_NUL_ESCAPE, start, end) >= 0


def _nul_path(value: dict[str, Any]) -> str | None:
    """The path of the first key or string holding a NUL, e.g. "properties.note" or "context.tags[2]"."""
    stack: list[tuple[str, Any]] = []  # iterative, for the same reason as _has_lone_surrogate
    stack.extend((str(key), child) for key, child in reversed(value.items()))
    while stack:
        path, node = stack.pop()
        if "\x00" in path:
            return path  # a key holding a NUL
        if isinstance(node, str):
            if "\x00" in node:
                return path
        elif isinstance(node, dict):
            stack.extend((f"{path}.{key}", child) for key, child in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((f"{path}[{index}]", child) for index, child in reversed(list(enumerate(node))))
    return None


def _nul_rejection(item: dict[str, Any]) -> Rejection | None:
    """A Rejection naming the field that holds a NUL (stored without the NUL), else None.

    PostgreSQL cannot store NUL in text nor in jsonb, and one such message
    would fail the whole batch's transaction. It is refused, not stripped:
    quietly altering the client's data would be worse than saying so.
    """
    path = _nul_path(item)
    if path is None:
        return None  # only an escaped backslash followed by "u0000"
    field = _short_path(path, MAX_FIELD_LEN)
    reason = f"{_short_path(path)} contains a NUL character (\\u0000), which cannot be stored"
    kept = {key: value for key, value in item.items() if key != "writeKey"}
    return Rejection(_reported_id(item), reason, field, _without_nul(kept))


def _short_path(path: str, limit: int = 80) -> str:
    # Paths become the Rejection's field (a varchar) and part of its reason.
    path = path.replace("\x00", "\ufffd")
    return path if len(path) <= limit else path[: limit - 3] + "..."


def _without_nul(value: Any) -> Any:
    """A copy of a parsed JSON value with every NUL replaced by U+FFFD, for storing a rejection."""
    try:
        # json's C encoder and decoder do the walk; only real \u0000 escapes are replaced.
        text = json.dumps(value)
        return json.loads(_NUL_IN_JSON.sub(lambda match: match.group(1) + "\\ufffd", text))
    except (RecursionError, ValueError, TypeError):
        return {"_truncated": True}


def _write_key(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _check_kind(kind: str) -> None:
    if kind != "batch" and kind not in MESSAGE_TYPES:
        raise ValueError(f"unknown kind: {kind!r}")


def _request_too_large() -> WireError:
    return WireError(400, "request_too_large", f"request body is over {MAX_REQUEST_BYTES} bytes")


# --------------------------------------------------------------------------
# Timestamps
# --------------------------------------------------------------------------

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
    traits = get("traits")
    if type(traits) is not dict:
        traits = _object_field(raw, "traits")
    context = get("context")
    if type(context) is not dict:
        context = _object_field(raw, "context")
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


def _coerce_id(value: object) -> str | None:
    """An id as a string; None for null/blank. Raises _Invalid for other types.

    Ids are kept exactly as sent (no stripping); only emptiness ignores
    whitespace. Numbers become strings when they are exact integers: ints,
    and floats with an integral value within +-2**53 (so 42.0 -> "42", as a
    JavaScript client would have sent it). Booleans are not numbers here.
    """
    if isinstance(value, str):
        return None if not value or value.isspace() else value
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # more digits than int->str allows
            pass
    elif isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_SAFE_INTEGER:
        return str(int(value))
    raise _Invalid(None, "invalid id")


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
    for field in ("name", "category"):
        value = raw.get(field)
        if value is not None and not isinstance(value, str):
            raise _Invalid(field, f"{field} must be a string or null, got {_json_type(value)}")
    field, name = "name", _nonblank(raw.get("name"))
    if name is None:
        field, name = "properties.name", _nonblank(properties.get("name"))
    if name is None:
        return f"Viewed {noun}"
    # The activity name is what must fit its column: the name gets what the label leaves.
    _column_text(field, name, MAX_ID_LEN - len(f"Viewed  {noun}"))
    return f"Viewed {name} {noun}"


def _nonblank(value: object) -> str | None:
    # The activity label is derived text, so surrounding whitespace is dropped.
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _context_group(context: dict[str, Any]) -> str | None:
    # context.groupId is optional metadata: a value of the wrong type is
    # ignored rather than costing the whole message. One that has the right
    # type but cannot be stored is refused: ignoring it would drop the account.
    try:
        group_id = _coerce_id(context.get("groupId"))
    except _Invalid:
        return None
    return _column_text("context.groupId", group_id)


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
        return original, original, None
    try:
        corrected = received_at - (sent_at - original)
    except OverflowError:
        corrected = None
    if corrected is None or not MIN_TIMESTAMP <= corrected < MAX_TIMESTAMP:
        raise _Invalid("timestamp", "timestamp is out of range after clock-skew correction")
    return corrected, original, sent_at


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


# --------------------------------------------------------------------------
# Small helpers for readable, storable rejections
# --------------------------------------------------------------------------


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _short(value: object, limit: int = 60) -> str:
    """A bounded repr for messages: scalars shown, containers named by type."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        try:
            text = repr(value)
        except ValueError:  # an int too long to convert to decimal
            text = "<huge number>"
    else:
        text = _json_type(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _preview(value: object) -> object:
    """A small, storable stand-in for a non-object batch item."""
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        return value if value.bit_length() <= 64 else _short(value)
    if isinstance(value, str):
        text = _clean(value)
        return text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "..."
    if isinstance(value, list):
        return f"<array of {len(value)} items>"  # repr() could recurse deeply
    return f"<{_json_type(value)}>"


def _clean(text: str) -> str:
    # Lone surrogates cannot be stored as UTF-8, nor NUL in PostgreSQL; replace them.
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _reported_id(raw: dict[str, Any]) -> str | None:
    try:
        message_id = _coerce_id(raw.get("messageId"))
    except _Invalid:
        return None
    if message_id is None or len(message_id) > MAX_MESSAGE_ID_LEN or "\x00" in message_id:
        return None
    return message_id


def _summary_rejection(item: dict[str, Any], reason: str, size: int | None) -> Rejection:
    """A Rejection keeping only a short summary of a message too big or unstorable to keep."""
    summary: dict[str, Any] = {"_truncated": True}
    if size is not None:
        summary["_size"] = size
    for key in _SUMMARY_KEYS:
        value = item.get(key)
        if isinstance(value, str):
            summary[key] = _clean(value[:MAX_MESSAGE_ID_LEN])
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            summary[key] = _preview(value)
    message_id = _reported_id(item)
    return Rejection(message_id and _clean(message_id), reason, None, summary)
