"""Decoding a request: its content coding, its write key, and the JSON body into messages for `normalize`.

A batch body is decoded by msgspec (`_decode_batch`): a typed envelope whose
items are `msgspec.Raw`, each item's exact bytes, so its size and a NUL check
cost nothing extra. Where msgspec could answer otherwise than json, it
declines and json's scanner (`_parse_batch`, which keeps each item's text span)
decides, as it did before msgspec: the stdlib answer is the reference.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import zlib
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import msgspec

from .limits import MAX_BATCH_MESSAGES, MAX_MESSAGE_BYTES, MAX_REQUEST_BYTES, _check_kind
from .rejections import (
    _NUL_ESCAPE,
    Rejection,
    WireError,
    _json_type,
    _nul_path,
    _nul_rejection,
    _preview,
    _short_path,
    _summary_rejection,
)
from .times import parse_timestamp


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
    # How many messages came past the first MAX_BATCH_MESSAGES of a batch: not processed,
    # rejected by name at the end of `messages` (`excess_rejections` of them; Segment accepts
    # such a request and rejects the excess).
    excess: int = 0

    @property
    def excess_rejections(self) -> int:
        return min(self.excess, MAX_BATCH_MESSAGES) + (self.excess > MAX_BATCH_MESSAGES)


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
        parsed = _decode_batch(body)
        return parsed if parsed is not None else _parse_batch(text)
    return _parse_single(text)


def parse_webhook(body: bytes) -> tuple[ParsedRequest, bool]:
    """A body of Segment's Webhook destination: one message (a JSON object) or a batch (a JSON array).

    Returns the request as a batch's, and whether the body was a single message. Each
    message's own `type` decides what it is; the limits are the batch's (32 KB a message,
    2,500 messages, the request size checked by `decode_body`).
    """
    body = body.removeprefix(_BOM).lstrip(b" \t\n\r")
    first = body[:1]
    if first == b"[":
        wrapped, single = b'{"batch":' + body + b"}", False
    elif first == b"{":
        size = len(body.rstrip(b" \t\n\r"))
        if size > MAX_MESSAGE_BYTES:  # as a single call: the request is the message
            raise WireError(
                400, "message_too_large", f"message is {size} bytes, over the {MAX_MESSAGE_BYTES} byte limit"
            )
        wrapped, single = b'{"batch":[' + body + b"]}", True
    else:
        raise WireError(400, "invalid_body", "body must be a JSON object (one message) or an array of messages")
    try:
        text = wrapped.decode("utf-8")
    except UnicodeDecodeError:
        raise WireError(400, "invalid_json", "body is not valid UTF-8") from None
    parsed = _decode_batch(wrapped)
    return (parsed if parsed is not None else _parse_batch(text)), single


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


# --------------------------------------------------------------------------
# Batch bodies: msgspec, with the stdlib scanner below as the fallback
# --------------------------------------------------------------------------


class _Envelope(msgspec.Struct, forbid_unknown_fields=True):
    """A batch body whose items are kept as their exact JSON bytes (`msgspec.Raw`): their sizes, in place."""

    batch: list[msgspec.Raw]
    context: Any = None
    integrations: Any = None
    sentAt: Any = None  # the wire's names
    writeKey: Any = None


class _SmallEnvelope(msgspec.Struct, forbid_unknown_fields=True):
    """A batch body no bigger than one message: no item can be oversize, so items are decoded in the same pass."""

    batch: list[Any]
    context: Any = None
    integrations: Any = None
    sentAt: Any = None
    writeKey: Any = None


_DECODE_ENVELOPE = msgspec.json.Decoder(_Envelope).decode
_DECODE_SMALL_ENVELOPE = msgspec.json.Decoder(_SmallEnvelope).decode
_DECODE_MEMBERS = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode  # an envelope with other keys too
_DECODE_ITEMS = msgspec.json.Decoder(list[msgspec.Raw]).decode
_DECODE_VALUE = msgspec.json.Decoder().decode
_UNKNOWN_FIELD = "Object contains unknown field"
_BOM = b"\xef\xbb\xbf"


def _decode_batch(body: bytes) -> ParsedRequest | None:
    """A batch body parsed with msgspec; None where it could answer otherwise than `_parse_batch`.

    msgspec refuses, where json and so `_parse_batch` decide (they give the
    error text, or accept): any invalid JSON, NaN/Infinity, numbers beyond a
    float (1e400) or an int's 4,300 digits, lone surrogate escapes (json
    accepts them; `_parse_batch` rejects just that message) and nesting at
    Python's recursion limit. What it accepts decodes to the same values as
    json (integers beyond 64 bits included; duplicate keys: the last wins).
    Values in skipped members are only checked for syntax, so an envelope
    member other than the five known ones is decoded on its own.
    """
    if body.startswith(_BOM):
        body = body[3:]  # parse_request decoded it as utf-8-sig, so it is valid UTF-8 after the BOM
    # Bytes, not text: a search for one byte (memchr) settles the usual body; "\u0000" is ASCII.
    check_nul = b"\\" in body and b"\\u0000" in body
    try:
        try:
            if not check_nul and len(body) <= MAX_MESSAGE_BYTES:
                small = _DECODE_SMALL_ENVELOPE(body)  # one C call for the whole body
                envelope: Any = small
                items, raws = small.batch, None
            else:
                envelope = _DECODE_ENVELOPE(body)
                items = raws = None
        except msgspec.ValidationError as exc:
            if not str(exc).startswith(_UNKNOWN_FIELD):
                return None
            envelope = _members(body)
            if envelope is None:
                return None
            items = raws = None
        if items is None:
            raws = envelope.batch
            items = [_DECODE_VALUE(raw) for raw in raws]
    except (ValueError, RecursionError):  # msgspec's DecodeError and ValidationError are ValueErrors
        return None
    return _batch_request(envelope, items, raws, check_nul)


def _members(body: bytes) -> SimpleNamespace | None:
    """`_DECODE_ENVELOPE`'s answer for an envelope with other members: each decoded, as json would."""
    members = _DECODE_MEMBERS(body)
    batch = members.pop("batch", None)
    if batch is None:
        return None
    values = {key: _DECODE_VALUE(raw) for key, raw in members.items()}  # checks numbers in every member
    return SimpleNamespace(
        batch=_DECODE_ITEMS(batch),
        context=values.get("context"),
        integrations=values.get("integrations"),
        sentAt=values.get("sentAt"),
        writeKey=values.get("writeKey"),
    )


def _batch_request(envelope: Any, items: list[Any], raws: list[msgspec.Raw] | None, check_nul: bool) -> ParsedRequest:
    """`_parse_batch`'s answer from msgspec's decoding; `raws` (each item's bytes) is None for a small body."""
    total = len(items)
    items, excess = _split_excess(items)
    context = _envelope_object(envelope.context, "context", check_nul)
    integrations = _envelope_object(envelope.integrations, "integrations", check_nul)
    sent_at = _envelope_sent_at(envelope.sentAt)
    write_key = _write_key(envelope.writeKey)
    merged = context or integrations
    # msgspec refused any lone surrogate, so only the size and a NUL escape are left to check per item.
    checked = raws is not None
    messages: list[Any] = []
    add = messages.append
    for index, item in enumerate(items):
        if type(item) is not dict:
            add(item)  # normalize() turns it into a Rejection
            continue
        if not write_key:
            write_key = _write_key(item.get("writeKey"))
        if checked:
            raw = raws[index]
            size = len(raw)  # the UTF-8 length of its JSON text as received
            if size > MAX_MESSAGE_BYTES:
                add(_summary_rejection(item, f"message is {size} bytes, over the {MAX_MESSAGE_BYTES} byte limit", size))
                continue
            if check_nul and b"\\u0000" in bytes(raw) and (problem := _nul_rejection(item)):
                add(problem)
                continue
        add(_merge_envelope(item, context, integrations) if merged or "writeKey" in item else item)
    messages.extend(excess)
    return ParsedRequest(messages=messages, write_key=write_key, sent_at=sent_at, excess=total - len(items))


def _split_excess(items: list[Any]) -> tuple[list[Any], list[Rejection]]:
    """The first MAX_BATCH_MESSAGES items, and a Rejection naming each one after them.

    Each rejection keeps a summary (messageId, type, event, ids) for the debugger. The
    body limit bounds their number; past another MAX_BATCH_MESSAGES of them one last
    rejection counts the rest, so a body of tiny items cannot write a row per item.
    """
    if len(items) <= MAX_BATCH_MESSAGES:
        return items, []
    total = len(items)
    kept, rest = items[:MAX_BATCH_MESSAGES], items[MAX_BATCH_MESSAGES:]
    rejections = []
    for index, item in enumerate(rest[:MAX_BATCH_MESSAGES], start=MAX_BATCH_MESSAGES + 1):
        reason = (
            f"message {index:,} of a batch of {total:,}: a batch holds at most {MAX_BATCH_MESSAGES:,} messages,"
            " so it was not processed; send it again in another batch"
        )
        if type(item) is dict:
            rejection = _summary_rejection(item, reason, None)
            rejection.field = "batch"
        else:
            rejection = Rejection(None, reason, "batch", _preview(item))
        rejections.append(rejection)
    if len(rest) > MAX_BATCH_MESSAGES:
        more = len(rest) - MAX_BATCH_MESSAGES
        rejections.append(
            Rejection(
                None,
                f"{more:,} more messages after message {2 * MAX_BATCH_MESSAGES:,} of a batch of {total:,} "
                f"were not processed (a batch holds at most {MAX_BATCH_MESSAGES:,} messages)",
                "batch",
                {"_truncated": True, "_count": more},
            )
        )
    return kept, rejections


def _parse_batch(text: str) -> ParsedRequest:
    """A batch body parsed with json's scanner, the reference: `_decode_batch` declines wherever it could differ.

    The answer for what msgspec refuses (invalid JSON and its exact error,
    lone surrogates, numbers beyond its range, nesting at the recursion limit).
    """
    data, spans = _load_batch(text)
    items = data.get("batch")
    if not isinstance(items, list):
        raise WireError(400, "invalid_body", "batch must be an array of messages")
    if len(items) > MAX_BATCH_MESSAGES:
        spans = spans[:MAX_BATCH_MESSAGES]
    total = len(items)
    items, excess = _split_excess(items)
    # One scan of the whole body spares a per-message search in the usual case.
    check_surrogates = _may_hold_surrogates(text, 0, len(text))
    check_nul = _may_hold_nul(text, 0, len(text))
    ascii_only = text.isascii()  # then a span's length is its UTF-8 size
    context = _envelope_object(data.get("context"), "context", check_nul)
    integrations = _envelope_object(data.get("integrations"), "integrations", check_nul)
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
    messages.extend(excess)
    return ParsedRequest(messages=messages, write_key=write_key, sent_at=sent_at, excess=total - len(items))


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


def _envelope_object(value: object, key: str, check_nul: bool) -> dict[str, Any] | None:
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


def _write_key(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _request_too_large() -> WireError:
    return WireError(400, "request_too_large", f"request body is over {MAX_REQUEST_BYTES} bytes")
