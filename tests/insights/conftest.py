from datetime import timedelta

import pytest

from accounts.models import Membership, Role, User
from accounts.services import tenant_create
from events import demo as events_demo
from scoring import demo as scoring_demo
from tests.conftest import PASSWORD
from tests.noise import _noise_module, noise_tenant  # noqa: F401 - autouse: another tenant with data in every test

from .helpers import group, monday, send, track


def seed_demo_subset(tenant, *, users: int = 60, days: int = 90) -> None:
    """The demo's messages for its first `users` end users, then the demo model published and scored."""
    keep = {f"user-{i:04d}" for i in range(1, users + 1)}
    batch = []
    for raw in events_demo.generate_messages(tenant.today()):
        if raw["userId"] in keep:
            batch.append(raw)
            if len(batch) == 1000:
                send(tenant, batch)
                batch = []
    if batch:
        send(tenant, batch)
    scoring_demo.seed_demo_scoring(tenant, days=days)


@pytest.fixture(scope="module")
def scored_world(django_db_setup, django_db_blocker):
    """A demo-like tenant scored over 90 days beside another one, built once per module (seeding takes
    seconds) and removed after."""
    from engagement_site.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True  # publishing enqueues the backfill: run it here, never on a broker
    with django_db_blocker.unblock():
        owner = User.objects.create_user(email="ines.owner@insights.test", password=PASSWORD, full_name="Ines Owner")
        viewer = User.objects.create_user(email="val.viewer@insights.test", password=PASSWORD, full_name="Val Viewer")
        tenant = tenant_create(owner=owner, name="Snapshot Co", product_name="Snapshot", time_zone="Europe/Paris")
        Membership.objects.create(tenant=tenant, user=viewer, role=Role.VIEWER)
        # A second tenant scored from the same demo (the same end user ids, activity names and
        # days, fewer users): an insight query missing its tenant predicate would count its rows.
        other_owner = User.objects.create_user(email="oz.other@insights.test", password=PASSWORD)
        other = tenant_create(owner=other_owner, name="Other Co", product_name="Other", time_zone="Europe/Paris")
        try:
            seed_demo_subset(other, users=25)
            seed_demo_subset(tenant)
        finally:
            app.conf.task_always_eager = eager
    yield {"tenant": tenant, "owner": owner, "viewer": viewer, "other_tenant": other}
    with django_db_blocker.unblock():
        tenant.delete()
        other.delete()
        User.objects.filter(pk__in=[owner.pk, viewer.pk, other_owner.pk]).delete()


@pytest.fixture
def scored_tenant(scored_world, db):
    return scored_world["tenant"]


@pytest.fixture
def scored_viewer(scored_world, db):
    return scored_world["viewer"]


@pytest.fixture
def scored_owner(scored_world, db):
    return scored_world["owner"]


# Weeks relative to this week (0): A every week, B weeks -3 and 0, C week -1, D weeks -2 and -1.
ACTIVE_WEEKS = {"A": [-3, -2, -1, 0], "B": [-3, 0], "C": [-1], "D": [-2, -1]}
ACCOUNTS = {"A": "X", "B": "X", "C": "Y"}


@pytest.fixture
def weekly_events(tenant):
    """Growth accounting's hand-built weeks (test_insights, test_aggregates)."""
    this_week = monday(tenant.today())
    raws = []
    for user, weeks in ACTIVE_WEEKS.items():
        for w in weeks:
            raws.append(track(user, "Logged in", this_week + timedelta(weeks=w), ACCOUNTS.get(user)))
    for user, group_id in ACCOUNTS.items():
        raws.append(group(user, group_id, this_week - timedelta(weeks=3)))
    send(tenant, raws)
    return tenant
