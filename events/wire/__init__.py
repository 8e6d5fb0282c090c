"""Parser and normaliser for the Segment HTTP tracking API wire format.

Pure Python (no Django) so the ingestion view can call it and it can be tested
and benchmarked in isolation. Typical use from a view::

    kind = ENDPOINT_KINDS[last_path_segment]  # e.g. "b" -> "batch", "t" -> "track"
    body = decode_body(request.body, request.headers.get("Content-Encoding"))
    parsed = parse_request(body, kind)
    write_key = basic_auth_key(request.headers.get("Authorization")) or parsed.write_key
    for result in normalize_all(parsed.messages, kind=kind, received_at=now, batch_sent_at=parsed.sent_at):
        # result is a Message (store it) or a Rejection (report it)

Whole-request problems raise ``WireError`` (answer with ``status``); problems
with a single message of a batch become a ``Rejection`` and the rest of the
batch is kept.

The modules, by concept: ``limits`` (the numbers and the endpoint kinds),
``envelope`` (decoding a request: content coding, write key, the JSON body;
msgspec with json's scanner as the reference fallback), ``messages``
(normalising one message), ``times`` (timestamps and clock skew),
``rejections`` (``WireError``, ``Rejection`` and what a refused message keeps).
"""

from .envelope import ParsedRequest, basic_auth_key, decode_body, parse_request, parse_webhook
from .limits import (
    ENDPOINT_KINDS,
    MAX_BATCH_MESSAGES,
    MAX_FIELD_LEN,
    MAX_FUTURE_SKEW,
    MAX_ID_LEN,
    MAX_MESSAGE_BYTES,
    MAX_MESSAGE_ID_LEN,
    MAX_REQUEST_BYTES,
    MAX_TIMESTAMP,
    MESSAGE_TYPES,
    MIN_TIMESTAMP,
)
from .messages import Message, normalize, normalize_all
from .rejections import Rejection, WireError
from .times import parse_timestamp

__all__ = [
    "ENDPOINT_KINDS",
    "MAX_BATCH_MESSAGES",
    "MAX_FIELD_LEN",
    "MAX_ID_LEN",
    "MAX_MESSAGE_BYTES",
    "MAX_MESSAGE_ID_LEN",
    "MAX_REQUEST_BYTES",
    "MAX_FUTURE_SKEW",
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
    "normalize_all",
    "parse_request",
    "parse_webhook",
    "parse_timestamp",
]
