"""The Segment tracking endpoints in the OpenAPI schema (/api/schema/).

They are plain Django views, so drf-spectacular cannot see them: this
postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]) adds them
to the generated schema. Limits come from `events.wire` and descriptions from
`events.reference`, so the schema, the pages and the code agree.
"""

from typing import Any

from core.api_errors import ERROR_COMPONENT, ERROR_SCHEMA

from . import wire
from .reference import ENDPOINTS

TAG = "Tracking API (Segment)"
SECURITY_SCHEME = "writeKey"

# A storable id: at most MAX_ID_LEN characters, no NUL. The server also takes an
# integer for any id ("42"); the schema names only strings.
_NO_NUL = "^[^\\u0000]*$"
# ...and not blank: at least one character that is not whitespace (Python's \s,
# as the server's str.isspace()).
_NONBLANK = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
_ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": wire.MAX_ID_LEN,
    "pattern": _NONBLANK,
    "description": "A non-blank string without NUL; an integer is accepted too.",
}
_TIME = {
    "type": "string",
    "format": "date-time",
    # The server takes years 1970-2199 (UTC); the pattern keeps a margin for UTC offsets.
    "pattern": "^(19[89][0-9]|20[0-9][0-9]|21[0-8][0-9]|219[0-8])-",
}
_OBJECT = {"type": "object", "additionalProperties": True, "nullable": True}
# userId and anonymousId may each be absent, null or blank (all mean "not given"),
# but one of them must be given: expressed with anyOf on the message.
_OPTIONAL_ID = {
    "type": "string",
    "maxLength": wire.MAX_ID_LEN,
    "pattern": _NO_NUL,
    "nullable": True,
    "description": "Blank or null means not given; an integer is accepted too.",
}
_USER_OR_ANONYMOUS = [
    {"required": ["userId"], "properties": {"userId": _ID}},
    {"required": ["anonymousId"], "properties": {"anonymousId": _ID}},
]

_COMMON = {
    "userId": _OPTIONAL_ID,
    "anonymousId": _OPTIONAL_ID,
    "messageId": {
        "type": "string",
        "maxLength": wire.MAX_MESSAGE_ID_LEN,
        "description": "Stored once per workspace (dedupe); assigned when missing.",
    },
    "timestamp": {
        **_TIME,
        "description": "When it happened; corrected for clock skew with sentAt. "
        f"Years {wire.MIN_TIMESTAMP.year}-{wire.MAX_TIMESTAMP.year - 1} (UTC) only.",
    },
    "originalTimestamp": _TIME,
    "sentAt": _TIME,
    "context": {**_OBJECT, "description": "context.groupId attaches the end user to a customer account."},
    "integrations": _OBJECT,
    "writeKey": {"type": "string", "description": "The write key, when not sent with HTTP Basic."},
}

# Page and screen: stored as the activity "Viewed <category> <name> Page" / "Viewed <name> Screen".
_VIEW = {
    "name": {"type": "string", "nullable": True},
    "category": {"type": "string", "nullable": True},
    "properties": _OBJECT,
}
# Per message type: (its own properties, required ones).
_TYPES: dict[str, tuple[dict[str, Any], list[str]]] = {
    "track": ({"event": {**_ID, "description": "The activity's name; not blank."}, "properties": _OBJECT}, ["event"]),
    "identify": ({"traits": _OBJECT}, []),
    "group": ({"groupId": _ID, "traits": _OBJECT}, ["groupId"]),
    "page": (_VIEW, []),
    "screen": (_VIEW, []),
    "alias": ({"previousId": _ID, "userId": _ID}, ["previousId", "userId"]),
}

# The one error body of both APIs (core.api_errors), one component for both.
_ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
_RESPONSES = {
    "200": ("Accepted and committed (in a batch, invalid messages are recorded for the debugger).", False),
    "400": ("Invalid body (JSON, size, encoding) or, for a single call, an invalid message.", False),
    "401": ("No write key, or an unknown, revoked or read key.", False),
    "429": ("Too many requests for this write key.", True),
    "503": ("The event store is unavailable; nothing was stored.", True),
}


def _name(kind: str) -> str:
    return f"Segment{kind.capitalize()}"


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "SegmentSuccess": {
            "type": "object",
            "properties": {
                "success": {"type": "boolean", "enum": [True]},
                "code": {"type": "string", "enum": ["too_many_messages"], "description": "Only for a batch over "
                         f"{wire.MAX_BATCH_MESSAGES:,} messages: the first {wire.MAX_BATCH_MESSAGES:,} were "
                         "processed."},
                "message": {"type": "string"},
                "rejected": {"type": "array", "items": {"type": "string"},
                             "description": "The messageIds of the messages past the limit, not processed."},
            },
            "required": ["success"],
        },
        ERROR_COMPONENT: ERROR_SCHEMA,
    }
    for kind, (own, required) in _TYPES.items():
        schemas[_name(kind)] = {
            "type": "object",
            "properties": {"type": {"type": "string", "enum": [kind]}, **_COMMON, **own},
            **({"required": required} if required else {}),  # OpenAPI forbids an empty list
            # alias requires userId itself; the others need userId or anonymousId.
            **({} if "userId" in required else {"anyOf": _USER_OR_ANONYMOUS}),
            "description": "userId or anonymousId is required (a non-blank string).",
        }
    schemas["SegmentBatch"] = {
        "type": "object",
        "properties": {
            "batch": {
                "type": "array",
                "description": f"Up to {wire.MAX_BATCH_MESSAGES:,} messages are processed; any after them are "
                "rejected by name (the answer lists them).",
                "items": {
                    "anyOf": [{"$ref": f"#/components/schemas/{_name(kind)}"} for kind in _TYPES],
                    "description": "A message of any type; in a batch its type is required.",
                },
            },
            "context": {**_OBJECT, "description": "Merged into every message (the message's keys win)."},
            "integrations": _OBJECT,
            "sentAt": _TIME,
            "writeKey": _COMMON["writeKey"],
        },
        "required": ["batch"],
    }
    # Here the message's type is required: it is what tells the kinds apart.
    messages = [{"allOf": [{"$ref": f"#/components/schemas/{_name(kind)}"}, {"required": ["type"]}]} for kind in _TYPES]
    schemas["SegmentWebhook"] = {
        "description": "What Segment's Webhook destination sends: one message, or (batching on) an array of them. "
        "Each message's type decides what it is.",
        "oneOf": [{"anyOf": messages}, {"type": "array", "items": {"anyOf": messages}}],
    }
    schemas["SegmentSettings"] = {"type": "object", "additionalProperties": True}
    return schemas


def _responses() -> dict[str, Any]:
    responses = {}
    for status, (description, retry) in _RESPONSES.items():
        schema = {"$ref": "#/components/schemas/SegmentSuccess"} if status == "200" else _ERROR_REF
        response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
        if retry:
            response["headers"] = _RETRY_AFTER
        responses[status] = response
    return responses


def _tracking_operation(path: str, aliases: str, what: str) -> dict[str, Any]:
    kind = path.removeprefix("/v1/")
    if kind == "webhook":
        aliases = aliases.replace("<writeKey>", "{writeKey}") + " (the write key in the URL)"
    body = {"$ref": f"#/components/schemas/{_name(kind)}"}
    return {
        "post": {
            "operationId": f"tracking_{kind}",
            "summary": what,
            "description": (
                f"Also served at {aliases}; a trailing slash is accepted and nothing redirects. "
                f"At most {wire.MAX_MESSAGE_BYTES // 1024} KB per message and {wire.MAX_REQUEST_BYTES:,} bytes "
                "per request after decompression (Content-Encoding: gzip is accepted)."
            ),
            "tags": [TAG],
            # The write key goes as the Basic user name, or as writeKey in the body.
            "security": [{SECURITY_SCHEME: []}, {}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": body}, "text/plain": {"schema": body}},
            },
            "responses": _responses(),
        }
    }


def _settings_operation() -> dict[str, Any]:
    return {
        "get": {
            "operationId": "tracking_project_settings",
            "summary": "Source settings for analytics-next (its cdnURL is this server)",
            "description": "The Segment.io integration pointing at this host. Needs no auth: the key only has "
            "to be a live write key.",
            "tags": [TAG],
            "security": [{}],
            "parameters": [
                {"name": "writeKey", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {
                    "description": "The settings object.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SegmentSettings"}}},
                },
                "404": {
                    "description": "Unknown or revoked write key.",
                    "content": {"application/json": {"schema": _ERROR_REF}},
                },
            },
        }
    }


def add_tracking_api(result: dict[str, Any], generator=None, request=None, public=None, **kwargs) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: add /v1/batch, /v1/track, ... to the schema."""
    paths = result.setdefault("paths", {})
    for path, aliases, what in ENDPOINTS:
        paths[path] = _tracking_operation(path, aliases, what)
    paths["/v1/projects/{writeKey}/settings"] = _settings_operation()
    for item in paths.values():
        for operation in item.values():
            too_many = operation.get("responses", {}).get("429")
            if too_many is not None:
                too_many.setdefault("headers", _RETRY_AFTER)
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(_schemas())
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http",
        "scheme": "basic",
        "description": "The write key (wk_…) as the user name, empty password.",
    }
    result.setdefault("tags", []).append({"name": TAG, "description": "Segment-compatible event ingestion."})
    return result
