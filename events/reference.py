"""The tracking API at a glance, shown on the "Send events" page and the public API reference."""

from . import wire

ERROR_CODES = [
    (
        "200",
        "—",
        "Accepted and committed, also when some messages of a batch were invalid (see the debugger): e.g. an id "
        f"or event name over {wire.MAX_ID_LEN} characters, a NUL character (\\u0000) anywhere, or a time outside "
        f"the years {wire.MIN_TIMESTAMP.year}-{wire.MAX_TIMESTAMP.year - 1}.",
    ),
    ("400", "invalid_json", "The body is not valid JSON (or not UTF-8)."),
    ("400", "invalid_body", "The body is not a JSON object, or batch is not an array."),
    ("400", "invalid_gzip / unsupported_encoding", "Content-Encoding other than gzip, or a broken gzip stream."),
    ("400", "request_too_large", f"The body is over {wire.MAX_REQUEST_BYTES:,} bytes after decompression."),
    ("400", "message_too_large", f"A single call's message is over {wire.MAX_MESSAGE_BYTES // 1024} KB."),
    (
        "200",
        "too_many_messages",
        f"A batch of more than {wire.MAX_BATCH_MESSAGES:,} messages: the first {wire.MAX_BATCH_MESSAGES:,} are "
        "processed, the rest rejected by name (\"rejected\": their messageIds; listed on the debugger).",
    ),
    ("400", "invalid_message", "A single call (/v1/track, ...) whose message is invalid; the reason says why."),
    ("401", "unauthorized", "No write key, an unknown or revoked key, or a read key."),
    ("404", "not_found", "Any other path under /v1/, or settings asked for an unknown write key."),
    ("405", "method_not_allowed", "Any method but POST (and the CORS preflight OPTIONS)."),
    ("429", "rate_limited", "Too many requests for this write key; retry after Retry-After seconds."),
    ("500", "internal_error", "A bug on our side (it is logged); retrying is safe, a messageId is stored once."),
    ("503", "unavailable", "The event store is unreachable; nothing was stored, retry after Retry-After seconds."),
]

ENDPOINTS = [
    ("/v1/batch", "/v1/import, /v1/b", "Several messages of any type: {\"batch\": [...]}"),
    ("/v1/track", "/v1/t", "An end user did an activity: userId or anonymousId, event, properties"),
    ("/v1/identify", "/v1/i", "Who the end user is: userId, traits"),
    ("/v1/group", "/v1/g", "The customer account of the end user: groupId, traits (plan, mrr, ...)"),
    ("/v1/page", "/v1/p", "A page view; stored as the activity “Viewed <category> <name> Page”"),
    ("/v1/screen", "/v1/s", "A mobile screen view; stored as “Viewed <name> Screen”"),
    ("/v1/alias", "/v1/a", "Links previousId (e.g. an anonymous id) to userId"),
    (
        "/v1/webhook",
        "/v1/webhook/<writeKey>",
        "Segment's Webhook destination: one message, or a JSON array of them; each message's type decides",
    ),
]
