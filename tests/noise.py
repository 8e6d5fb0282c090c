"""A noise tenant: another workspace with real rows beside every insight, scoring and alert test.

A raw statement that forgets its tenant predicate reads this tenant's rows too,
so the test around it counts, sums or lists more than it expects and fails. The
rows look like the tests' own: the same activity names, end user and account ids
("A", "u1", "X"...), rollup rows, events, and snapshots of a published model in
every tier (some above the 99th percentile), on every day around today (the
insight and alert tests) and around `tests.scoring.conftest.DAY` (the scoring
tests), daily for five weeks back and sparser to three months.

Set-based (one bulk_create a table, ~2,000 rows) and committed once per test
module, so the suite stays fast. The conftest of each package that wants it
imports `noise_tenant` (autouse); a test that does not touch the database pays
nothing.
"""

from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.db import transaction

from accounts.models import Membership, Tenant, User
from events.models import AccountMembership, Activity, CustomerAccount, DailyActivityCount, EndUser, Event, MessageId
from scoring.models import AccountScore, ActivityWeight, ProductScore, Tier, UserScore

from .factories import (
    LONG_AGO,
    ActivityFactory,
    CustomerAccountFactory,
    EndUserFactory,
    EventFactory,
    MembershipFactory,
    ScoringModelFactory,
    TenantFactory,
    UserFactory,
)

SLUG = "noise-co"
SCORING_DAY = date(2026, 3, 31)  # tests.scoring.conftest.DAY
ACTIVITIES = ("Logged in", "Shared photo", "Invited friend", "Viewed page")
# End user id -> account group id (None: no account).
END_USERS = {"A": "X", "B": "X", "a": "X", "u1": "X", "C": "Y", "D": "Y", "b": "Y", "u2": None}
TIERS = (Tier.HIGH, Tier.MEDIUM, Tier.LOW, Tier.DORMANT, Tier.NEW, Tier.HIGH, Tier.MEDIUM, Tier.LOW)
DB_FIXTURES = ("db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback", "live_server")


def noise_days(*, daily: int, sparse: int, step: int) -> list[date]:
    """Every day from tomorrow (UTC, so any tenant's today is in) back `daily` days, then every
    `step`-th day back to `sparse` days, around today and around the scoring tests' day."""
    days = set()
    for anchor in (datetime.now(UTC).date() + timedelta(days=1), SCORING_DAY + timedelta(days=1)):
        days.update(anchor - timedelta(days=back) for back in range(daily + 2))
        days.update(anchor - timedelta(days=back) for back in range(daily + 2, sparse + 1, step))
    return sorted(days)


def seed_noise_tenant():
    owner = UserFactory(email="nora.noise@noise.test", full_name="Nora Noise")
    tenant = TenantFactory(owner=owner, name="Noise Co", slug=SLUG, product_name="Noise", time_zone="UTC")
    MembershipFactory(tenant=tenant, user=UserFactory(email="ned.noise@noise.test"))
    activities = [ActivityFactory.build(tenant=tenant, name=name) for name in ACTIVITIES]
    Activity.objects.bulk_create(activities)
    accounts = {g: CustomerAccountFactory.build(tenant=tenant, group_id=g, name=f"{g} Corp", traits={
        "plan": "paid" if g == "X" else "free", "mrr": 120 if g == "X" else 0}) for g in ("X", "Y")}
    CustomerAccount.objects.bulk_create(accounts.values())
    users = [EndUserFactory.build(tenant=tenant, user_id=uid, account=accounts.get(group),
                                  traits={"name": f"Noise {uid}", "plan": "paid" if i % 2 else "free"})
             for i, (uid, group) in enumerate(END_USERS.items())]
    EndUser.objects.bulk_create(users)
    AccountMembership.objects.bulk_create(
        AccountMembership(tenant=tenant, end_user=u, account=u.account, started_at=LONG_AGO) for u in users if u.account
    )
    DailyActivityCount.objects.bulk_create(
        DailyActivityCount(tenant=tenant, end_user=u, activity=activities[(i + day.toordinal()) % len(activities)],
                           day=day, count=1 + i % 3)
        for day in noise_days(daily=35, sparse=100, step=3) for i, u in enumerate(users)
    )
    today = datetime.now(UTC).date()
    events = [EventFactory.build(tenant=tenant, end_user=u, activity=activities[i % len(activities)],
                                 timestamp=datetime.combine(day, time(12), tzinfo=UTC), message_id=f"noise-{day}-{i}")
              for day in (today - timedelta(days=1), today) for i, u in enumerate(users)]
    Event.objects.bulk_create(events)
    MessageId.objects.bulk_create(MessageId(tenant=tenant, message_id=e.message_id) for e in events)
    _snapshots(tenant, activities, users, list(accounts.values()))
    return tenant


def _snapshots(tenant, activities, users, accounts) -> None:
    model = ScoringModelFactory(tenant=tenant, published=True, name="Noise")
    ActivityWeight.objects.bulk_create(ActivityWeight(tenant=tenant, model=model, activity=a, points=1 + 3 * i)
                                       for i, a in enumerate(activities))
    user_rows, account_rows, product_rows = [], [], []
    for n, day in enumerate(noise_days(daily=35, sparse=98, step=7)):
        for i, u in enumerate(users):
            tier = TIERS[(i + n) % len(TIERS)]
            points = 0 if tier == Tier.DORMANT else 10.0 * (len(users) - i) + n
            user_rows.append(UserScore(tenant=tenant, model=model, day=day, end_user=u, points=points,
                                       breadth=1 if points else 0, active_days=1 if points else 0,
                                       percentile=99.5 if i == 0 else 10.0 * (len(users) - i), tier=tier))
        for i, a in enumerate(accounts):
            account_rows.append(AccountScore(tenant=tenant, model=model, day=day, account=a, points=500.0 - 100 * i + n,
                                             active_users=3, seats=4, percentile=90 - 50 * i,
                                             tier=TIERS[(i + n) % len(TIERS)]))
        product_rows.append(ProductScore(tenant=tenant, model=model, day=day, total_points=999, mean_points=99,
                                         median_points=60, active_users=7, engaged_users=4, high_users=2,
                                         medium_users=2, low_users=2, new_users=1, dormant_users=1))
    UserScore.objects.bulk_create(user_rows)
    AccountScore.objects.bulk_create(account_rows)
    ProductScore.objects.bulk_create(product_rows)


def remove_noise_tenant() -> None:
    tenant = Tenant.objects.filter(slug=SLUG).first()
    if tenant is None:
        return
    people = list(Membership.objects.for_tenant(tenant).values_list("user_id", flat=True))
    tenant.delete()
    User.objects.filter(pk__in=people).delete()


@pytest.fixture(scope="module", autouse=True)
def _noise_module(django_db_setup, django_db_blocker):
    """Committed once per module, before any test's transaction (a rollback leaves it as it was)."""
    with django_db_blocker.unblock(), transaction.atomic():
        if not Tenant.objects.filter(slug=SLUG).exists():
            seed_noise_tenant()
    yield
    with django_db_blocker.unblock():
        remove_noise_tenant()


@pytest.fixture(autouse=True)
def noise_tenant(request, _noise_module):
    """The noise tenant, for every test of the package that uses the database.

    Seeded again, in the test, after a transactional test: its flush empties every table.
    """
    uses_db = request.node.get_closest_marker("django_db") or any(f in request.fixturenames for f in DB_FIXTURES)
    if not uses_db:
        return None
    request.getfixturevalue("_django_db_helper")
    return Tenant.objects.filter(slug=SLUG).first() or seed_noise_tenant()
