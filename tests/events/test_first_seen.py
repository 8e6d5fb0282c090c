"""An end user is first seen at their earliest event, also when that history arrives late (CSV, demo, retries)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from events import wire
from events.models import EndUser
from events.services import ingest

pytestmark = pytest.mark.django_db


def _send(tenant, *messages, received_at=None):
    received_at = received_at or timezone.now()
    normalized = [wire.normalize(m, kind="batch", received_at=received_at, batch_sent_at=None) for m in messages]
    assert all(isinstance(m, wire.Message) for m in normalized), normalized
    return ingest(tenant=tenant, messages=normalized)


def _track(user_id, when: datetime, **extra):
    return {"type": "track", "userId": user_id, "event": "Logged in", "timestamp": when.isoformat(), **extra}


def _first_seen(tenant, **lookup):
    return EndUser.objects.for_tenant(tenant).get(**lookup).first_seen_at


def test_history_dates_a_new_end_user_from_their_earliest_event(tenant):
    now = timezone.now()
    _send(tenant, _track("ana", now - timedelta(days=10)), _track("ana", now - timedelta(days=40)),
          _track("ana", now - timedelta(days=20)))  # fmt: skip
    assert abs(_first_seen(tenant, user_id="ana") - (now - timedelta(days=40))) < timedelta(milliseconds=1)


def test_older_history_moves_a_known_end_user_back(tenant):
    now = timezone.now()
    _send(tenant, _track("ben", now))
    live = _first_seen(tenant, user_id="ben")
    _send(tenant, _track("ben", datetime(2025, 3, 4, 5, 6, tzinfo=UTC)))  # a CSV backfill, months later
    assert _first_seen(tenant, user_id="ben") == datetime(2025, 3, 4, 5, 6, tzinfo=UTC)
    _send(tenant, _track("ben", datetime(2025, 6, 1, tzinfo=UTC)))  # later history: no change
    assert _first_seen(tenant, user_id="ben") == datetime(2025, 3, 4, 5, 6, tzinfo=UTC)
    assert live > datetime(2025, 6, 1, tzinfo=UTC)


def test_live_events_leave_first_seen_alone(tenant):
    now = timezone.now()
    _send(tenant, _track("cleo", now - timedelta(minutes=5)))
    first = _first_seen(tenant, user_id="cleo")
    _send(tenant, _track("cleo", now - timedelta(minutes=2)))
    assert _first_seen(tenant, user_id="cleo") == first


def test_anonymous_end_users_are_dated_too(tenant):
    when = datetime(2025, 1, 2, 3, 4, tzinfo=UTC)
    _send(tenant, {"type": "page", "anonymousId": "anon-1", "name": "Home", "timestamp": when.isoformat()})
    assert _first_seen(tenant, anonymous_id="anon-1") == when


def test_it_holds_on_postgresql(postgres, tenant):
    test_older_history_moves_a_known_end_user_back(tenant)
