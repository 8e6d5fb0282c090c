"""What we refuse: a whole request (`WireError`) or one message (`Rejection`), and how a refused one is kept.

A rejection is stored (`RejectedMessage`) and shown on the debugger, so what it
keeps must be storable: no NUL, no lone surrogate, bounded sizes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .limits import MAX_FIELD_LEN, MAX_MESSAGE_ID_LEN

_PREVIEW_CHARS = 200
_SUMMARY_KEYS = ("messageId", "type", "event", "userId", "anonymousId")
# Integers beyond 2**53 cannot come from JavaScript clients as exact numbers,
# so a float id outside that range is not a faithful integer.
_MAX_SAFE_INTEGER = 2**53


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


# PostgreSQL refuses NUL in text and in jsonb, and JSON text can only carry one
# as this escape (raw control characters are invalid JSON).
_NUL_ESCAPE = "\\u0000"
# The escape itself in JSON text, not an escaped backslash followed by "u0000".
_NUL_IN_JSON = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


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
