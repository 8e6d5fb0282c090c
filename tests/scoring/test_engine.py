"""The formulas of docs/scoring.md on small hand-computed cases."""

from datetime import date, datetime, timedelta

import pytest

from scoring import engine
from scoring.models import AccountScore, ProductScore, UserScore

from .conftest import DAY, add_counts, make_account, make_model, make_users

pytestmark = pytest.mark.django_db


def user_rows(model, day=DAY):
    return {
        r.end_user.user_id: r
        for r in UserScore.objects.for_tenant(model.tenant).filter(model=model, day=day).select_related("end_user")
    }


def test_points_are_points_times_frequency_summed(tenant, acts):
    users = make_users(tenant, "u1", "u2")
    add_counts(
        tenant,
        [
            (users["u1"], acts["Logged in"], 0, 3),
            (users["u1"], acts["Shared photo"], 1, 2),
            (users["u2"], acts["Logged in"], 5, 1),
            (users["u2"], acts["Viewed page"], 0, 50),  # no points: does not count
        ],
    )
    model = make_model(tenant, {acts["Logged in"]: 1, acts["Shared photo"]: 20})
    result = engine.compute_day(model, DAY)
    rows = user_rows(model)
    assert rows["u1"].points == 3 * 1 + 2 * 20
    assert rows["u1"].breadth == 2 and rows["u1"].active_days == 2
    assert rows["u2"].points == 1
    assert rows["u2"].breadth == 1 and rows["u2"].active_days == 1
    assert result.users == 2 and result.accounts == 0 and result.rows == 3


def test_window_edges(tenant, acts):
    users = make_users(tenant, "u1")
    add_counts(
        tenant,
        [
            (users["u1"], acts["Logged in"], 0, 1),  # the day itself
            (users["u1"], acts["Logged in"], 6, 10),  # first day of a 7-day window
            (users["u1"], acts["Logged in"], 7, 100),  # one day too old
            (users["u1"], acts["Logged in"], -1, 1000),  # the next day: not yet
        ],
    )
    model = make_model(tenant, {acts["Logged in"]: 1}, window_days=7)
    engine.compute_day(model, DAY)
    row = user_rows(model)["u1"]
    assert row.points == 11 and row.active_days == 2


def test_daily_cap(tenant, acts):
    users = make_users(tenant, "u1")
    add_counts(tenant, [(users["u1"], acts["Logged in"], 0, 40), (users["u1"], acts["Logged in"], 1, 2)])
    model = make_model(tenant, {acts["Logged in"]: 2}, daily_cap=5)
    engine.compute_day(model, DAY)
    assert user_rows(model)["u1"].points == 2 * 5 + 2 * 2


def test_half_life(tenant, acts):
    users = make_users(tenant, "u1")
    add_counts(
        tenant,
        [
            (users["u1"], acts["Shared photo"], 0, 1),  # x 1
            (users["u1"], acts["Shared photo"], 7, 1),  # x 0.5
            (users["u1"], acts["Shared photo"], 14, 2),  # x 0.25
            (users["u1"], acts["Shared photo"], 3, 1),  # x 0.5 ** (3 / 7)
        ],
    )
    model = make_model(tenant, {acts["Shared photo"]: 10}, half_life_days=7, daily_cap=1)
    engine.compute_day(model, DAY)
    expected = 10 * (1 + 0.5 + 0.25 * 1 + 0.5 ** (3 / 7))
    assert user_rows(model)["u1"].points == pytest.approx(round(expected, 4), abs=1e-9)


def test_percentile_tiers_and_dormant(tenant, acts):
    ids = [f"u{i}" for i in range(1, 11)]
    users = make_users(tenant, *ids, "idle")
    add_counts(tenant, [(users[uid], acts["Logged in"], 0, i) for i, uid in enumerate(ids, start=1)])
    model = make_model(tenant, {acts["Logged in"]: 1})
    engine.compute_day(model, DAY)
    rows = user_rows(model)
    # percentile = 100 x share of scored users with points <= yours (cume_dist).
    assert [rows[u].percentile for u in ids] == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert [rows[u].tier for u in ids] == ["low"] * 3 + ["medium"] * 4 + ["high"] * 3
    assert rows["idle"].tier == "dormant" and rows["idle"].points == 0 and rows["idle"].percentile is None


def test_points_threshold_tiers(tenant, acts):
    users = make_users(tenant, "a", "b", "c")
    add_counts(
        tenant,
        [
            (users["a"], acts["Logged in"], 0, 5),
            (users["b"], acts["Logged in"], 0, 20),
            (users["c"], acts["Logged in"], 0, 50),
        ],
    )
    model = make_model(tenant, {acts["Logged in"]: 1}, tier_method="points", tier_high=50, tier_medium=20)
    engine.compute_day(model, DAY)
    rows = user_rows(model)
    assert (rows["a"].tier, rows["b"].tier, rows["c"].tier) == ("low", "medium", "high")


def test_grace_period_shows_new_users_as_new(tenant, acts):
    tz = tenant.tzinfo
    first_seen_recent = datetime(2026, 3, 25, 9, tzinfo=tz)
    old = make_users(tenant, "old")["old"]
    fresh = make_users(tenant, "fresh", first_seen_at=first_seen_recent)["fresh"]
    # Imported history: first seen recently, but active long before the grace period.
    imported = make_users(tenant, "imported", first_seen_at=first_seen_recent)["imported"]
    add_counts(
        tenant,
        [
            (old, acts["Logged in"], 0, 1),
            (fresh, acts["Logged in"], 0, 1),
            (imported, acts["Logged in"], 0, 1),
            (imported, acts["Viewed page"], 20, 1),
        ],
    )
    model = make_model(tenant, {acts["Logged in"]: 1}, grace_days=14)
    engine.compute_day(model, DAY)
    rows = user_rows(model)
    assert rows["fresh"].tier == "new"
    assert rows["old"].tier != "new" and rows["imported"].tier != "new"


def test_grace_period_edge_in_the_tenant_time_zone(tenant, acts):
    # Tenant is Europe/Paris (UTC+2 on 2026-03-31, UTC+1 before 29 March). Grace of 3 days
    # covers 29, 30, 31 March: 28 March 23:30 in Paris (22:30 UTC) is before it,
    # 29 March 00:30 in Paris (28 March 23:30 UTC) is inside it.
    tz = tenant.tzinfo
    before = make_users(tenant, "before", first_seen_at=datetime(2026, 3, 28, 23, 30, tzinfo=tz))["before"]
    inside = make_users(tenant, "inside", first_seen_at=datetime(2026, 3, 29, 0, 30, tzinfo=tz))["inside"]
    add_counts(tenant, [(before, acts["Logged in"], 0, 1), (inside, acts["Logged in"], 0, 1)])
    model = make_model(tenant, {acts["Logged in"]: 1}, grace_days=3)
    engine.compute_day(model, DAY)
    rows = user_rows(model)
    assert rows["inside"].tier == "new" and rows["before"].tier != "new"


def test_imported_history_counts_as_seen_for_dormant_rows(tenant, acts):
    # Created today by a history import, active 40 days before DAY: dormant on DAY, not missing.
    tz = tenant.tzinfo
    user = make_users(tenant, "imported", first_seen_at=datetime(2026, 5, 1, tzinfo=tz))["imported"]
    add_counts(tenant, [(user, acts["Logged in"], 40, 3)])
    model = make_model(tenant, {acts["Logged in"]: 1})
    engine.compute_day(model, DAY)
    engine.compute_day(model, DAY - timedelta(days=45))
    assert user_rows(model)["imported"].tier == "dormant"
    assert "imported" not in user_rows(model, DAY - timedelta(days=45))


def test_user_first_seen_after_the_day_is_not_listed_as_dormant(tenant, acts):
    tz = tenant.tzinfo
    make_users(tenant, "later", first_seen_at=datetime(2026, 4, 1, 0, 5, tzinfo=tz))
    make_users(tenant, "ontime", first_seen_at=datetime(2026, 3, 31, 23, 55, tzinfo=tz))
    model = make_model(tenant, {acts["Logged in"]: 1})
    engine.compute_day(model, DAY)
    assert set(user_rows(model)) == {"ontime"}


@pytest.mark.parametrize(
    "rollup,expected",
    [
        ("sum", {"big": 60.0, "small": 4.0, "empty": 0.0}),
        ("mean", {"big": 30.0, "small": 4.0, "empty": 0.0}),
        ("seats", {"big": 100 * 1 / 3, "small": 0.0, "empty": 0.0}),
    ],
)
def test_account_rollups(tenant, acts, rollup, expected):
    big, small, empty = make_account(tenant, "big"), make_account(tenant, "small"), make_account(tenant, "empty")
    b = make_users(tenant, "b1", "b2", "b3", account=big)
    s = make_users(tenant, "s1", account=small)
    make_users(tenant, "e1", account=empty)
    others = make_users(tenant, *[f"x{i}" for i in range(8)])
    add_counts(
        tenant,
        [(b["b1"], acts["Logged in"], 0, 50), (b["b2"], acts["Logged in"], 0, 10), (s["s1"], acts["Logged in"], 0, 4)]
        + [(u, acts["Logged in"], 0, 20) for u in others.values()],
    )
    model = make_model(tenant, {acts["Logged in"]: 1}, account_rollup=rollup)
    engine.compute_day(model, DAY)
    rows = {
        r.account.group_id: r
        for r in AccountScore.objects.unscoped().filter(model=model, day=DAY).select_related("account")
    }
    assert {k: round(v.points, 4) for k, v in rows.items()} == {k: round(v, 4) for k, v in expected.items()}
    assert (rows["big"].active_users, rows["big"].seats) == (2, 3)
    assert rows["empty"].tier == "dormant" and rows["empty"].percentile is None
    # Among the two active accounts the bigger value is at the 100th percentile.
    if rollup != "seats":
        assert rows["big"].percentile == 100 and rows["big"].tier == "high"
        assert rows["small"].percentile == 50 and rows["small"].tier == "medium"


def test_product_score(tenant, acts):
    users = make_users(tenant, "a", "b", "c", "d", "idle")
    add_counts(
        tenant,
        [
            (users["a"], acts["Logged in"], 0, 1),
            (users["b"], acts["Logged in"], 0, 3),
            (users["c"], acts["Logged in"], 0, 10),
            (users["d"], acts["Logged in"], 0, 30),
        ],
    )
    model = make_model(tenant, {acts["Logged in"]: 1})
    engine.compute_day(model, DAY)
    product = ProductScore.objects.unscoped().get(model=model, day=DAY)
    assert product.total_points == 44
    assert product.active_users == 4
    assert product.mean_points == 11
    assert product.median_points == (3 + 10) / 2
    # cume_dist: 25, 50, 75, 100 -> low, medium, medium, high
    assert (product.high_users, product.medium_users, product.low_users) == (1, 2, 1)
    assert product.engaged_users == 3 and product.dormant_users == 1 and product.new_users == 0


def test_median_of_an_odd_count_and_of_nobody(tenant, acts):
    users = make_users(tenant, "a", "b", "c")
    add_counts(
        tenant,
        [
            (users["a"], acts["Logged in"], 0, 1),
            (users["b"], acts["Logged in"], 0, 7),
            (users["c"], acts["Logged in"], 0, 9),
        ],
    )
    model = make_model(tenant, {acts["Logged in"]: 1})
    engine.compute_day(model, DAY)
    assert ProductScore.objects.unscoped().get(model=model, day=DAY).median_points == 7
    engine.compute_day(model, DAY + timedelta(days=60))
    empty = ProductScore.objects.unscoped().get(model=model, day=DAY + timedelta(days=60))
    assert (empty.total_points, empty.median_points, empty.mean_points, empty.active_users) == (0, 0, 0, 0)


def _snapshot(model):
    users = list(
        UserScore.objects.unscoped()
        .filter(model=model)
        .order_by("day", "end_user_id")
        .values_list("day", "end_user_id", "points", "breadth", "active_days", "percentile", "tier")
    )
    accounts = list(
        AccountScore.objects.unscoped()
        .filter(model=model)
        .order_by("day", "account_id")
        .values_list("day", "account_id", "points", "active_users", "seats", "percentile", "tier")
    )
    product = list(
        ProductScore.objects.unscoped()
        .filter(model=model)
        .order_by("day")
        .values_list(
            "day",
            "total_points",
            "mean_points",
            "median_points",
            "active_users",
            "engaged_users",
            "high_users",
            "medium_users",
            "low_users",
            "new_users",
            "dormant_users",
        )
    )
    return users, accounts, product


def test_recompute_gives_identical_rows(tenant, acts):
    account = make_account(tenant, "acme")
    users = make_users(tenant, *[f"u{i}" for i in range(12)], account=account)
    add_counts(
        tenant,
        [
            (u, act, days_ago, 1 + (i * 7 + days_ago) % 5)
            for i, u in enumerate(users.values())
            for days_ago in range(0, 20, 3)
            for act in (acts["Logged in"], acts["Shared photo"])
        ],
    )
    model = make_model(tenant, {acts["Logged in"]: 1, acts["Shared photo"]: 7}, half_life_days=5, daily_cap=3)
    for offset in range(3):
        engine.compute_day(model, DAY - timedelta(days=offset))
    first = _snapshot(model)
    for offset in range(3):
        engine.compute_day(model, DAY - timedelta(days=offset))
    assert _snapshot(model) == first
    assert len(first[0]) == 36 and len(first[2]) == 3


def test_days_are_tenant_days_from_the_rollup(tenant, acts):
    # The rollup's `day` is already the tenant's local day: the engine never re-buckets by UTC.
    users = make_users(tenant, "u1")
    add_counts(tenant, [(users["u1"], acts["Logged in"], date(2026, 3, 31), 1)])
    model = make_model(tenant, {acts["Logged in"]: 1}, window_days=1)
    engine.compute_day(model, date(2026, 3, 31))
    engine.compute_day(model, date(2026, 3, 30))
    assert user_rows(model, date(2026, 3, 31))["u1"].points == 1
    assert user_rows(model, date(2026, 3, 30))["u1"].tier == "dormant"
