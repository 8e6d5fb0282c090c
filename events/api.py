"""The Segment-compatible tracking endpoints: /v1/batch, /v1/track, /v1/t, ...

Plain Django views rather than DRF: the official clients expect Segment's own
response shapes (`{"success": true}`, errors as `{"code", "message", "field"}`), and per
request overhead matters on this path. Order of work: decode and parse the
body, authenticate the write key (Basic header or `writeKey` in the body),
rate-limit, normalise every message, store in one transaction, then answer 200
— so a 2xx always means the events are committed.

Every answer under /v1/ is JSON with CORS headers, unexpected errors and
unknown paths included: a browser that gets a response without CORS headers
cannot even read its status, and the clients parse every body as JSON.
`GET /v1/projects/<writeKey>/settings` is what analytics-next fetches from its
CDN before sending anything; it points the library at this server.
"""

import logging
from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.views.decorators.csrf import csrf_exempt

from accounts import key_cache
from accounts.models import ApiKey, ApiKeyKind
from accounts.services import api_key_authenticate
from core.api_errors import error_body
from core.ratelimit import RateLimit
from core.site import site_url

from . import wire
from .services import ingest

log = logging.getLogger(__name__)

CORS_HEADERS = {
    "Access-Control-Allow-Headers": "Content-Type, Authorization, X-Retry-Count, Content-Encoding",
    "Access-Control-Max-Age": "86400",
}


def _cors(request, response: HttpResponse, methods: str) -> HttpResponse:
    # Echo the origin (not "*") so browsers accept the Authorization header.
    response["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
    response["Vary"] = "Origin"
    response["Access-Control-Allow-Methods"] = methods
    for name, value in CORS_HEADERS.items():
        response[name] = value
    return response


def error(
    status: int, code: str, message: str, retry_after: int | None = None, field: str | None = None
) -> JsonResponse:
    # The one error body of both APIs (core.api_errors): Segment's {"code", "message"}, plus field.
    response = JsonResponse(error_body(code, message, field), status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


# Requests per second per write key: fixed one-second windows (one counter, one round trip).
INGEST_LIMIT = RateLimit("ingestion", window=1)


def shared_state(key_prefix: str) -> tuple[int | None, object | None]:
    """Count this request in its key's one-second window and read the key cache's generation.

    Both come from the shared cache (Redis in production) in one round trip.
    Fails open (core.ratelimit): events are committed in the database, so a cache
    outage must not stop ingestion; it only suspends the limit (count None) and
    leaves key revocation to the key cache's time limit (generation None).
    """
    hit = INGEST_LIMIT.hit(key_prefix, settings.INGEST_RATE_LIMIT_PER_SECOND, also_get=[key_cache.GENERATION_CACHE_KEY])
    # The generation is the raw stored value on Redis: only compared with the previous one.
    return hit.count, (hit.extras[0] if hit.extras else None)


def _live_write_key(plaintext: str | None, generation=None) -> ApiKey | None:
    # A NUL cannot be stored nor looked up in PostgreSQL text: such a key is unknown.
    if not plaintext or "\x00" in plaintext:
        return None
    return api_key_authenticate(plaintext, ApiKeyKind.WRITE, cached=True, generation=generation)


def v1_view(methods: str):
    """Wrap a /v1/ view: CORS headers on every response, and every failure answered in JSON."""

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            try:
                response = view(request, *args, **kwargs)
            except (OperationalError, InterfaceError) as exc:
                # The database is unreachable: nothing was committed, the client must retry.
                log.warning("ingestion: database unavailable: %s", exc)
                response = error(503, "unavailable", "The database is unavailable; retry later.", retry_after=5)
            except DatabaseError:
                log.exception("ingestion: database error")
                response = error(503, "unavailable", "The event store failed; retry later.", retry_after=5)
            except Exception:
                # A bug, not an outage: still a 500, but one the client can read (JSON, CORS).
                log.exception("ingestion: unexpected error")
                response = error(500, "internal_error", "The server failed to handle the request.")
            return _cors(request, response, methods)

        return wrapped

    return decorate


@v1_view("POST, OPTIONS")
def track_endpoint(request, kind: str):
    return _handle(request, wire.ENDPOINT_KINDS[kind])


@v1_view("POST, OPTIONS")
def webhook_endpoint(request, write_key: str | None = None):
    """Segment's Webhook destination: one message or a JSON array of them, each message's `type` decides.

    The write key comes in the Basic auth header (a header set in the destination's
    settings) or in the URL (`/v1/webhook/<writeKey>`). Same dedupe, limits and answers
    as /v1/batch; a body of one message that is refused is a 400, as a single call.
    """
    return _handle(request, "batch", webhook=True, url_key=write_key)


def _handle(request, kind: str, webhook: bool = False, url_key: str | None = None) -> HttpResponse:
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
    single = kind != "batch"
    try:
        body = wire.decode_body(raw, request.headers.get("Content-Encoding"))
        if webhook:
            parsed, single = wire.parse_webhook(body)
        else:
            parsed = wire.parse_request(body, kind)
    except wire.WireError as exc:
        return error(exc.status, exc.code, exc.message)

    plaintext = wire.basic_auth_key(request.headers.get("Authorization")) or url_key or parsed.write_key
    if not plaintext:
        return error(401, "unauthorized", "A write key is required: HTTP Basic user name, or writeKey in the body.")
    prefix = ApiKey.split_prefix(plaintext) if "\x00" not in plaintext else None
    if prefix is None:
        return error(401, "unauthorized", "Unknown or revoked write key.")
    count, generation = shared_state(prefix)
    key = _live_write_key(plaintext, generation)
    if key is None:
        return error(401, "unauthorized", "Unknown or revoked write key.")
    limit = settings.INGEST_RATE_LIMIT_PER_SECOND
    if limit and count is not None and count > limit:
        return error(429, "rate_limited", "Too many requests for this write key.", retry_after=1)

    outcomes = wire.normalize_all(parsed.messages, kind=kind, received_at=timezone.now(), batch_sent_at=parsed.sent_at)
    messages, rejections = [], []
    for outcome in outcomes:
        (messages if type(outcome) is wire.Message else rejections).append(outcome)

    if single and rejections:
        # A single call has nothing else to keep: say what is wrong (and still record it).
        rejection = rejections[0]
        ingest(tenant=key.tenant, messages=[], rejections=rejections)
        return error(400, "invalid_message", rejection.reason, field=rejection.field or None)
    ingest(tenant=key.tenant, messages=messages, rejections=rejections)
    if parsed.excess:
        return JsonResponse(_excess_answer(parsed, rejections))
    return JsonResponse({"success": True})


def _excess_answer(parsed: wire.ParsedRequest, rejections: list) -> dict:
    """200: the first 2,500 messages were processed; the rest are named, and kept on the debugger."""
    excess = rejections[-parsed.excess_rejections :]
    total = wire.MAX_BATCH_MESSAGES + parsed.excess
    return {
        "success": True,
        "code": "too_many_messages",
        "message": (
            f"The batch has {total:,} messages; the first {wire.MAX_BATCH_MESSAGES:,} were processed and the "
            f"{total - wire.MAX_BATCH_MESSAGES:,} after them rejected (listed on the live debugger). "
            "Send those again in another batch."
        ),
        "rejected": [r.message_id for r in excess if r.message_id],
    }


# --- analytics-next settings and the rest of /v1/ ---------------------------------------


@v1_view("GET, OPTIONS")
def project_settings(request, write_key: str):
    """The source settings analytics-next loads from `${cdnURL}/v1/projects/<writeKey>/settings`.

    Only what makes it send here: the Segment.io integration with our host,
    every track event enabled, no device-mode destinations, and remote metrics
    off (they would otherwise go to api.segment.io).
    """
    if request.method == "OPTIONS":
        return HttpResponse(status=200)
    if request.method != "GET":
        response = error(405, "method_not_allowed", "Fetch settings with GET.")
        response["Allow"] = "GET, OPTIONS"
        return response
    if _live_write_key(write_key) is None:
        return error(404, "not_found", "Unknown or revoked write key.")
    response = JsonResponse(_source_settings(write_key))
    # Every page load of a site fetches this: browsers and CDNs may keep it a few minutes.
    patch_cache_control(response, public=True, max_age=300)
    return response


def _source_settings(write_key: str) -> dict:
    # The public address clients send to, as in the snippets (core/site.py).
    site = urlsplit(site_url())
    integration = {"apiKey": write_key, "apiHost": f"{site.netloc}{site.path}/v1", "protocol": site.scheme or "https"}
    return {
        "integrations": {"Segment.io": integration},
        "plan": {"track": {"__default": {"enabled": True}}},
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "metrics": {"sampleRate": 0},
    }


@v1_view("POST, GET, OPTIONS")
def not_found(request, path: str = ""):
    """Any other /v1/ path: a JSON 404 the client can read, never Django's HTML page or a slash redirect."""
    return error(404, "not_found", "No such endpoint; see /api/docs/.")
