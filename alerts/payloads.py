"""What a firing says: the webhook's JSON body and signature, the Slack message and the email.

The webhook body (documented in docs/alerts.md and as the OpenAPI component
`AlertWebhookEvent`):

    {"id": "<idempotency key>", "type": "alert.fired", "created_at": "...",
     "workspace": {"slug", "name"}, "rule": {"id", "name", "trigger", "description"},
     "subject": {"type": "account"|"user", "id", "name", "url"},
     "day": "YYYY-MM-DD", "reason": "...", "details": {...}, "replay": false}

Signature: `Engagement-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from django.urls import reverse

from core.site import site_url

from .models import AlertFiring, Subject

SIGNATURE_HEADER = "Engagement-Signature"
EVENT_ID_HEADER = "Engagement-Event-Id"


def subject_url(firing: AlertFiring) -> str:
    tenant = firing.tenant
    if firing.subject == Subject.ACCOUNTS:
        path = reverse("scoring:account_detail", args=[tenant.slug, firing.subject_public_id])
    else:
        path = reverse("scoring:user_detail", args=[tenant.slug, firing.subject_public_id])
    return site_url() + path


def event(firing: AlertFiring, *, replay: bool = False) -> dict:
    rule, tenant = firing.rule, firing.tenant
    return {
        "id": firing.key,
        "type": "alert.fired",
        "created_at": firing.created_at.isoformat(),
        "workspace": {"slug": tenant.slug, "name": tenant.name},
        "rule": {
            "id": str(rule.public_id),
            "name": rule.name,
            "trigger": firing.trigger,
            "description": rule.describe(),
        },
        "subject": {
            "type": "account" if firing.subject == Subject.ACCOUNTS else "user",
            "id": str(firing.subject_public_id),
            "name": firing.subject_name,
            "url": subject_url(firing),
        },
        "day": firing.day.isoformat(),
        "reason": firing.reason,
        "details": firing.details,
        "replay": replay,
    }


def body_of(data: dict) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> tuple[int, str]:
    """(timestamp, header value) for `body`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return timestamp, f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """What a receiver does (used by our dev receiver and the tests)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp)[1]
    return hmac.compare_digest(expected, header)


def slack_message(firing: AlertFiring) -> dict:
    kind = "Account" if firing.subject == Subject.ACCOUNTS else "User"
    url = subject_url(firing)
    text = (
        f"*{kind} {firing.subject_name}*: {firing.reason} (rule “{firing.rule.name}”, "
        f"{firing.day.isoformat()}). <{url}|Open in {firing.tenant.product_name} engagement>"
    )
    return {"text": text, "unfurl_links": False}


def email_message(firing: AlertFiring) -> tuple[str, str]:
    kind = "Account" if firing.subject == Subject.ACCOUNTS else "User"
    subject = f"[{firing.tenant.name}] {kind} {firing.subject_name}: {firing.reason}"[:200]
    body = (
        f"{kind}: {firing.subject_name}\n"
        f"What happened: {firing.reason}\n"
        f"Day: {firing.day.isoformat()}\n"
        f"Rule: {firing.rule.name} ({firing.rule.describe()})\n\n"
        f"Open it: {subject_url(firing)}\n\n"
        f"You get this because the alert rule “{firing.rule.name}” of {firing.tenant.name} emails you.\n"
    )
    return subject, body
