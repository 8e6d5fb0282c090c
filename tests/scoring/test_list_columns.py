"""The list columns stored with each snapshot (change over 7 / 30 days, last seen): computed by the
engine from the rollup, equal to an independent computation, and the same rows on every recompute."""

import random
from datetime import timedelta

import pytest

from scoring import engine
from scoring.models import AccountRollup, AccountScore, UserScore

from .conftest import DAY, add_counts, join, make_account, make_model, make_users

pytestmark = pytest.mark.django_db

FIRST = DAY - timedelta(days=9)  # the range scored and recomputed


def points_on(counts, weights, model, day) -> float:
    """docs/scoring.md's formula, in Python: Σ points × min(count, cap) × 0.5 ^ (age / half-life)."""
    total = 0.0
    for (_, activity, when), count in counts.items():
        age = (day - when).days
        if 0 <= age < model.window_days and weights.get(activity):
            times = min(count, model.daily_cap) if model.daily_cap else count
            factor = 0.5 ** (age / model.half_life_days) if model.half_life_days else 1
            total += weights[activity] * times * factor
    return round(total, 4)


def snapshot_rows(model_cls, model):
    fields = [f.name for f in model_cls._meta.fields if f.name != "id"]
    return sorted(model_cls.objects.for_tenant(model.tenant).filter(model=model).values_list(*fields))


@pytest.fixture
def random_world(tenant, acts):
    rng = random.Random(18)
    users = make_users(tenant, *[f"u{i}" for i in range(12)])
    acme, globex = make_account(tenant, "acme"), make_account(tenant, "globex")
    join(acme, *[users[f"u{i}"] for i in range(6)])
    join(globex, *[users[f"u{i}"] for i in range(4, 9)])  # u4, u5 in both
    counts, rows = {}, []
    for user in users.values():
        for back in rng.sample(range(-2, 75), 18):
            activity, count = rng.choice(list(acts.values())), rng.randint(1, 15)
            counts[(user.pk, activity.pk, DAY - timedelta(days=back))] = count
            rows.append((user, activity, back, count))
    add_counts(tenant, rows)
    return {"users": users, "acts": acts, "counts": counts, "accounts": {"acme": acme, "globex": globex}}


@pytest.mark.parametrize(
    "fields",
    [
        {"window_days": 30, "daily_cap": None, "half_life_days": None},
        {"window_days": 14, "daily_cap": 5, "half_life_days": 7},
        {"window_days": 21, "daily_cap": 3, "half_life_days": 10, "account_rollup": AccountRollup.MEAN},
        {"window_days": 30, "tier_method": "points", "tier_high": 100, "tier_medium": 20,
         "account_rollup": AccountRollup.SEATS},
        {"window_days": 30, "account_rollup": AccountRollup.SEATS, "trend_days": 14, "falling_drop_pct": 40},
        {"window_days": 10, "half_life_days": 5, "trend_days": 21, "falling_drop_pct": None},
    ],
)
def test_stored_columns_equal_an_independent_computation(tenant, random_world, fields):
    acts, counts, users = random_world["acts"], random_world["counts"], random_world["users"]
    weights = {acts["Logged in"].pk: 1, acts["Shared photo"].pk: 20, acts["Invited friend"].pk: 50}
    model = make_model(tenant, {a: weights.get(a.pk, 0) for a in acts.values()}, **fields)
    for back in range(10):
        engine.compute_day(model, DAY - timedelta(days=back))
    rows = {r.end_user_id: r for r in UserScore.objects.for_tenant(tenant).filter(model=model, day=DAY)}
    assert set(rows) == {u.pk for u in users.values()}
    for user in users.values():
        own = {key: c for key, c in counts.items() if key[0] == user.pk}
        now = points_on(own, weights, model, DAY)
        row = rows[user.pk]
        assert row.points == pytest.approx(now, abs=1e-9)
        assert row.change_7 == pytest.approx(round(now - points_on(own, weights, model, DAY - timedelta(7)), 4))
        assert row.change_30 == pytest.approx(round(now - points_on(own, weights, model, DAY - timedelta(30)), 4))
        assert row.last_seen == max(when for (_, _, when) in own if when <= DAY)
        then = points_on(own, weights, model, DAY - timedelta(model.trend_days))
        assert row.trend_points == pytest.approx(then, abs=1e-9)
        drop = model.falling_drop_pct
        assert row.falling == bool(drop and row.tier != "new" and then > 0 and row.points <= then * (1 - drop / 100))
        # The same as the snapshot the engine wrote for the day 7 days earlier.
        before = UserScore.objects.for_tenant(tenant).get(model=model, day=DAY - timedelta(7), end_user=user)
        assert row.change_7 == pytest.approx(round(row.points - before.points, 4), abs=1e-9)
    members = {"acme": range(6), "globex": range(4, 9)}
    for account in AccountScore.objects.for_tenant(tenant).filter(model=model, day=DAY).select_related("account"):
        seats = [rows[users[f"u{i}"].pk] for i in members[account.account.group_id]]
        assert account.last_seen == max(r.last_seen for r in seats)
        drop, then = model.falling_drop_pct, account.trend_points
        assert account.falling == bool(drop and account.tier != "new" and then > 0
                                       and account.points <= then * (1 - drop / 100))
        if model.account_rollup == AccountRollup.SUM:
            assert then == pytest.approx(sum(r.trend_points for r in seats), abs=1e-6)
        if model.account_rollup == AccountRollup.SUM:
            assert account.change_7 == pytest.approx(round(sum(r.change_7 for r in seats), 4), abs=1e-6)
        if model.account_rollup == AccountRollup.MEAN:
            then = [r.points - r.change_30 for r in seats]
            active = [p for p in then if p > 0]
            expected = account.points - (sum(active) / len(active) if active else 0)
            assert account.change_30 == pytest.approx(round(expected, 4), abs=1e-6)


def test_a_recompute_of_any_range_gives_identical_rows(tenant, random_world):
    acts = random_world["acts"]
    model = make_model(tenant, {acts["Logged in"]: 2, acts["Shared photo"]: 15}, daily_cap=4, half_life_days=9,
                       window_days=20)
    for back in range(10):
        engine.compute_day(model, DAY - timedelta(days=back))
    users, accounts = snapshot_rows(UserScore, model), snapshot_rows(AccountScore, model)
    # Any sub-range again, in another order, and a day alone: no row depends on an older snapshot.
    for back in [3, 9, 0, 5, 4]:
        engine.compute_day(model, DAY - timedelta(days=back))
    assert snapshot_rows(UserScore, model) == users
    assert snapshot_rows(AccountScore, model) == accounts
    UserScore.objects.for_tenant(tenant).filter(model=model).exclude(day=DAY).delete()
    engine.compute_day(model, DAY)
    assert [r for r in snapshot_rows(UserScore, model) if r[2] == DAY] == [r for r in users if r[2] == DAY]


def test_falling_flags_a_user_whose_points_fell_by_the_models_share(tenant, acts):
    users = make_users(tenant, "fading", "steady", "newbie")
    login = acts["Logged in"]
    rows = [(users["fading"], login, back, 10) for back in range(30, 40)]  # 100 points 30 days ago
    rows += [(users["fading"], login, back, 10) for back in range(0, 4)]  # 40 now: -60 %
    rows += [(users["steady"], login, back, 10) for back in range(0, 40, 2)]  # 50 then, 50 now
    add_counts(tenant, rows)
    model = make_model(tenant, {login: 1}, window_days=10, trend_days=30, falling_drop_pct=50)
    engine.compute_day(model, DAY)
    got = {r.end_user.user_id: r for r in UserScore.objects.for_tenant(tenant).filter(model=model, day=DAY)
           .select_related("end_user")}
    assert (got["fading"].points, got["fading"].trend_points, got["fading"].falling) == (40, 100, True)
    assert (got["steady"].points, got["steady"].trend_points, got["steady"].falling) == (50, 50, False)
    assert "newbie" not in got or not got["newbie"].falling  # never active: nothing to fall from
    model.falling_drop_pct = 70  # -60 % is not a fall of 70 %
    model.save()
    engine.compute_day(model, DAY)
    assert not UserScore.objects.for_tenant(tenant).get(model=model, day=DAY, end_user=users["fading"]).falling


def test_the_falling_rule_travels_in_the_model_file(tenant, acts):
    from django.core.exceptions import ValidationError

    from scoring import services
    from scoring.modelfile import model_to_dict

    model = make_model(tenant, {acts["Logged in"]: 1}, trend_days=14, falling_drop_pct=None)
    exported = model_to_dict(model)
    assert exported["falling"] == {"trend_days": 14, "drop_pct": None}
    imported = services.scoring_model_import(tenant=tenant, raw=exported)
    assert (imported.trend_days, imported.falling_drop_pct) == (14, None)
    assert model_to_dict(imported) == exported
    older = {k: v for k, v in exported.items() if k != "falling"}  # a file from before the flag
    assert services.scoring_model_import(tenant=tenant, raw=older).falling_drop_pct == 50
    with pytest.raises(ValidationError, match="falling.drop_pct"):
        services.scoring_model_import(tenant=tenant, raw={**exported, "falling": {"trend_days": 14, "drop_pct": 5}})
