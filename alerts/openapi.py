"""The alert webhook's body as an OpenAPI component (`AlertWebhookEvent`), with its headers described.

We send it; nobody calls us with it: so it is a schema component (and a 3.1-style
`webhooks` entry's description) rather than a path. docs/alerts.md shows an example.
"""

from typing import Any

from .models import Trigger

_STR = {"type": "string"}

WEBHOOK_EVENT = {
    "type": "object",
    "description": (
        "The JSON body POSTed to an alert rule's webhook endpoint. Headers: `Engagement-Event-Id` (the same as "
        "`id`), `Engagement-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\" keyed with the "
        "endpoint's secret>`. Answer 2xx within 5 seconds; 5xx, 429 and timeouts are retried with exponential "
        "backoff for about 8 hours, other 4xx are not. `id` is the idempotency key (rule, subject, day, trigger): "
        "a retry or a replay carries the same id, so a receiver can drop duplicates."
    ),
    "required": ["id", "type", "created_at", "workspace", "rule", "subject", "day", "reason", "details", "replay"],
    "properties": {
        "id": {**_STR, "example": "alert_6f1c..._accounts_42_2026-03-31_at_risk"},
        "type": {"type": "string", "enum": ["alert.fired"]},
        "created_at": {"type": "string", "format": "date-time"},
        "workspace": {"type": "object", "properties": {"slug": _STR, "name": _STR}, "required": ["slug", "name"]},
        "rule": {
            "type": "object",
            "required": ["id", "name", "trigger", "description"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "name": _STR,
                "trigger": {"type": "string", "enum": list(Trigger.values)},
                "description": _STR,
            },
        },
        "subject": {
            "type": "object",
            "required": ["type", "id", "name", "url"],
            "properties": {
                "type": {"type": "string", "enum": ["account", "user"]},
                "id": {"type": "string", "format": "uuid"},
                "name": _STR,
                "url": {"type": "string", "format": "uri"},
            },
        },
        "day": {"type": "string", "format": "date"},
        "reason": {**_STR, "example": "entered at risk: fell from medium to low in 14 days"},
        "details": {"type": "object", "additionalProperties": True},
        "replay": {"type": "boolean", "description": "True when sent again with the Replay button."},
    },
}


def add_webhook_event(result: dict[str, Any], generator=None, request=None, public=None, **kwargs) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["AlertWebhookEvent"] = WEBHOOK_EVENT
    return result
