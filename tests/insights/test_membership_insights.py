"""Risk and adoption count a user in several accounts in each (AccountMembership, not only the primary
account): issue 20, "Users in several accounts"."""

from datetime import timedelta

import pytest

from events.models import Activity, CustomerAccount, EndUser
from insights.queries.adoption import feature_adoption
from insights.queries.risk import at_risk
from scoring import engine
from scoring.models import ActivityWeight

from .helpers import group, published, send, track

pytestmark = pytest.mark.django_db


def test_adoption_counts_every_account_of_a_user(tenant):
    recent = tenant.today() - timedelta(days=3)
    # u1 is in acme, then globex (her primary); only she used "Exported album".
    send(tenant, [group("u1", "acme", recent), group("u1", "globex", recent), group("u2", "acme", recent),
                  track("u1", "Exported album", recent), track("u2", "Logged in", recent)])
    assert EndUser.objects.for_tenant(tenant).get(user_id="u1").account.group_id == "globex"
    result = feature_adoption(tenant, window=30)
    rows = {r.name: r for r in result.rows}
    assert (result.active_users, result.active_accounts) == (2, 2)
    assert (rows["Exported album"].users, rows["Exported album"].accounts) == (1, 2)  # acme and globex
    assert rows["Exported album"].account_share == 100.0
    assert (rows["Logged in"].users, rows["Logged in"].accounts) == (1, 1)


def test_silent_seats_count_in_every_account_of_their_users(tenant):
    """Northwind's eight seats; four of them, silent 8+ days, are agency consultants grouped into
    "agency" too (their primary account): both accounts see those silent seats."""
    day = tenant.today() - timedelta(days=1)
    start = day - timedelta(days=40)
    quiet_since = {4: 8, 5: 10, 6: 12, 7: 13}
    raws = []
    for seat in range(8):
        uid = f"seat-{seat}"
        raws.append(group(uid, "northwind", start, name="Northwind"))
        if seat in quiet_since:
            raws.append(group(uid, "agency", start, name="Agency"))
        for ago in range(40, quiet_since.get(seat, 0) - 1, -1):
            raws.append(track(uid, "Used feature", day - timedelta(days=ago)))
    for ago in range(40, -1, -1):
        raws.append(track("steady-1", "Used feature", day - timedelta(days=ago), group_id="steady"))
    send(tenant, raws)
    model = published(tenant)
    ActivityWeight.objects.create(tenant=tenant, model=model, points=1,
                                  activity=Activity.objects.for_tenant(tenant).get(name="Used feature"))
    for d in (day - timedelta(days=14), day - timedelta(days=7), day):
        engine.compute_day(model, d)
    assert EndUser.objects.for_tenant(tenant).get(user_id="seat-4").account.group_id == "agency"
    reasons = {i.name: [str(r) for r in i.reasons] for i in at_risk(tenant, day=day).items}
    assert reasons["Northwind"] == ["4 of 8 seats silent for 8+ days"]
    assert "4 of 4 seats silent for 8+ days" in reasons["Agency"]
    northwind = CustomerAccount.objects.for_tenant(tenant).get(group_id="northwind")
    one = at_risk(tenant, day=day, ids=[northwind.pk]).items
    assert [str(r) for r in one[0].reasons] == ["4 of 8 seats silent for 8+ days"]


def test_growth_outcomes_and_truth_count_every_account_of_a_user(tenant):
    from insights import truth
    from insights.queries.growth import growth_accounting

    recent = tenant.today() - timedelta(days=3)
    send(tenant, [group("u1", "acme", recent), group("u1", "globex", recent), track("u1", "Logged in", recent)])
    growth = growth_accounting(tenant, subject="accounts", measure="active", period="week")
    assert sum(r.new for r in growth.rows) == 2  # acme and globex both became active
    report = truth.retention_by_activity(tenant, day=recent, horizon=1, window=7, subject="accounts")
    logged_in = next(row for row in report.rows if row.activity.name == "Logged in")
    assert logged_in.did.n == 2
