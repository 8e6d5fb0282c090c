"""The Segment-compatible tracking endpoints: /v1/batch, /v1/track, /v1/t, ...

Plain Django views rather than DRF: the official clients expect Segment's own
response shapes (`{"success": true}`, errors as `{"code", "message"}`), and per
request overhead matters on this path. Order of work: decode and parse the
body, authenticate the write key (Basic header or `writeKey` in the body),
rate-limit, normalise every message, store in one transaction, then answer 200
— so a 2xx always means the events are committed.
"""

import logging

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from accounts.models import ApiKeyKind
from accounts.services import api_key_authenticate

from . import wire
from .services import ingest

log = logging.getLogger(__name__)

KINDS = {
    "batch": "batch",
    "import": "batch",
    "b": "batch",
    "track": "track",
    "t": "track",
    "identify": "identify",
    "i": "identify",
    "group": "group",
    "g": "group",
    "page": "page",
    "p": "page",
    "screen": "screen",
    "s": "screen",
    "alias": "alias",
    "a": "alias",
}

CORS_HEADERS = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, X-Retry-Count, Content-Encoding",
    "Access-Control-Max-Age": "86400",
}


def _cors(request, response: HttpResponse) -> HttpResponse:
    # Echo the origin (not "*") so browsers accept the Authorization header.
    response["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
    response["Vary"] = "Origin"
    for name, value in CORS_HEADERS.items():
        response[name] = value
    return response


def error(status: int, code: str, message: str, retry_after: int | None = None) -> JsonResponse:
    response = JsonResponse({"code": code, "message": message}, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def rate_limited(key_prefix: str) -> bool:
    """Fixed one-second window per write key, counted in the shared cache (Redis in production)."""
    limit = settings.INGEST_RATE_LIMIT_PER_SECOND
    if not limit:
        return False
    window = int(timezone.now().timestamp())
    cache_key = f"ingest-rate:{key_prefix}:{window}"
    cache.add(cache_key, 0, timeout=5)
    try:
        return cache.incr(cache_key) > limit
    except ValueError:  # expired between add and incr: count this request as the first
        return False


@csrf_exempt
def track_endpoint(request, kind: str):
    try:
        response = _handle(request, KINDS[kind])
    except (OperationalError, InterfaceError) as exc:
        # The database is unreachable: nothing was committed, the client must retry.
        log.warning("ingestion: database unavailable: %s", exc)
        response = error(503, "unavailable", "The database is unavailable; retry later.", retry_after=5)
    except DatabaseError:
        log.exception("ingestion: database error")
        response = error(503, "unavailable", "The event store failed; retry later.", retry_after=5)
    return _cors(request, response)


def _handle(request, kind: str) -> HttpResponse:
    if request.method == "OPTIONS":
        return HttpResponse(status=200)
    if request.method != "POST":
        response = error(405, "method_not_allowed", "Send events with POST.")
        response["Allow"] = "POST, OPTIONS"
        return response
    try:
        raw = request.body
    except RequestDataTooBig:
        return error(400, "request_too_large", f"The request body is over {wire.MAX_REQUEST_BYTES} bytes.")
    try:
        body = wire.decode_body(raw, request.headers.get("Content-Encoding"))
        parsed = wire.parse_request(body, kind)
    except wire.WireError as exc:
        return error(exc.status, exc.code, exc.message)

    plaintext = wire.basic_auth_key(request.headers.get("Authorization")) or parsed.write_key
    if not plaintext:
        return error(401, "unauthorized", "A write key is required: HTTP Basic user name, or writeKey in the body.")
    key = api_key_authenticate(plaintext, ApiKeyKind.WRITE)
    if key is None:
        return error(401, "unauthorized", "Unknown or revoked write key.")
    if rate_limited(key.prefix):
        return error(429, "rate_limited", "Too many requests for this write key.", retry_after=1)

    received_at = timezone.now()
    messages, rejections = [], []
    for item in parsed.messages:
        outcome = (
            item
            if isinstance(item, wire.Rejection)
            else wire.normalize(item, kind=kind, received_at=received_at, batch_sent_at=parsed.sent_at)
        )
        (rejections if isinstance(outcome, wire.Rejection) else messages).append(outcome)

    if kind != "batch" and rejections:
        # A single call has nothing else to keep: say what is wrong (and still record it).
        rejection = rejections[0]
        ingest(tenant=key.tenant, messages=[], rejections=rejections)
        return error(400, "invalid_message", rejection.reason)
    ingest(tenant=key.tenant, messages=messages, rejections=rejections)
    return JsonResponse({"success": True})
