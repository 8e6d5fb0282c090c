"""Helpers for scoring tests: rollup rows written directly (no ingestion service)."""

from datetime import UTC, date, datetime, timedelta

import pytest

from events.models import Activity, CustomerAccount, DailyActivityCount, EndUser
from scoring import services
from scoring.models import ScoringModel

DAY = date(2026, 3, 31)
LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)


def make_activities(tenant, *names):
    return {name: Activity.objects.create(tenant=tenant, name=name, first_seen_at=LONG_AGO) for name in names}


def make_users(tenant, *user_ids, account=None, first_seen_at=LONG_AGO):
    return {
        uid: EndUser.objects.create(tenant=tenant, user_id=uid, account=account, first_seen_at=first_seen_at)
        for uid in user_ids
    }


def make_account(tenant, group_id, name=""):
    return CustomerAccount.objects.create(
        tenant=tenant, group_id=group_id, name=name or group_id, first_seen_at=LONG_AGO
    )


def add_counts(tenant, rows):
    """rows: (end_user, activity, day or days-before-DAY, count)."""
    DailyActivityCount.objects.bulk_create(
        DailyActivityCount(
            tenant=tenant,
            end_user=user,
            activity=activity,
            day=day if isinstance(day, date) else DAY - timedelta(days=day),
            count=count,
        )
        for user, activity, day, count in rows
    )


def make_model(tenant, points: dict, publish=False, **fields) -> ScoringModel:
    model = services.scoring_model_create_draft(tenant=tenant)
    services.scoring_model_update(model=model, points={a.pk: p for a, p in points.items()}, **fields)
    model.refresh_from_db()
    return model


@pytest.fixture
def acts(tenant):
    return make_activities(tenant, "Logged in", "Shared photo", "Invited friend", "Viewed page")


@pytest.fixture(autouse=True)
def celery_eager():
    """Scoring tests run tasks in process unless they start a real worker (see test_worker.py)."""
    from engagement_site.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous
