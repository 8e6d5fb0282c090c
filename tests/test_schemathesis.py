"""Schemathesis against the app in process: the OpenAPI at /api/schema/ says what the server does.

Every operation of the read API (with a read key) and of the tracking API (with
a write key) gets generated requests, valid and invalid ones, and each response
must hold: no 5xx, a status the schema documents, a body and content type the
schema describes, valid data accepted and invalid data refused (where the
schema can express the rule; see `_checks`). Bounded (`FUZZ_EXAMPLES`, default
15 per operation and mode, derandomized) so it is stable in CI; `make fuzz`
runs the same with many more examples.
"""

import base64
import os
from datetime import timedelta

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts import key_cache, rls
from accounts.models import ApiKey, ApiKeyKind
from engagement_site.wsgi import application
from scoring import engine, services
from tests.scoring.conftest import add_counts, make_account, make_activities, make_model, make_users

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
# One plaintext per kind for the whole run: schemathesis builds some cases (and
# applies auth to them) at collection, before any test database exists, so
# every test stores rows for these same keys.
_GENERATED = {kind: ApiKey.generate(kind) for kind in (ApiKeyKind.READ, ApiKeyKind.WRITE)}
KEYS = {"read": _GENERATED[ApiKeyKind.READ][0], "write": _GENERATED[ApiKeyKind.WRITE][0]}


# Loaded once, from the app itself (no server); each operation is its own test.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
# Loading the schema ran a request, which made this thread an application connection
# (tests/conftest.py, row-level security) without the request_finished that undoes it:
# the tests' own setup is platform code again.
rls.set_owner_thread(True)
# A NUL is refused anywhere in a message (PostgreSQL cannot store it), which the
# schema states for ids but cannot for every nested property value.
schema.config.generation.update(allow_x00=False)


@pytest.fixture
def workspace(db, tenant, settings):
    """A workspace with keys, end users (one with a "/" in its id), an account and scores."""
    settings.INGEST_RATE_LIMIT_PER_SECOND = 0  # the fuzzer is faster than any client: 429 is not the point here
    key_cache.clear()  # the previous test's tenant held the same key prefixes
    for kind, (_, prefix, secret_hash) in _GENERATED.items():
        ApiKey.objects.create(tenant=tenant, kind=kind, name=f"fuzz {kind}", prefix=prefix, secret_hash=secret_hash)
    login = make_activities(tenant, "Logged in")["Logged in"]
    account = make_account(tenant, "acme", "Acme Corp")
    users = make_users(tenant, "u1", "org/42", account=account)
    today = tenant.today()
    add_counts(tenant, [(u, login, today - timedelta(days=d), 2) for u in users.values() for d in range(3)])
    model = make_model(tenant, {login: 2})
    services.scoring_model_publish(model=model, backfill_days=1)
    engine.compute_day(model, today)
    # Requests go through the WSGI handler itself (not Django's test client), whose
    # request_started/finished signals would close the test's database connection
    # mid-transaction on PostgreSQL; detach them as the test client does.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield tenant
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
    rls.set_owner_thread(True)  # the fuzzer's requests may not all have closed their responses


@schemathesis.auth(refresh_interval=None)
class ApiKeys:
    """A write key (HTTP Basic, as Segment clients send it) for /v1/, a read key (Bearer) for /api/v1/."""

    def get(self, case, context):
        return KEYS

    def set(self, case, data, context):
        case.headers = case.headers or {}
        if case.path.startswith("/v1/"):
            case.headers["Authorization"] = "Basic " + base64.b64encode(f"{data['write']}:".encode()).decode()
        else:
            case.headers["Authorization"] = f"Bearer {data['read']}"


@schemathesis.hook
def map_body(context, body):
    """No sentAt next to a client time: the clock-skew correction (receivedAt - (sentAt - timestamp))
    of two arbitrary valid times can land outside 1970-2199 and be refused, a rule across fields
    that the schema cannot state."""
    messages = body.get("batch") if isinstance(body, dict) else None
    for message in [body, *(messages if isinstance(messages, list) else [])]:
        if isinstance(message, dict) and ("timestamp" in message or "originalTimestamp" in message):
            message.pop("sentAt", None)
    if isinstance(messages, list) and any(
        isinstance(m, dict) and ("timestamp" in m or "originalTimestamp" in m) for m in messages
    ):
        body.pop("sentAt", None)
    return body


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    negative_data_rejection,
]

# The tracking API is Segment's, tolerant on purpose: an integer id is taken as
# its string, a body writeKey is ignored when Basic carries the key, and in a
# batch an invalid message is recorded and the request still answers 200. So
# schema-violating requests are not all refused there; every other check holds.
TRACKING_CHECKS = [check for check in CHECKS if check is not negative_data_rejection]

FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@schema.include(path_regex="^/api/v1/").parametrize()
@FUZZ
def test_read_api(case, workspace):
    case.call_and_validate(checks=CHECKS)


@schema.include(path_regex="^/v1/").parametrize()
@FUZZ
def test_tracking_api(case, workspace):
    case.call_and_validate(checks=TRACKING_CHECKS)
