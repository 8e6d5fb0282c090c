"""Helpers for scoring tests: rollup rows written directly (no ingestion service)."""

from datetime import UTC, date, datetime, timedelta

import pytest

from events.models import AccountMembership, DailyActivityCount
from scoring import services
from scoring.models import ScoringModel
from tests.factories import ActivityFactory, CustomerAccountFactory, EndUserFactory
from tests.noise import _noise_module, noise_tenant  # noqa: F401 - autouse: another tenant with data in every test

DAY = date(2026, 3, 31)
LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)


def make_activities(tenant, *names):
    return {name: ActivityFactory(tenant=tenant, name=name, first_seen_at=LONG_AGO) for name in names}


def make_users(tenant, *user_ids, account=None, first_seen_at=LONG_AGO):
    """End users, members of `account` (if given) since they were first seen."""
    users = {
        uid: EndUserFactory(tenant=tenant, user_id=uid, account=account, first_seen_at=first_seen_at)
        for uid in user_ids
    }
    if account is not None:
        join(account, *users.values(), at=first_seen_at)
    return users


def join(account, *end_users, at=LONG_AGO, ended_at=None):
    """Memberships of `end_users` in `account` from `at` (the roll-up reads these, not EndUser.account)."""
    AccountMembership.objects.bulk_create(
        AccountMembership(tenant=account.tenant, end_user=u, account=account, started_at=at, ended_at=ended_at)
        for u in end_users
    )


def make_account(tenant, group_id, name=""):
    return CustomerAccountFactory(tenant=tenant, group_id=group_id, name=name or group_id, first_seen_at=LONG_AGO)


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


def seed_other_tenant(other) -> None:
    """The other tenant with data like the tests': the same activity names, end users (ids of their
    own: some tests check that the other tenant has no "u1"), rollup rows around DAY, a model and
    snapshots. A query missing its tenant predicate counts them."""
    from scoring.models import ProductScore, Tier, UserScore

    names = ["Logged in", "Shared photo", "Invited friend", "Viewed page"]
    activities = make_activities(other, *names)
    account = make_account(other, "other-acme")
    users = make_users(other, "other-u1", "other-u2", "other-u3", "other-u4", account=account)
    add_counts(other, [(u, a, back, 7) for u in users.values() for a in activities.values() for back in (0, 1, 6, 8)])
    model = make_model(other, {a: 5 for a in activities.values()})
    for back in range(3):
        day = DAY - timedelta(days=back)
        UserScore.objects.bulk_create(
            UserScore(tenant=other, model=model, day=day, end_user=u, points=999, breadth=4, active_days=3,
                      percentile=99, tier=Tier.HIGH)
            for u in users.values()
        )
        ProductScore.objects.create(
            tenant=other, model=model, day=day, total_points=999 * 4, mean_points=999, median_points=999,
            active_users=4, engaged_users=4, high_users=4, medium_users=0, low_users=0, new_users=0, dormant_users=0,
        )


@pytest.fixture
def acts(tenant, other_tenant):
    # Every test built on `acts` runs beside a second tenant with data (isolation of the raw SQL).
    seed_other_tenant(other_tenant)
    return make_activities(tenant, "Logged in", "Shared photo", "Invited friend", "Viewed page")


@pytest.fixture(autouse=True)
def celery_eager():
    """Scoring tests run tasks in process unless they start a real worker (see test_worker.py)."""
    from engagement_site.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous
