"""Tests for events.wire, the Segment tracking API wire-format parser.

Pure Python: no Django settings or database needed.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import tracemalloc
import uuid
import zlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import wire
from events.wire import (
    ENDPOINT_KINDS,
    MAX_BATCH_MESSAGES,
    MAX_FUTURE_SKEW,
    MAX_ID_LEN,
    MAX_MESSAGE_BYTES,
    MAX_MESSAGE_ID_LEN,
    MAX_REQUEST_BYTES,
    MAX_TIMESTAMP,
    MESSAGE_TYPES,
    MIN_TIMESTAMP,
    Message,
    ParsedRequest,
    Rejection,
    WireError,
    basic_auth_key,
    decode_body,
    envelope,
    normalize,
    normalize_all,
    parse_request,
    parse_timestamp,
)

RECEIVED = datetime(2024, 1, 1, 12, 0, 5, tzinfo=UTC)
# No example database: tests must not write files into the repository.
PROPERTY_SETTINGS = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Signed Up", "userId": "u1", **fields}


def batch_body(messages: list[Any], **envelope: Any) -> bytes:
    return compact({"batch": messages, **envelope})


def norm(raw: Any, kind: str = "batch", batch_sent_at: str | None = None) -> Message | Rejection:
    return normalize(raw, kind=kind, received_at=RECEIVED, batch_sent_at=batch_sent_at)


def accepted(raw: Any, kind: str = "batch", batch_sent_at: str | None = None) -> Message:
    result = norm(raw, kind, batch_sent_at)
    assert isinstance(result, Message), result
    return result


def rejected(raw: Any, kind: str = "batch", batch_sent_at: str | None = None) -> Rejection:
    result = norm(raw, kind, batch_sent_at)
    assert isinstance(result, Rejection), result
    return result


def wire_error(code: str, func: Any, *args: Any) -> WireError:
    with pytest.raises(WireError) as info:
        func(*args)
    assert info.value.code == code, info.value
    assert info.value.status == 400
    return info.value


def holds_nul(value: Any) -> bool:
    """True if any key or string in a JSON value holds a NUL (which PostgreSQL cannot store)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(key) or holds_nul(child) for key, child in value.items())
    if isinstance(value, list):
        return any(holds_nul(child) for child in value)
    return False


def sized(message: dict[str, Any], size: int) -> dict[str, Any]:
    """``message`` padded so its compact UTF-8 JSON is exactly ``size`` bytes."""
    padded = {**message, "properties": {"pad": ""}}
    padded["properties"]["pad"] = "x" * (size - len(compact(padded)))
    assert len(compact(padded)) == size
    return padded


# --------------------------------------------------------------------------
# Contract surface
# --------------------------------------------------------------------------


def test_limits_match_the_segment_contract() -> None:
    assert MAX_REQUEST_BYTES == 512_000
    assert MAX_MESSAGE_BYTES == 32_768
    assert MAX_BATCH_MESSAGES == 2500
    assert MAX_MESSAGE_ID_LEN == 100


def test_limits_match_the_database_columns() -> None:
    # Pure Python here, so read the numbers the models declare rather than import Django.
    text = (Path(wire.__file__).parent.parent / "models.py").read_text(encoding="utf-8")
    assert f"message_id = models.CharField(max_length={MAX_MESSAGE_ID_LEN})" in text
    assert f"field = models.CharField(max_length={wire.MAX_FIELD_LEN}" in text
    for column in ("user_id", "anonymous_id", "group_id", "name"):
        assert f"{column} = models.CharField(max_length={MAX_ID_LEN}" in text, column


def test_wire_error_carries_status_code_and_message() -> None:
    error = WireError(400, "invalid_json", "body is not valid JSON")
    assert (error.status, error.code, error.message) == (400, "invalid_json", "body is not valid JSON")
    assert str(error) == "body is not valid JSON"
    assert isinstance(error, Exception)


@pytest.mark.parametrize(
    ("segment", "kind"),
    [
        ("batch", "batch"),
        ("import", "batch"),
        ("b", "batch"),
        ("track", "track"),
        ("t", "track"),
        ("identify", "identify"),
        ("i", "identify"),
        ("group", "group"),
        ("g", "group"),
        ("page", "page"),
        ("p", "page"),
        ("screen", "screen"),
        ("s", "screen"),
        ("alias", "alias"),
        ("a", "alias"),
    ],
)
def test_endpoint_kinds_cover_every_path(segment: str, kind: str) -> None:
    assert ENDPOINT_KINDS[segment] == kind


@pytest.mark.parametrize("func", [lambda k: parse_request(b"{}", k), lambda k: norm({}, kind=k)])
def test_unknown_kind_is_a_programming_error(func: Any) -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        func("t")  # the view must map aliases through ENDPOINT_KINDS


# --------------------------------------------------------------------------
# decode_body
# --------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", [None, "", "identity", "IDENTITY", " identity "])
def test_identity_bodies_pass_through(encoding: str | None) -> None:
    assert decode_body(b'{"a":1}', encoding) == b'{"a":1}'


@pytest.mark.parametrize("encoding", ["gzip", "GZIP", " gzip ", "x-gzip", "gzip, identity"])
def test_gzip_bodies_are_decompressed(encoding: str) -> None:
    assert decode_body(gzip.compress(b'{"batch":[]}'), encoding) == b'{"batch":[]}'


def test_concatenated_gzip_members_are_all_decompressed() -> None:
    assert decode_body(gzip.compress(b'{"a":') + gzip.compress(b"1}"), "gzip") == b'{"a":1}'


@pytest.mark.parametrize(
    "raw",
    [
        b"not gzip at all",
        b"",
        gzip.compress(b'{"a":1}')[:-6],  # truncated stream
        gzip.compress(b'{"a":1}')[:-4] + b"\0\0\0\0",  # wrong length trailer
        gzip.compress(b'{"a":1}') + b"garbage",  # junk after the member
    ],
)
def test_invalid_gzip_is_rejected(raw: bytes) -> None:
    wire_error("invalid_gzip", decode_body, raw, "gzip")


@pytest.mark.parametrize("encoding", ["br", "deflate", "compress", "gzip, br", "gzip, gzip"])
def test_other_encodings_are_unsupported(encoding: str) -> None:
    wire_error("unsupported_encoding", decode_body, b"{}", encoding)


def test_decompressed_size_limit_is_inclusive() -> None:
    body = b'{"batch":[]}'.ljust(MAX_REQUEST_BYTES)
    assert decode_body(gzip.compress(body), "gzip") == body
    wire_error("request_too_large", decode_body, gzip.compress(body + b" "), "gzip")


def test_identity_body_over_the_limit_is_too_large() -> None:
    assert len(decode_body(b" " * MAX_REQUEST_BYTES, None)) == MAX_REQUEST_BYTES
    wire_error("request_too_large", decode_body, b" " * (MAX_REQUEST_BYTES + 1), None)


def test_gzip_bomb_is_stopped_without_allocating_its_output() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    megabyte = b"\0" * 1_000_000
    raw = b"".join(bomb.compress(megabyte) for _ in range(100)) + bomb.flush()  # 100 MB in ~100 KB
    tracemalloc.start()
    try:
        wire_error("request_too_large", decode_body, raw, "gzip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_REQUEST_BYTES  # a few buffers of the cap, never 100 MB


# --------------------------------------------------------------------------
# basic_auth_key
# --------------------------------------------------------------------------


def basic(credentials: bytes, scheme: str = "Basic") -> str:
    return f"{scheme} {base64.b64encode(credentials).decode()}"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic(b"wk_123:"), "wk_123"),
        (basic(b"wk_123"), "wk_123"),  # no colon at all
        (basic(b"wk_123:ignored-password"), "wk_123"),
        (basic(b"wk_123:", "basic"), "wk_123"),
        (basic(b"wk_123:", "BASIC"), "wk_123"),
        ("  " + basic(b"wk_123:") + "  ", "wk_123"),
        ("Basic   " + base64.b64encode(b"wk_123:").decode(), "wk_123"),
        ("Basic " + base64.b64encode(b"ab:").decode().rstrip("="), "ab"),  # padding dropped
        (basic("clé:".encode()), "clé"),
    ],
)
def test_basic_auth_key_extracts_the_user_part(header: str, expected: str) -> None:
    assert basic_auth_key(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic",
        "Basic ",
        "Bearer " + base64.b64encode(b"wk_123:").decode(),
        "Basic !!!not-base64!!!",
        "Basic d2tf$MTIz",
        "Basic a",  # impossible base64 length
        "Basic é",
        basic(b":"),  # empty key
        basic(b":password"),
        basic(b""),
        basic(b"\xff\xfe:"),  # not UTF-8
    ],
)
def test_basic_auth_key_rejects_malformed_headers(header: str | None) -> None:
    assert basic_auth_key(header) is None


# --------------------------------------------------------------------------
# parse_request: whole-request errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["batch", "track"])
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"{",
        b'{"batch": [}',
        b'{"batch": [],}',
        b'{"batch": []} trailing',
        b"{'batch': []}",
        b'{"batch": [NaN]}',
        b'{"batch": [], "x": Infinity}',
        b'{"userId": -Infinity}',
        b'{"x": 1e400}',  # overflows to inf, which no JSON store accepts
        b'{"x": ' + b"9" * 5000 + b"}",  # beyond int-from-string limits
        b'{"batch": ["\xff"]}',  # invalid UTF-8
        b'{"x": "\xed\xa0\x80"}',  # UTF-8-encoded surrogate is invalid UTF-8
        '{"batch": []}'.encode("utf-16"),
    ],
)
def test_invalid_json_is_rejected(body: bytes, kind: str) -> None:
    wire_error("invalid_json", parse_request, body, kind)


@pytest.mark.parametrize("kind", ["batch", "identify"])
@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_deep_nesting_is_invalid_json_not_a_crash(kind: str, depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    wire_error("invalid_json", parse_request, b'{"batch": [' + nested + b"]}", kind)
    wire_error("invalid_json", parse_request, b'{"traits": {"a": ' + nested + b"}}", kind)


@pytest.mark.parametrize("kind", ["batch", "page"])
@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"null", b"true", b"[{}]"])
def test_body_must_be_an_object(body: bytes, kind: str) -> None:
    wire_error("invalid_body", parse_request, body, kind)


@pytest.mark.parametrize(
    "envelope",
    [
        {},
        {"batch": None},
        {"batch": {"type": "track"}},
        {"batch": "[]"},
        {"batch": [], "context": "ctx"},
        {"batch": [], "context": []},
        {"batch": [], "integrations": 1},
        {"batch": [], "sentAt": "yesterday"},
        {"batch": [], "sentAt": 1704103200},
        {"batch": [], "sentAt": {"at": "2024-01-01"}},
    ],
)
def test_malformed_batch_envelopes_are_invalid_body(envelope: dict[str, Any]) -> None:
    error = wire_error("invalid_body", parse_request, compact(envelope), "batch")
    assert error.message


def test_a_nul_in_a_non_object_envelope_is_named() -> None:
    """Found by hypothesis: a batch context that is a list holding a NUL names the NUL, like an object's."""
    error = wire_error("invalid_body", parse_request, batch_body([], context=[{"\x00": None}]), "batch")
    assert error.message == "batch context[0].\ufffd contains a NUL character"


def test_invalid_batch_sent_at_explains_itself() -> None:
    error = wire_error("invalid_body", parse_request, batch_body([], sentAt="yesterday"), "batch")
    assert error.message == "batch sentAt is not an ISO-8601 date: 'yesterday'"


def test_batch_message_count_limit_is_inclusive() -> None:
    message = {"type": "track", "event": "e", "userId": "u"}
    parsed = parse_request(batch_body([message] * MAX_BATCH_MESSAGES), "batch")
    assert len(parsed.messages) == MAX_BATCH_MESSAGES
    assert parsed.excess == 0


@pytest.mark.parametrize("pad", [0, 40], ids=["small body", "body over 32 KB"])
def test_a_batch_over_the_message_limit_keeps_the_first_2500_and_rejects_the_rest_by_name(pad: int) -> None:
    messages = [
        {"type": "track", "event": "e", "userId": "u", "messageId": f"m-{i}", "properties": {"p": "x" * pad}}
        for i in range(MAX_BATCH_MESSAGES + 3)
    ]
    parsed = parse_request(batch_body(messages), "batch")
    assert parsed.excess == 3
    assert [m["messageId"] for m in parsed.messages[:MAX_BATCH_MESSAGES]] == [f"m-{i}" for i in range(2500)]
    excess = parsed.messages[MAX_BATCH_MESSAGES:]
    assert all(isinstance(r, Rejection) and r.field == "batch" for r in excess)
    assert [r.message_id for r in excess] == ["m-2500", "m-2501", "m-2502"]
    assert excess[0].reason.startswith("message 2,501 of a batch of 2,503: a batch holds at most 2,500 messages")


def test_past_twice_the_limit_the_rest_is_one_counted_rejection() -> None:
    parsed = parse_request(batch_body([{}] * (2 * MAX_BATCH_MESSAGES + 7)), "batch")
    assert parsed.excess == MAX_BATCH_MESSAGES + 7
    assert parsed.excess_rejections == MAX_BATCH_MESSAGES + 1
    assert len(parsed.messages) == 2 * MAX_BATCH_MESSAGES + 1
    assert parsed.messages[-1].reason.startswith("7 more messages after message 5,000 of a batch of 5,007")


@pytest.mark.parametrize("kind", ["batch", "track"])
def test_request_size_limit_is_inclusive(kind: str) -> None:
    body = b'{"batch":[]}'.ljust(MAX_REQUEST_BYTES)  # JSON whitespace is legal padding
    assert isinstance(parse_request(body, kind), ParsedRequest)
    wire_error("request_too_large", parse_request, body + b" ", kind)


def test_utf8_byte_order_mark_is_tolerated() -> None:
    parsed = parse_request(b"\xef\xbb\xbf" + batch_body([track()]), "batch")
    assert parsed.messages == [track()]


# --------------------------------------------------------------------------
# parse_request: batches
# --------------------------------------------------------------------------


def test_batch_context_and_integrations_merge_shallowly_with_message_keys_winning() -> None:
    body = batch_body(
        [
            track(context={"ip": "10.0.0.1", "library": {"name": "msg-lib"}}, integrations={"All": True}),
            track(),
            track(context=None, integrations=None),
        ],
        context={"ip": "1.2.3.4", "locale": "fr-FR", "library": {"name": "batch-lib", "version": "1"}},
        integrations={"All": False, "Mixpanel": True},
    )
    first, second, third = parse_request(body, "batch").messages
    assert first["context"] == {"ip": "10.0.0.1", "locale": "fr-FR", "library": {"name": "msg-lib"}}
    assert first["integrations"] == {"All": True, "Mixpanel": True}
    batch_context = {"ip": "1.2.3.4", "locale": "fr-FR", "library": {"name": "batch-lib", "version": "1"}}
    assert second["context"] == third["context"] == batch_context
    assert second["integrations"] == third["integrations"] == {"All": False, "Mixpanel": True}
    second["context"]["ip"] = "changed"
    assert third["context"]["ip"] == "1.2.3.4"  # each message got its own dict


def test_batch_without_envelope_context_leaves_messages_alone() -> None:
    messages = [track(), track(context={"a": 1}), track(integrations={})]
    assert parse_request(batch_body(messages, context=None, integrations={}), "batch").messages == messages


def test_message_with_non_object_context_is_left_for_normalize_to_reject() -> None:
    (item,) = parse_request(batch_body([track(context="oops")], context={"ip": "1.2.3.4"}), "batch").messages
    assert item["context"] == "oops"
    rejection = rejected(item)
    assert (rejection.field, rejection.reason) == ("context", "context must be an object, got string")


def test_batch_write_key_prefers_the_envelope() -> None:
    body = batch_body([track(writeKey="per-message")], writeKey="envelope")
    parsed = parse_request(body, "batch")
    assert parsed.write_key == "envelope"
    assert "writeKey" not in parsed.messages[0]  # a credential is not stored with the event


def test_batch_write_key_falls_back_to_the_first_message_that_has_one() -> None:
    body = batch_body(["junk", track(), track(writeKey=""), track(writeKey="first"), track(writeKey="second")])
    parsed = parse_request(body, "batch")
    assert parsed.write_key == "first"
    assert all("writeKey" not in item for item in parsed.messages if isinstance(item, dict))


@pytest.mark.parametrize("value", [None, "", 42, ["k"]])
def test_unusable_write_keys_are_ignored(value: Any) -> None:
    assert parse_request(batch_body([track()], writeKey=value), "batch").write_key is None
    assert parse_request(compact(track(writeKey=value)), "track").write_key is None


def test_batch_sent_at_is_returned_raw() -> None:
    parsed = parse_request(batch_body([], sentAt="2024-01-01T10:00:05.5+02:00"), "batch")
    assert parsed.sent_at == "2024-01-01T10:00:05.5+02:00"
    assert parse_request(batch_body([]), "batch").sent_at is None


def test_empty_batch_is_fine() -> None:
    assert parse_request(b'{"batch":[]}', "batch") == ParsedRequest(messages=[], write_key=None, sent_at=None)


def test_non_object_batch_items_become_rejections_in_order() -> None:
    parsed = parse_request(batch_body(["text", None, 3, [track()], track(), True]), "batch")
    results = [norm(item) for item in parsed.messages]
    assert [type(result) for result in results] == [Rejection] * 4 + [Message, Rejection]
    assert results[0] == Rejection(None, "message must be a JSON object, got string", None, "text")
    assert results[1].reason == "message must be a JSON object, got null"
    assert results[2].reason == "message must be a JSON object, got number"
    assert results[3].reason == "message must be a JSON object, got array"
    assert results[5].reason == "message must be a JSON object, got boolean"


def test_huge_non_object_item_is_kept_only_as_a_preview() -> None:
    (item,) = parse_request(batch_body(["x" * 100_000]), "batch").messages
    rejection = rejected(item)
    assert isinstance(rejection.raw, str)
    assert len(rejection.raw) < 300


def test_whitespace_and_key_order_do_not_matter() -> None:
    envelope = {"sentAt": "2024-01-01T00:00:00Z", "batch": [track(), "x", {"a": [1, {"b": None}]}], "writeKey": "k"}
    for body in (json.dumps(envelope, indent=4), json.dumps(envelope), json.dumps(envelope, separators=(",", ":"))):
        parsed = parse_request(f"\n\t {body} \r\n".encode(), "batch")
        assert parsed.messages == envelope["batch"]
        assert (parsed.write_key, parsed.sent_at) == ("k", "2024-01-01T00:00:00Z")


def test_duplicate_keys_resolve_like_json_loads() -> None:
    body = b'{"batch": [{"type": "track"}], "batch": [{"type": "page"}, 1], "writeKey": "a", "writeKey": "b"}'
    parsed = parse_request(body, "batch")
    assert parsed.messages == [{"type": "page"}, 1]
    assert parsed.write_key == "b"
    last_not_array = b'{"batch": [{"type": "page"}], "batch": {}}'
    wire_error("invalid_body", parse_request, last_not_array, "batch")


# --------------------------------------------------------------------------
# Message size limit
# --------------------------------------------------------------------------


def test_oversize_batch_message_is_rejected_and_the_rest_kept() -> None:
    big = sized(track(messageId="big-one"), MAX_MESSAGE_BYTES + 1)
    fits = sized(track(messageId="fits"), MAX_MESSAGE_BYTES)
    parsed = parse_request(batch_body([track(messageId="a"), big, fits, track(messageId="b")]), "batch")
    results = [norm(item) for item in parsed.messages]
    assert [type(result) for result in results] == [Message, Rejection, Message, Message]
    rejection = results[1]
    assert rejection.message_id == "big-one"
    assert rejection.reason == f"message is {MAX_MESSAGE_BYTES + 1} bytes, over the {MAX_MESSAGE_BYTES} byte limit"
    assert rejection.field is None
    assert len(compact(rejection.raw)) < 500  # only a summary is kept
    assert rejection.raw["_size"] == MAX_MESSAGE_BYTES + 1
    assert rejection.raw["type"] == "track"
    assert [result.message_id for result in results if isinstance(result, Message)] == ["a", "fits", "b"]


def test_oversize_summary_truncates_its_own_fields() -> None:
    big = sized(track(event="E" * 20_000), MAX_MESSAGE_BYTES + 100)
    (rejection,) = parse_request(batch_body([big]), "batch").messages
    assert isinstance(rejection, Rejection)
    assert len(rejection.raw["event"]) == 100
    assert norm(rejection) is rejection  # normalize passes decided rejections through


def test_message_size_counts_utf8_bytes() -> None:
    message = sized(track(), MAX_MESSAGE_BYTES)
    message["properties"]["pad"] = message["properties"]["pad"][:-1] + "é"  # 2 bytes in UTF-8, 1 char
    assert len(compact(message)) == MAX_MESSAGE_BYTES + 1
    (item,) = parse_request(batch_body([message]), "batch").messages
    assert isinstance(item, Rejection)
    wire_error("message_too_large", parse_request, compact(message), "track")


def test_single_call_message_size_limit_is_inclusive() -> None:
    fits = compact(sized(track(), MAX_MESSAGE_BYTES))
    assert isinstance(accepted(parse_request(fits, "track").messages[0], "track"), Message)
    assert parse_request(b"\n  " + fits + b"  \n", "track").messages  # surrounding whitespace is free
    error = wire_error("message_too_large", parse_request, compact(sized(track(), MAX_MESSAGE_BYTES + 1)), "track")
    assert error.message == f"message is {MAX_MESSAGE_BYTES + 1} bytes, over the {MAX_MESSAGE_BYTES} byte limit"


# --------------------------------------------------------------------------
# Unicode that cannot be stored
# --------------------------------------------------------------------------


def test_lone_surrogate_in_a_batch_message_rejects_only_that_message() -> None:
    body = b'{"batch": [{"type": "track", "event": "bad \\ud800", "userId": "u", "messageId": "m1"}, '
    body += b'{"type": "track", "event": "ok \\ud83d\\ude00", "userId": "u"}, '
    body += b'{"type": "track", "event": "e", "userId": "u", "properties": {"\\uDC00": 1}}]}'
    first, second, third = parse_request(body, "batch").messages
    assert isinstance(first, Rejection)
    assert first.reason == "message contains an unpaired UTF-16 surrogate"
    assert first.message_id == "m1"
    assert first.raw["event"] == "bad ?"  # storable summary
    assert accepted(second).activity == "ok \U0001f600"  # an escaped pair is a real character
    assert isinstance(third, Rejection)


def test_escaped_backslash_before_u_is_not_a_surrogate() -> None:
    body = b'{"batch": [{"type": "track", "event": "path \\\\ud800", "userId": "u"}]}'
    (item,) = parse_request(body, "batch").messages
    assert accepted(item).activity == "path \\ud800"


def test_lone_surrogate_in_a_single_call_is_invalid_json() -> None:
    wire_error("invalid_json", parse_request, b'{"event": "\\udfff", "userId": "u"}', "track")


def test_nul_in_a_batch_message_rejects_only_that_message_naming_the_field() -> None:
    bad = track(messageId="m1", writeKey="wk_secret", properties={"plan": "pro", "note": "a\x00b"})
    first, second = parse_request(batch_body([bad, track()], context={"ip": "1.2.3.4"}), "batch").messages
    assert isinstance(first, Rejection)
    assert first.field == "properties.note"
    assert first.reason == "properties.note contains a NUL character (\\u0000), which cannot be stored"
    assert first.message_id == "m1"
    # Kept for the debugger, storable: the NUL replaced, the write key dropped.
    assert first.raw == {**track(messageId="m1"), "properties": {"plan": "pro", "note": "a\ufffdb"}}
    assert accepted(second).activity == "Signed Up"
    assert normalize(first, kind="batch", received_at=RECEIVED, batch_sent_at=None) is first


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"context": {"page": {"title": "\x00"}}}, "context.page.title"),
        ({"traits": {"tags": ["ok", "b\x00d"]}}, "traits.tags[1]"),
        ({"properties": {"k\x00": 1}}, "properties.k\ufffd"),
        ({"userId": "u\x00"}, "userId"),
        ({"messageId": "\x00"}, "messageId"),
        ({"extra": [[{"deep": "\x00"}]]}, "extra[0][0].deep"),
    ],
)
def test_nul_anywhere_in_a_message_is_found(fields: dict[str, Any], path: str) -> None:
    (item,) = parse_request(batch_body([track(**fields)]), "batch").messages
    assert isinstance(item, Rejection)
    assert item.field == path
    assert not holds_nul(item.raw)
    assert item.message_id is None or "\x00" not in item.message_id


def test_nul_path_is_bounded_to_fit_the_field_column() -> None:
    (item,) = parse_request(batch_body([track(properties={"k" * 300: "\x00"})]), "batch").messages
    assert isinstance(item, Rejection)
    assert len(item.field) == wire.MAX_FIELD_LEN
    assert len(item.reason) < 200


def test_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    body = b'{"batch": [{"type": "track", "event": "path \\\\u0000", "userId": "u"}]}'
    (item,) = parse_request(body, "batch").messages
    assert accepted(item).activity == "path \\u0000"


def test_nul_in_a_single_call_is_a_rejection() -> None:
    (item,) = parse_request(compact(track(writeKey="wk", event="a\x00")), "track").messages
    assert isinstance(item, Rejection)
    assert (item.field, item.raw) == ("event", track(event="a\ufffd"))


def test_nul_in_the_batch_context_is_invalid_body() -> None:
    error = wire_error("invalid_body", parse_request, batch_body([track()], context={"ip": "\x00"}), "batch")
    assert error.message == "batch context.ip contains a NUL character"


def test_bodies_without_the_nul_escape_are_never_walked(monkeypatch: pytest.MonkeyPatch) -> None:
    # The speed guarantee: the per-string walk only runs when the raw text has a \u0000.
    def walked(value: Any) -> None:
        raise AssertionError("walked a body without a NUL escape")

    monkeypatch.setattr(envelope, "_nul_path", walked)
    monkeypatch.setattr(wire.rejections, "_nul_path", walked)
    body = batch_body([track(properties={"a": ["x", {"b": "\\ud83d \\n"}]}), track()], context={"c": 1})
    assert len(parse_request(body, "batch").messages) == 2
    assert len(parse_request(compact(track()), "track").messages) == 1


# --------------------------------------------------------------------------
# normalize: values bound for varchar(255) columns
# --------------------------------------------------------------------------

COLUMN_FIELDS = [
    ("track", "userId", lambda value: {"userId": value}),
    ("track", "anonymousId", lambda value: {"userId": None, "anonymousId": value}),
    ("track", "event", lambda value: {"event": value}),
    ("track", "context.groupId", lambda value: {"context": {"groupId": value}}),
    ("group", "groupId", lambda value: {"groupId": value}),
    ("alias", "previousId", lambda value: {"previousId": value}),
]


@pytest.mark.parametrize(("kind", "field", "fields"), COLUMN_FIELDS)
def test_values_over_255_characters_are_rejected_naming_the_field(kind: str, field: str, fields: Any) -> None:
    accepted(track(type=kind, **fields("x" * MAX_ID_LEN)))  # the limit itself fits
    rejection = rejected(track(type=kind, messageId="m1", **fields("x" * (MAX_ID_LEN + 1))))
    assert (rejection.field, rejection.reason) == (field, f"{field} must be at most {MAX_ID_LEN} characters")
    assert rejection.message_id == "m1"


@pytest.mark.parametrize(("kind", "field", "fields"), COLUMN_FIELDS)
def test_values_holding_a_nul_are_rejected_naming_the_field(kind: str, field: str, fields: Any) -> None:
    rejection = rejected(track(type=kind, **fields("a\x00b")))
    assert rejection.field == field
    assert rejection.reason == f"{field} contains a NUL character (\\u0000), which cannot be stored"
    assert not holds_nul(rejection.raw)  # the rejection itself must be storable


def test_a_huge_integer_id_is_too_long() -> None:
    rejection = rejected(track(userId=10**300))
    assert (rejection.field, rejection.reason) == ("userId", f"userId must be at most {MAX_ID_LEN} characters")


def test_message_id_holding_a_nul_is_rejected_without_reporting_it() -> None:
    rejection = rejected(track(messageId="m\x00"))
    assert (rejection.field, rejection.message_id) == ("messageId", None)


@pytest.mark.parametrize(("kind", "label"), [("page", "Viewed  Page"), ("screen", "Viewed  Screen")])
@pytest.mark.parametrize("where", ["name", "properties.name"])
def test_page_and_screen_names_must_leave_the_activity_within_255(kind: str, label: str, where: str) -> None:
    def message(name: str) -> dict[str, Any]:
        return {"userId": "u", "name": name} if where == "name" else {"userId": "u", "properties": {"name": name}}

    room = MAX_ID_LEN - len(label)
    assert len(accepted(message("n" * room), kind=kind).activity) == MAX_ID_LEN
    rejection = rejected(message("n" * (room + 1)), kind=kind)
    assert (rejection.field, rejection.reason) == (where, f"{where} must be at most {room} characters")
    assert rejected(message("a\x00"), kind=kind).field == where


# --------------------------------------------------------------------------
# Single calls
# --------------------------------------------------------------------------


def test_single_call_returns_the_body_as_its_only_message() -> None:
    body = compact(track(writeKey="wk", sentAt="2024-01-01T10:00:05Z", version=2))
    parsed = parse_request(body, "track")
    assert parsed.write_key == "wk"
    assert parsed.sent_at is None  # the message's own sentAt is read by normalize
    assert parsed.messages == [track(sentAt="2024-01-01T10:00:05Z", version=2)]


def test_single_call_type_comes_from_the_path() -> None:
    (item,) = parse_request(compact({"type": "identify", "event": "Clicked", "userId": "u"}), "track").messages
    message = accepted(item, kind="track")
    assert (message.type, message.activity) == ("track", "Clicked")
    assert message.raw["type"] == "identify"  # raw stays as received
    assert accepted({"userId": "u"}, kind="identify").type == "identify"  # no type at all is fine


# --------------------------------------------------------------------------
# normalize: identity and ids
# --------------------------------------------------------------------------


def test_track_message_is_normalised() -> None:
    raw = track(
        messageId="m-1",
        anonymousId="anon",
        properties={"plan": "pro"},
        context={"library": {"name": "analytics-python"}},
        integrations={},
        timestamp="2024-01-01T10:00:00.123+02:00",
        version=2,
        _metadata={"bundled": []},
    )
    message = accepted(raw)
    assert message == Message(
        type="track",
        message_id="m-1",
        user_id="u1",
        anonymous_id="anon",
        activity="Signed Up",
        group_id=None,
        previous_id=None,
        timestamp=datetime(2024, 1, 1, 8, 0, 0, 123000, tzinfo=UTC),
        sent_at=None,
        received_at=RECEIVED,
        original_timestamp=datetime(2024, 1, 1, 8, 0, 0, 123000, tzinfo=UTC),
        properties={"plan": "pro"},
        traits={},
        context={"library": {"name": "analytics-python"}},
        raw=raw,
    )
    assert message.raw["version"] == 2  # unknown keys are kept


@pytest.mark.parametrize(
    ("fields", "user_id", "anonymous_id"),
    [
        ({"userId": "u"}, "u", None),
        ({"anonymousId": "a"}, None, "a"),
        ({"userId": None, "anonymousId": "a"}, None, "a"),
        ({"userId": "", "anonymousId": "a"}, None, "a"),
        ({"userId": " \t", "anonymousId": "a"}, None, "a"),
        ({"userId": " padded "}, " padded ", None),  # kept exactly, not stripped
        ({"userId": 42}, "42", None),
        ({"userId": 0}, "0", None),
        ({"userId": -7}, "-7", None),
        ({"userId": 12345678901234567890123}, "12345678901234567890123", None),
        ({"userId": 42.0}, "42", None),  # integral float, as a JavaScript client would send it
        ({"anonymousId": 9.007199254740992e15}, None, "9007199254740992"),
    ],
)
def test_user_and_anonymous_ids(fields: dict[str, Any], user_id: str | None, anonymous_id: str | None) -> None:
    message = accepted({"type": "identify", **fields})
    assert (message.user_id, message.anonymous_id) == (user_id, anonymous_id)


@pytest.mark.parametrize(
    "fields",
    [{}, {"userId": None}, {"userId": "", "anonymousId": ""}, {"userId": "  ", "anonymousId": None}],
)
def test_user_or_anonymous_id_is_required(fields: dict[str, Any]) -> None:
    rejection = rejected({"type": "identify", "messageId": "m", **fields})
    assert (rejection.field, rejection.reason) == ("userId", "userId or anonymousId is required")
    assert rejection.message_id == "m"
    assert rejection.raw == {"type": "identify", "messageId": "m", **fields}


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("userId", True, "boolean"),
        ("userId", False, "boolean"),
        ("anonymousId", 1.5, "number"),
        ("anonymousId", 1e300, "number"),
        ("anonymousId", float("inf"), "number"),
        ("userId", ["u"], "array"),
        ("userId", {"id": 1}, "object"),
    ],
)
def test_ids_of_other_types_are_rejected(field: str, value: Any, shown: str) -> None:
    rejection = rejected({"type": "identify", "userId": "u", field: value})
    assert rejection.field == field
    assert rejection.reason == f"{field} must be a string or an integer, got {shown}"


def test_missing_message_id_is_assigned_without_mutating_the_input() -> None:
    for raw in (track(), track(messageId=None), track(messageId=""), track(messageId="   ")):
        before = copy.deepcopy(raw)
        message = accepted(raw)
        assert uuid.UUID(message.message_id).version == 4
        assert message.raw == {**before, "messageId": message.message_id}
        assert raw == before


def test_message_ids_are_unique_when_assigned() -> None:
    assert len({accepted(track()).message_id for _ in range(50)}) == 50


@pytest.mark.parametrize(("value", "expected"), [("abc", "abc"), (123, "123"), ("x" * 100, "x" * 100)])
def test_message_id_is_kept(value: Any, expected: str) -> None:
    message = accepted(track(messageId=value))
    assert message.message_id == expected
    assert message.raw["messageId"] == value


def test_message_id_over_100_characters_is_rejected() -> None:
    rejection = rejected(track(messageId="x" * 101))
    assert (rejection.field, rejection.reason) == ("messageId", "messageId must be at most 100 characters")
    assert rejection.message_id is None


@pytest.mark.parametrize(("value", "shown"), [(True, "boolean"), (1.5, "number"), ([1], "array"), ({}, "object")])
def test_message_id_of_other_types_is_rejected(value: Any, shown: str) -> None:
    rejection = rejected(track(messageId=value))
    assert rejection.field == "messageId"
    assert rejection.reason == f"messageId must be a string or an integer, got {shown}"


# --------------------------------------------------------------------------
# normalize: types and their required fields
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "type is required"),
        ("Track", "type must be one of alias, group, identify, page, screen, track: 'Track'"),
        ("purchase", "type must be one of alias, group, identify, page, screen, track: 'purchase'"),
        (3, "type must be one of alias, group, identify, page, screen, track: 3"),
        ({"t": 1}, "type must be one of alias, group, identify, page, screen, track: object"),
    ],
)
def test_batch_messages_need_a_known_type(value: Any, reason: str) -> None:
    rejection = rejected({"type": value, "userId": "u"})
    assert (rejection.field, rejection.reason) == ("type", reason)


@pytest.mark.parametrize("event", [None, "", "   ", 5, ["Signed Up"]])
def test_track_needs_an_event(event: Any) -> None:
    rejection = rejected(track(event=event))
    assert (rejection.field, rejection.reason) == ("event", "event must be a non-empty string")


def test_track_without_event_key_is_rejected() -> None:
    assert rejected({"type": "track", "userId": "u"}).field == "event"


def test_identify_has_traits_and_no_activity() -> None:
    message = accepted({"type": "identify", "userId": "u", "traits": {"email": "a@b.c"}})
    assert (message.activity, message.group_id, message.previous_id) == (None, None, None)
    assert message.traits == {"email": "a@b.c"}


@pytest.mark.parametrize(("value", "expected"), [("acme", "acme"), (7, "7"), (" acme", " acme")])
def test_group_exposes_its_group_id(value: Any, expected: str) -> None:
    message = accepted({"type": "group", "userId": "u", "groupId": value, "traits": {"name": "Acme"}})
    assert (message.group_id, message.activity, message.traits) == (expected, None, {"name": "Acme"})


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "groupId is required"),
        ({"groupId": ""}, "groupId is required"),
        ({"groupId": False}, "groupId must be a string or an integer, got boolean"),
    ],
)
def test_group_needs_a_group_id(fields: dict[str, Any], reason: str) -> None:
    rejection = rejected({"type": "group", "userId": "u", **fields})
    assert (rejection.field, rejection.reason) == ("groupId", reason)


def test_alias_exposes_previous_id() -> None:
    message = accepted({"type": "alias", "userId": "new", "previousId": 99})
    assert (message.user_id, message.previous_id, message.activity) == ("new", "99", None)


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"userId": "new"}, "previousId", "previousId is required"),
        ({"userId": "new", "previousId": " "}, "previousId", "previousId is required"),
        ({"anonymousId": "anon", "previousId": "old"}, "userId", "userId is required for alias"),
    ],
)
def test_alias_needs_previous_id_and_user_id(fields: dict[str, Any], field: str, reason: str) -> None:
    rejection = rejected({"type": "alias", **fields})
    assert (rejection.field, rejection.reason) == (field, reason)


@pytest.mark.parametrize("field", ["properties", "traits", "context", "integrations"])
@pytest.mark.parametrize(("value", "shown"), [("x", "string"), ([], "array"), (1, "number"), (True, "boolean")])
def test_object_fields_must_be_objects(field: str, value: Any, shown: str) -> None:
    rejection = rejected(track(**{field: value}))
    assert (rejection.field, rejection.reason) == (field, f"{field} must be an object, got {shown}")


@pytest.mark.parametrize("field", ["properties", "traits", "context", "integrations"])
def test_null_object_fields_count_as_empty(field: str) -> None:
    message = accepted(track(**{field: None}))
    assert message.properties == message.traits == message.context == {}


# --------------------------------------------------------------------------
# normalize: page/screen naming and group membership
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "fields", "activity"),
    [
        ("page", {"name": "Home"}, "Viewed Home Page"),
        ("page", {"name": "Home", "properties": {"name": "Other"}}, "Viewed Home Page"),
        ("page", {"properties": {"name": "Pricing"}}, "Viewed Pricing Page"),
        ("page", {"name": None, "properties": {"name": "Pricing"}}, "Viewed Pricing Page"),
        ("page", {"name": "  ", "properties": {"name": "Pricing"}}, "Viewed Pricing Page"),
        ("page", {"name": " Docs "}, "Viewed Docs Page"),
        ("page", {}, "Viewed Page"),
        ("page", {"name": None}, "Viewed Page"),
        ("page", {"name": ""}, "Viewed Page"),
        ("page", {"properties": {"name": 3}}, "Viewed Page"),
        ("page", {"category": "Docs"}, "Viewed Docs Page"),
        # Segment's convention: page(category, name) is "Viewed <category> <name> Page".
        ("page", {"category": "Docs", "name": "Home"}, "Viewed Docs Home Page"),
        ("page", {"properties": {"category": "Docs", "name": "Home"}}, "Viewed Docs Home Page"),
        ("page", {"category": " ", "name": "Home"}, "Viewed Home Page"),
        ("screen", {"category": "App", "name": "Feed"}, "Viewed Feed Screen"),
        ("page", {"category": None, "name": "Home"}, "Viewed Home Page"),
        ("screen", {"name": "Settings"}, "Viewed Settings Screen"),
        ("screen", {"properties": {"name": "Feed"}}, "Viewed Feed Screen"),
        ("screen", {}, "Viewed Screen"),
        ("screen", {"name": None}, "Viewed Screen"),
    ],
)
def test_page_and_screen_activity_names(kind: str, fields: dict[str, Any], activity: str) -> None:
    assert accepted({"type": kind, "userId": "u", **fields}).activity == activity
    assert accepted({"userId": "u", **fields}, kind=kind).activity == activity


@pytest.mark.parametrize("kind", ["page", "screen"])
@pytest.mark.parametrize("field", ["name", "category"])
def test_page_and_screen_name_and_category_must_be_strings(kind: str, field: str) -> None:
    rejection = rejected({"type": kind, "userId": "u", field: 12})
    assert (rejection.field, rejection.reason) == (field, f"{field} must be a string or null, got number")


@pytest.mark.parametrize("kind", ["track", "page", "screen"])
@pytest.mark.parametrize(
    ("group_id", "expected"), [("acme", "acme"), (42, "42"), ("", None), (None, None), (True, None), ({}, None)]
)
def test_context_group_id_is_exposed_for_activities(kind: str, group_id: Any, expected: str | None) -> None:
    message = accepted({"type": kind, "event": "e", "userId": "u", "context": {"groupId": group_id}})
    assert message.group_id == expected


def test_context_group_id_from_the_batch_envelope_applies() -> None:
    body = batch_body([track(), track(context={"groupId": "own"})], context={"groupId": "envelope"})
    assert [accepted(item).group_id for item in parse_request(body, "batch").messages] == ["envelope", "own"]


def test_identify_ignores_context_group_id() -> None:
    assert accepted({"type": "identify", "userId": "u", "context": {"groupId": "g"}}).group_id is None


# --------------------------------------------------------------------------
# normalize: time and clock skew
# --------------------------------------------------------------------------


def test_clock_skew_worked_example() -> None:
    # The client clock is ~2h slow: it sent at 10:00:05 (its time) an event it
    # stamped 10:00:00; we received it at 12:00:05, so it happened at 12:00:00.
    message = accepted(track(timestamp="2024-01-01T10:00:00Z", sentAt="2024-01-01T10:00:05Z"))
    assert message.timestamp == datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert message.original_timestamp == datetime(2024, 1, 1, 10, 0, 0, tzinfo=UTC)
    assert message.sent_at == datetime(2024, 1, 1, 10, 0, 5, tzinfo=UTC)
    assert message.received_at == RECEIVED


def test_batch_sent_at_is_used_when_the_message_has_none() -> None:
    message = accepted(track(timestamp="2024-01-01T10:00:00Z"), batch_sent_at="2024-01-01T10:00:05Z")
    assert message.timestamp == datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert message.sent_at == datetime(2024, 1, 1, 10, 0, 5, tzinfo=UTC)


def test_message_sent_at_wins_over_the_batch_one() -> None:
    raw = track(timestamp="2024-01-01T10:00:00Z", sentAt="2024-01-01T10:00:01Z")
    message = accepted(raw, batch_sent_at="2024-01-01T10:00:05Z")
    assert message.timestamp == datetime(2024, 1, 1, 12, 0, 4, tzinfo=UTC)


def test_skew_correction_across_offsets() -> None:
    raw = track(timestamp="2024-01-01T11:00:00+01:00", sentAt="2024-01-01T05:00:05-05:00")
    assert accepted(raw).timestamp == datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_original_timestamp_is_used_when_timestamp_is_absent() -> None:
    raw = track(originalTimestamp="2024-01-01T10:00:00Z", sentAt="2024-01-01T10:00:05Z")
    message = accepted(raw)
    assert message.timestamp == datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert message.original_timestamp == datetime(2024, 1, 1, 10, 0, 0, tzinfo=UTC)


def test_timestamp_wins_over_original_timestamp() -> None:
    raw = track(timestamp="2024-01-01T10:00:00Z", originalTimestamp="2023-01-01T00:00:00Z")
    assert accepted(raw).original_timestamp == datetime(2024, 1, 1, 10, 0, 0, tzinfo=UTC)


def test_no_client_timestamp_means_received_at() -> None:
    message = accepted(track(sentAt="2024-01-01T10:00:05Z"))
    assert (message.timestamp, message.original_timestamp) == (RECEIVED, None)
    assert message.sent_at == datetime(2024, 1, 1, 10, 0, 5, tzinfo=UTC)


def test_timestamp_without_sent_at_is_trusted() -> None:
    message = accepted(track(timestamp="2023-06-01T08:30:00.5-04:00"))
    assert message.timestamp == datetime(2023, 6, 1, 12, 30, 0, 500000, tzinfo=UTC)
    assert message.sent_at is None


def test_a_timestamp_beyond_the_future_skew_is_stored_at_received_at() -> None:
    # Issue 19: a 2030 event made the catalog's "last seen" 2030. Beyond MAX_FUTURE_SKEW the
    # server's clock wins; the client's value stays in the payload (original_timestamp too).
    message = accepted(track(timestamp="2030-01-01T00:00:00Z"))
    assert message.timestamp == RECEIVED
    assert message.original_timestamp == datetime(2030, 1, 1, tzinfo=UTC)
    assert message.raw["timestamp"] == "2030-01-01T00:00:00Z"
    # Within the skew it is kept as sent, with or without the sentAt correction.
    near = RECEIVED + MAX_FUTURE_SKEW
    assert accepted(track(timestamp=near.isoformat())).timestamp == near
    skewed = accepted(track(timestamp="2024-01-01T10:00:10Z", sentAt="2024-01-01T10:00:00Z"))
    assert skewed.timestamp == RECEIVED + timedelta(seconds=10)
    # After the correction, still far ahead: clamped as well.
    ahead = accepted(track(timestamp="2024-01-01T12:00:00Z", sentAt="2024-01-01T10:00:00Z"))
    assert ahead.timestamp == RECEIVED


def test_received_at_is_reported_in_utc() -> None:
    paris_time = datetime(2024, 1, 1, 13, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    message = normalize(track(), kind="batch", received_at=paris_time, batch_sent_at=None)
    assert isinstance(message, Message)
    assert message.received_at == RECEIVED
    assert message.received_at.utcoffset() == timedelta(0)
    assert message.timestamp.tzinfo is UTC


def test_naive_received_at_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        normalize(track(), kind="batch", received_at=datetime(2024, 1, 1), batch_sent_at=None)


@pytest.mark.parametrize("field", ["timestamp", "sentAt", "originalTimestamp"])
@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("yesterday", "not an ISO-8601 date: 'yesterday'"),
        (1704103200, "not an ISO-8601 date string (got number)"),
        (True, "not an ISO-8601 date string (got boolean)"),
        ({"at": 1}, "not an ISO-8601 date string (got object)"),
        ("2024-02-30T00:00:00Z", "not a valid date: '2024-02-30T00:00:00Z' (day is out of range for month)"),
    ],
)
def test_invalid_times_are_rejected_with_a_clear_reason(field: str, value: Any, detail: str) -> None:
    rejection = rejected(track(**{field: value}))
    assert (rejection.field, rejection.reason) == (field, f"{field} is {detail}")


def test_invalid_batch_sent_at_rejects_the_message() -> None:
    rejection = rejected(track(timestamp="2024-01-01T10:00:00Z"), batch_sent_at="soon")
    assert (rejection.field, rejection.reason) == ("sentAt", "batch sentAt is not an ISO-8601 date: 'soon'")


def test_skew_correction_out_of_range_is_a_rejection() -> None:
    # Both times are acceptable, but the corrected one lands in 2254.
    rejection = rejected(track(timestamp="2199-12-31T00:00:00Z", sentAt="1970-01-01T00:00:00Z"))
    assert rejection.field == "timestamp"
    assert rejection.reason == "timestamp is out of range after clock-skew correction"
    before_1970 = rejected(track(timestamp="1970-01-01T00:00:00Z", sentAt="2199-12-31T00:00:00Z"))
    assert before_1970.reason == "timestamp is out of range after clock-skew correction"


@pytest.mark.parametrize("field", ["timestamp", "sentAt", "originalTimestamp"])
@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "1969-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
        "1970-01-01T00:30:00+01:00",
    ],
)
def test_times_outside_1970_to_2199_are_rejected(field: str, value: str) -> None:
    rejection = rejected(track(**{field: value}))
    assert rejection.field == field
    assert rejection.reason == f"{field} is out of range: {value!r} (years 1970 to 2199 UTC are accepted)"


@pytest.mark.parametrize("value", ["1970-01-01T00:00:00Z", "2199-12-31T23:59:59.999Z", "1970-01-01T01:00:00+01:00"])
def test_times_at_the_edges_of_the_range_are_accepted(value: str) -> None:
    assert MIN_TIMESTAMP <= accepted(track(timestamp=value)).timestamp < MAX_TIMESTAMP


def test_batch_sent_at_out_of_range_rejects_the_message() -> None:
    rejection = rejected(track(timestamp="2024-01-01T10:00:00Z"), batch_sent_at="0001-01-01T00:00:00Z")
    assert rejection.field == "sentAt"
    assert rejection.reason.startswith("batch sentAt is out of range: '0001-01-01T00:00:00Z'")


# --------------------------------------------------------------------------
# parse_timestamp
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T10:00:00Z", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("2024-01-01T10:00:00z", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("2024-01-01t10:00:00+00:00", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("2024-01-01T10:00:00-00:00", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("2024-01-01T12:00:00+02:00", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("2024-01-01T12:00:00+0200", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("2024-01-01T12:00:00+02", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("2024-01-01T04:30:00-05:30", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("2024-01-01T00:30:00+01:00", datetime(2023, 12, 31, 23, 30, tzinfo=UTC)),
        ("2024-01-01T10:00:00.5Z", datetime(2024, 1, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2024-01-01T10:00:00,25Z", datetime(2024, 1, 1, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2024-01-01T10:00:00.123Z", datetime(2024, 1, 1, 10, 0, 0, 123000, tzinfo=UTC)),
        ("2024-01-01T10:00:00.123456Z", datetime(2024, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-01-01T10:00:00.123456789Z", datetime(2024, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-01-01T10:00:00.999999999+01:00", datetime(2024, 1, 1, 9, 0, 0, 999999, tzinfo=UTC)),
        ("2024-01-01T10:00Z", datetime(2024, 1, 1, 10, tzinfo=UTC)),
        ("2024-01-01 10:00:00", datetime(2024, 1, 1, 10, tzinfo=UTC)),  # naive means UTC
        ("2024-01-01T10:00:00.5", datetime(2024, 1, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2024-01-01", datetime(2024, 1, 1, tzinfo=UTC)),  # date only: midnight UTC
        ("2024-02-29T23:59:59.999Z", datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_accepts_iso_8601(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "not an ISO-8601 date: 'yesterday'"),
        ("", "not an ISO-8601 date: ''"),
        (" 2024-01-01T10:00:00Z", "not an ISO-8601 date"),
        ("2024-01-01T10:00:00Z ", "not an ISO-8601 date"),
        ("2024-01-01T10:00:00.1234567890Z", "not an ISO-8601 date"),  # more than 9 fraction digits
        ("2024-01-01T10", "not an ISO-8601 date"),
        ("2024-01-01x10:00:00", "not an ISO-8601 date"),
        ("20240101T100000Z", "not an ISO-8601 date"),
        ("2024-W01-1", "not an ISO-8601 date"),
        ("2024-01-01T10:00:00+02:00:30", "not an ISO-8601 date"),
        ("2024-01-01T10:00:00+24:00", "not an ISO-8601 date"),
        ("2024-01-01T10:00:00 UTC", "not an ISO-8601 date"),
        ("٢٠٢٤-01-01", "not an ISO-8601 date"),  # non-ASCII digits
        ("1704103200", "not an ISO-8601 date"),
        ("2024-13-01", "not a valid date: '2024-13-01' (month must be in 1..12)"),
        ("2024-01-01T24:00:00Z", "not a valid date"),
        ("2024-01-01T23:59:60Z", "not a valid date"),
        ("0000-01-01", "not a valid date"),
        ("0001-01-01T00:00:00+01:00", "out of range: '0001-01-01T00:00:00+01:00'"),
        ("9999-12-31T23:00:00-05:00", "out of range"),
        (None, "not an ISO-8601 date string (got null)"),
        (1704103200, "not an ISO-8601 date string (got number)"),
        (1704103200.5, "not an ISO-8601 date string (got number)"),
        (["2024-01-01"], "not an ISO-8601 date string (got array)"),
        (b"2024-01-01", "not an ISO-8601 date string (got bytes)"),
    ],
)
def test_parse_timestamp_rejects_everything_else(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_timestamp(value)
    assert str(info.value).startswith(message)


def test_parse_timestamp_shortens_long_garbage_in_its_message() -> None:
    with pytest.raises(ValueError) as info:
        parse_timestamp("x" * 10_000)
    assert len(str(info.value)) < 100


# --------------------------------------------------------------------------
# Property-based tests
# --------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
# Finite floats only: these also feed request bodies, and JSON has no Infinity.
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
ids = st.one_of(st.text(max_size=120), st.just(""), st.integers(), finite_floats, st.none())
zones = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))])
times = st.one_of(
    st.datetimes(timezones=zones).map(lambda moment: moment.isoformat()),
    st.datetimes().map(lambda moment: moment.isoformat(sep=" ")),
    st.dates().map(str),
    st.text(max_size=30),
    json_values,
)
objects = st.none() | st.dictionaries(st.text(max_size=8), json_values, max_size=4) | json_values
message_fields = {
    "type": st.sampled_from(sorted(MESSAGE_TYPES)) | json_values,
    "messageId": ids | json_values,
    "userId": ids | json_values,
    "anonymousId": ids,
    "groupId": ids,
    "previousId": ids,
    "event": st.text() | json_values,
    "name": st.none() | st.text() | json_values,
    "category": st.none() | st.text(),
    "properties": objects,
    "traits": objects,
    "context": st.none() | st.fixed_dictionaries({}, optional={"groupId": ids | json_values}) | json_values,
    "integrations": objects,
    "timestamp": times,
    "sentAt": times,
    "originalTimestamp": times,
}
messages = st.fixed_dictionaries({}, optional=message_fields).flatmap(
    lambda fields: st.dictionaries(st.text(max_size=10), json_values, max_size=3).map(lambda extra: {**extra, **fields})
)
kinds = st.sampled_from(["batch", *sorted(MESSAGE_TYPES)])
batch_sent_ats = st.none() | times.filter(lambda value: isinstance(value, str))


@PROPERTY_SETTINGS
@given(raw=messages, kind=kinds, batch_sent_at=batch_sent_ats)
def test_normalize_always_gives_a_message_or_a_rejection(
    raw: dict[str, Any], kind: str, batch_sent_at: str | None
) -> None:
    before = copy.deepcopy(raw)
    result = normalize(raw, kind=kind, received_at=RECEIVED, batch_sent_at=batch_sent_at)
    assert raw == before  # never mutates its input
    if isinstance(result, Rejection):
        assert result.reason
        assert result.message_id is None or 1 <= len(result.message_id) <= MAX_MESSAGE_ID_LEN
        assert result.message_id is None or "\x00" not in result.message_id
        return
    assert isinstance(result, Message)
    assert any(value and not value.isspace() for value in (result.user_id, result.anonymous_id))
    assert 1 <= len(result.message_id) <= MAX_MESSAGE_ID_LEN
    columns = (result.user_id, result.anonymous_id, result.group_id, result.previous_id, result.activity)
    assert all(value is None or (len(value) <= MAX_ID_LEN and "\x00" not in value) for value in columns)
    assert "\x00" not in result.message_id
    assert result.timestamp.tzinfo is UTC
    assert MIN_TIMESTAMP <= result.timestamp < MAX_TIMESTAMP
    for zone in ("America/New_York", "Pacific/Kiritimati", "Etc/GMT+12"):
        result.timestamp.astimezone(ZoneInfo(zone)).date()  # the tenant day never overflows
    assert result.type == (raw["type"] if kind == "batch" else kind)
    assert result.raw in (raw, {**raw, "messageId": result.message_id})
    for moment in (result.sent_at, result.original_timestamp):
        assert moment is None or moment.tzinfo is UTC
    assert isinstance(result.properties, dict)
    assert isinstance(result.traits, dict)
    assert isinstance(result.context, dict)
    assert (result.activity is not None) == (result.type in {"track", "page", "screen"})


@PROPERTY_SETTINGS
@given(
    items=st.lists(messages | json_values, max_size=6),
    kind=kinds,
    batch_sent_at=batch_sent_ats | st.sampled_from(["soon", "0001-01-01T00:00:00Z"]),
)
def test_normalize_all_agrees_with_normalize_item_by_item(
    items: list[Any], kind: str, batch_sent_at: str | None
) -> None:
    # The API normalises a batch at once; the shared checks must not change any outcome.
    items = [{**item, "messageId": f"m{index}"} if isinstance(item, dict) else item for index, item in enumerate(items)]
    before = copy.deepcopy(items)
    together = normalize_all(items, kind=kind, received_at=RECEIVED, batch_sent_at=batch_sent_at)
    assert items == before
    one_by_one = [normalize(item, kind=kind, received_at=RECEIVED, batch_sent_at=batch_sent_at) for item in items]
    assert together == one_by_one


def test_normalize_all_checks_its_arguments_once_for_all() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        normalize_all([], kind="batches", received_at=RECEIVED, batch_sent_at=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        normalize_all([track()], kind="batch", received_at=datetime(2024, 1, 1), batch_sent_at=None)
    first, second = normalize_all(
        [track(timestamp="2024-01-01T10:00:00Z"), track(sentAt="2024-01-01T12:00:04Z")],
        kind="batch",
        received_at=RECEIVED,
        batch_sent_at="soon",
    )
    assert (first.field, first.reason) == ("sentAt", "batch sentAt is not an ISO-8601 date: 'soon'")
    assert isinstance(second, Message)  # its own sentAt wins over the envelope's


@PROPERTY_SETTINGS
@given(raw=json_values, kind=kinds)
def test_normalize_rejects_any_non_object(raw: Any, kind: str) -> None:
    if isinstance(raw, dict):
        return
    result = normalize(raw, kind=kind, received_at=RECEIVED, batch_sent_at=None)
    assert isinstance(result, Rejection)
    assert result.reason.startswith("message must be a JSON object")


@PROPERTY_SETTINGS
@given(
    envelope=st.dictionaries(st.text(max_size=8).filter(lambda key: key != "batch"), json_values, max_size=4),
    items=st.lists(json_values, max_size=8),
    indent=st.none() | st.integers(min_value=0, max_value=3),
    separators=st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", " :\t")]),
    ensure_ascii=st.booleans(),
)
def test_batch_parsing_agrees_with_json_loads(
    envelope: dict[str, Any], items: list[Any], indent: int | None, separators: tuple[str, str], ensure_ascii: bool
) -> None:
    document = {**envelope, "batch": items}
    for key in ("context", "integrations", "sentAt", "writeKey"):
        document.pop(key, None)  # envelope fields that change the messages are tested elsewhere
    body = json.dumps(document, indent=indent, separators=separators, ensure_ascii=ensure_ascii).encode()
    expected = [
        {key: value for key, value in item.items() if key != "writeKey"} if isinstance(item, dict) else item
        for item in json.loads(body)["batch"]
    ]
    parsed = parse_request(body, "batch")
    for got, want in zip(parsed.messages, expected, strict=True):
        if isinstance(want, dict) and holds_nul(want):
            assert isinstance(got, Rejection)  # PostgreSQL could not store it
        else:
            assert got == want


# Pieces of JSON text, valid and not, where msgspec and json's scanner may disagree.
json_tokens = st.sampled_from(
    ["{", "}", "[", "]", ",", ":", '"a"', '"b"', "1", "-0", "0.1", "1E2", "1e400", "-1e-400", "01", "1.", ".5",
     "true", "null", "NaN", "-Infinity", " ", "\t", "\n", "\r", "\x0c", "\xa0", '"\\u0000"', '"\\ud800"',
     '"\\ud83d\\ude00"', '"\\/"', '"\\x"', '"\x1f"', '"é"', "\ufeff", str(2**63 - 1), str(2**63), str(2**64),
     str(-(2**63)), str(-(2**63) - 1), "12345678901234567890.5", '"batch"', '"context"', '"writeKey"', '"sentAt"',
     '"b\\u0061tch"', "1" * 4301, "0." + "1" * 400, "1e-400", "1.7976931348623157e308", "1.8e308"]
)  # fmt: skip


def both_decoders(body: bytes) -> tuple[Any, Any]:
    """(msgspec's parse, json's scanner's) of a batch body, each a repr or the error; Nones where msgspec declines."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, None  # parse_request refuses it before either decoder

    def outcome(decode: Any, argument: Any) -> str | None:
        try:
            parsed = decode(argument)
        except WireError as error:
            return f"{error.code}: {error.message}"
        return None if parsed is None else repr(parsed)  # repr: 1 and 1.0, 0.0 and -0.0 differ

    fast = outcome(envelope._decode_batch, body)
    if fast is None:
        return None, None
    return fast, outcome(envelope._parse_batch, text)


envelope_members = st.dictionaries(
    st.sampled_from(["context", "integrations", "sentAt", "writeKey", "messageId", "sequence"]) | st.text(max_size=8),
    json_values | objects | times,
    max_size=3,
)


@PROPERTY_SETTINGS
@given(
    document=envelope_members,
    items=st.lists(json_values | messages, max_size=8),
    big=st.lists(st.integers(min_value=2**62) | st.integers(max_value=-(2**62)), max_size=2),
    separators=st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", " :\t")]),
    ensure_ascii=st.booleans(),
    pad=st.sampled_from([0, 0, MAX_MESSAGE_BYTES]),  # over 32 KB: items kept as msgspec.Raw, sized one by one
)
def test_msgspec_decodes_batches_as_the_span_keeping_scanner_does(
    document: dict[str, Any],
    items: list[Any],
    big: list[int],
    separators: tuple[str, str],
    ensure_ascii: bool,
    pad: int,
) -> None:
    if pad:
        items = [*items, track(properties={"pad": "x" * (pad - 100)}), track(properties={"pad": "y" * pad})]
    body = json.dumps({**document, "batch": [*items, *big]}, separators=separators, ensure_ascii=ensure_ascii).encode()
    fast, exact = both_decoders(body)
    assert fast == exact


@PROPERTY_SETTINGS
@given(tokens=st.lists(json_tokens, max_size=30), pad=st.booleans())
def test_msgspec_decodes_batches_as_the_span_keeping_scanner_does_even_when_invalid(
    tokens: list[str], pad: bool
) -> None:
    padding = ',{"p":"' + "x" * MAX_MESSAGE_BYTES + '"}' if pad else ""
    for text in (
        '{"batch":[' + "".join(tokens) + padding + "]}",
        '{"batch":[' + "".join(tokens) + "]," + "".join(tokens) + "}",
        "".join(tokens),
    ):
        fast, exact = both_decoders(text.encode())
        assert fast == exact


def test_msgspec_takes_the_usual_bodies_and_declines_where_it_could_disagree() -> None:
    usual = batch_body([track(messageId=f"m{index}", properties={"size": index, "price": 9.99}) for index in range(50)])
    big = batch_body([track(messageId=f"m{index}", properties={"note": "n" * 500}) for index in range(100)])
    taken = {
        "usual": usual,
        "over 32 KB": big,
        "over 32 KB, one oversize item": batch_body([track(event="E" * MAX_MESSAGE_BYTES), track()]),
        "a NUL escape": batch_body([track(event="a\x00b"), track()]),
        "other envelope members (analytics-go: messageId, context)": batch_body([track()], messageId="b1", context={}),
        "integers beyond 64 bits": batch_body([track(properties={"n": 2**64, "m": -(2**63) - 1})]),
        "escapes": json.dumps({"batch": [track(event="Café\n\\ud800")]}).encode(),  # \u00e9, \n, \\ud800
        "byte-order mark": b"\xef\xbb\xbf" + usual,
        "nested 500 deep": b'{"batch":[{"properties":' + b"[" * 500 + b"]" * 500 + b"}]}",
    }
    for reason, body in taken.items():
        assert envelope._decode_batch(body) is not None, reason
        fast, exact = both_decoders(body)
        assert fast == exact, reason
    declined = {
        "lone surrogate": b'{"batch":[{"type":"track","event":"\\ud800"}]}',
        "lone surrogate in the context": b'{"batch":[],"context":{"a":"\\udc00"}}',
        "NaN": b'{"batch":[{"type":"track","properties":{"n":NaN}}]}',
        "1e400 in an item over 32 KB": batch_body([track(properties={"p": "x" * MAX_MESSAGE_BYTES})])[:-2]
        + b',{"n":1e400}]}',
        "1e400 in another member": b'{"batch":[],"other":1e400}',
        "an int of 4,301 digits": b'{"batch":[' + b"1" * 4301 + b"]}",
        "nested 5,000 deep": b'{"batch":[' + b"[" * 5000 + b"]" * 5000 + b"]}",
        "no batch": b'{"context":{}}',
        "batch not an array": b'{"batch":{}}',
        "not an object": b"[]",
        "invalid JSON": b'{"batch":[',
    }
    for reason, body in declined.items():
        assert envelope._decode_batch(body) is None, reason
    for too_many in (batch_body([{}] * (MAX_BATCH_MESSAGES + 1)), batch_body([{"p": "x" * 20}] * 2600)):
        assert envelope._decode_batch(too_many) is not None
        fast, exact = both_decoders(too_many)
        assert fast == exact


def test_msgspec_and_the_scanner_agree_on_nesting_but_near_the_recursion_limit() -> None:
    # Both refuse nesting at Python's recursion limit, counted from the caller's stack: json's scanner
    # runs a few frames deeper, so msgspec accepts up to 3 levels more there (~955 from here). Elsewhere
    # they agree, and parse_request answers as before.
    def answers(depth: int, fast: bool) -> str:
        body = b'{"batch":[{"p":' + b"[" * depth + b"]" * depth + b"}]}"
        decode = envelope._decode_batch if fast else (lambda body: None)
        original = envelope._decode_batch
        envelope._decode_batch = decode
        try:
            return f"{len(parse_request(body, 'batch').messages)} message"
        except WireError as error:
            return error.message
        finally:
            envelope._decode_batch = original

    # Loops, not comprehensions: each answer must come from the same stack depth.
    old_limit = 800
    while answers(old_limit, fast=False) == "1 message":
        old_limit += 1
    assert answers(old_limit, fast=False) == "body is nested too deeply"
    differing = []
    for depth in range(old_limit - 40, old_limit + 40):
        if answers(depth, fast=True) != answers(depth, fast=False):
            differing.append(depth)
    assert all(old_limit <= depth <= old_limit + 4 for depth in differing), (old_limit, differing)


@PROPERTY_SETTINGS
@given(body=st.binary(max_size=200) | json_values.map(lambda value: json.dumps(value).encode()), kind=kinds)
def test_parse_request_only_ever_raises_wire_errors(body: bytes, kind: str) -> None:
    try:
        parsed = parse_request(body, kind)
    except WireError as error:
        assert error.status == 400
        assert error.code in {"invalid_json", "invalid_body", "message_too_large"}
        return
    for item in parsed.messages:
        result = normalize(item, kind=kind, received_at=RECEIVED, batch_sent_at=parsed.sent_at)
        assert isinstance(result, Message | Rejection)


@PROPERTY_SETTINGS
@given(
    items=st.lists(messages | json_values, max_size=6),
    context=objects,
    sent_at=st.none() | st.sampled_from(["2024-01-01T10:00:05Z", "2024-01-01T10:00:05.123456789+05:30"]),
)
def test_any_batch_yields_one_result_per_item(items: list[Any], context: Any, sent_at: str | None) -> None:
    try:
        parsed = parse_request(batch_body(items, context=context, sentAt=sent_at), "batch")
    except WireError as error:
        assert error.code == "invalid_body"
        if holds_nul(context):
            assert error.message.endswith("contains a NUL character")
        else:
            assert error.message == "batch context must be an object"
        return
    results = [
        normalize(item, kind="batch", received_at=RECEIVED, batch_sent_at=parsed.sent_at) for item in parsed.messages
    ]
    assert len(results) == len(items)
    assert all(isinstance(result, Message | Rejection) for result in results)
    for result in results:  # whatever came in, what is stored can be stored
        assert not holds_nul(result.raw)
        if isinstance(result, Rejection):
            assert not holds_nul([result.message_id, result.field])
        else:
            assert not holds_nul([result.user_id, result.anonymous_id, result.group_id, result.activity])
    for item, result in zip(items, results, strict=True):
        if isinstance(result, Message) and isinstance(context, dict) and context:
            assert (
                result.context.items()
                >= {key: value for key, value in context.items() if key not in (item.get("context") or {})}.items()
            )


@PROPERTY_SETTINGS
@given(key=st.text(min_size=1).filter(lambda key: ":" not in key), password=st.text())
def test_basic_auth_round_trips(key: str, password: str) -> None:
    header = "Basic " + base64.b64encode(f"{key}:{password}".encode()).decode()
    assert basic_auth_key(header) == key


@PROPERTY_SETTINGS
@given(moment=st.datetimes(timezones=st.just(UTC)), offset_minutes=st.integers(min_value=-1439, max_value=1439))
def test_parse_timestamp_round_trips_isoformat(moment: datetime, offset_minutes: int) -> None:
    zone = timezone(timedelta(minutes=offset_minutes))
    try:
        local = moment.astimezone(zone)
    except OverflowError:
        return  # not representable in that zone
    assert parse_timestamp(local.isoformat()) == moment
