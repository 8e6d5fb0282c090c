"""The range engine against the per-day engine: compute_days must write exactly compute_day's rows.

compute_day (one day, its window re-read) is the oracle. Each case builds a random world (users
in several accounts, memberships starting and ending, dormant users, imported history, users first
seen inside the range, rollup rows with a zero count) and a random model (cap, half-life, window,
tier rule and thresholds, grace period, roll-up, falling rule, trend days), scores a set of days
both ways and compares every column of every user, account and product row.
"""

import random
from datetime import UTC, datetime, time, timedelta

import pytest

from events.models import AccountMembership, DailyActivityCount
from scoring import engine, hooks
from scoring.models import AccountRollup, AccountScore, ProductScore, TierMethod, UserScore
from tests.factories import EndUserFactory

from .conftest import DAY, LONG_AGO, make_account, make_model

pytestmark = pytest.mark.django_db

HISTORY = 130  # days of rollup before DAY


def snapshot(model):
    """Every column of every row the engine wrote for `model`, but the id."""
    out = []
    for table in (UserScore, AccountScore, ProductScore):
        fields = [f.attname for f in table._meta.concrete_fields if f.attname != "id"]
        out.append(sorted(table.objects.unscoped().filter(model=model).values_list(*fields), key=repr))
    return out


def wipe(model):
    for table in (UserScore, AccountScore, ProductScore):
        table.objects.unscoped().filter(model=model).delete()


def at(day, hour=0):
    return datetime.combine(day, time(hour), tzinfo=UTC)


def build_world(tenant, acts, rng: random.Random):
    activities = list(acts.values())
    accounts = [make_account(tenant, f"acct-{i}") for i in range(rng.randint(2, 4))]
    users = []
    for i in range(rng.randint(8, 22)):
        kind = rng.random()
        if kind < 0.5:
            first_seen = LONG_AGO
        elif kind < 0.85:  # first seen during the history or the scored range (new users, grace period)
            first_seen = at(DAY - timedelta(days=rng.randint(-2, HISTORY)), rng.randint(0, 23))
        else:  # imported history: rollup rows before first_seen_at, or first seen after the range
            first_seen = at(DAY + timedelta(days=rng.randint(1, 5)), rng.randint(0, 23))
        users.append(EndUserFactory(tenant=tenant, user_id=f"u{i}", first_seen_at=first_seen))
    memberships = []
    for user in users:
        for account in rng.sample(accounts, rng.choice([0, 1, 1, 1, 2])):
            start = at(DAY - timedelta(days=rng.randint(-3, HISTORY)), rng.randint(0, 23))
            if rng.random() < 0.3:
                start = LONG_AGO
            end = None
            if rng.random() < 0.3:
                end = start + timedelta(days=rng.randint(0, 60), hours=rng.randint(0, 23))
            memberships.append(
                AccountMembership(tenant=tenant, end_user=user, account=account, started_at=start, ended_at=end)
            )
    AccountMembership.objects.bulk_create(memberships)
    rows = []
    for user in users:
        style = rng.random()
        if style < 0.15:
            continue  # never active: dormant from first seen
        density = rng.choice([0.05, 0.2, 0.5, 0.9])
        # Some users stop, some start late: compared days and the falling rule see changes.
        start, stop = sorted(rng.sample(range(-1, HISTORY), 2)) if style < 0.6 else (-1, HISTORY)
        for back in range(start, stop + 1):
            for activity in activities:
                if rng.random() < density / 2:
                    count = rng.choice([0, 1, 1, 2, 3, 7, 20])
                    rows.append(
                        DailyActivityCount(
                            tenant=tenant, end_user=user, activity=activity, day=DAY - timedelta(days=back),
                            count=count,
                        )
                    )
    DailyActivityCount.objects.bulk_create(rows)
    return users


def random_model(tenant, acts, rng: random.Random):
    method = rng.choice([TierMethod.PERCENTILE, TierMethod.POINTS])
    if method == TierMethod.PERCENTILE:
        medium = rng.choice([10, 25, 40, 50.5])
        high = rng.choice([medium + 5, 80, 90, 100])
    else:
        medium = rng.choice([1, 5, 12.5, 40])
        high = medium + rng.choice([1, 10, 50, 200])
    points = {a: rng.choice([0, 1, 3, 5, 10, 40]) for a in acts.values()}
    points[rng.choice(list(acts.values()))] = rng.choice([1, 7, 25])  # at least one activity counts
    return make_model(
        tenant,
        points,
        window_days=rng.choice([1, 2, 5, 7, 14, 30, 45]),
        daily_cap=rng.choice([None, None, 1, 3, 10]),
        half_life_days=rng.choice([None, None, 1, 3, 7, 30, 200]),
        tier_method=method,
        tier_medium=medium,
        tier_high=high,
        grace_days=rng.choice([0, 1, 3, 14, 60]),
        account_rollup=rng.choice(list(AccountRollup.values)),
        trend_days=rng.choice([7, 10, 30, 45, 90]),
        falling_drop_pct=rng.choice([None, 10, 50, 100]),
    )


def scored_days(rng: random.Random):
    last = DAY - timedelta(days=rng.choice([0, 0, 3]))
    span = rng.choice([2, 8, 20])
    days = [last - timedelta(days=i) for i in range(span)]
    if rng.random() < 0.4:  # not contiguous (a chunk whose other days were done already)
        days = sorted(rng.sample(days, max(1, span // 2)))
    return sorted(days)


def per_day(model, days):
    for day in days:
        engine.compute_day(model, day)
    return snapshot(model)


@pytest.mark.parametrize("seed", range(16))
def test_range_engine_writes_the_per_day_engines_rows(tenant, acts, seed):
    rng = random.Random(seed)
    build_world(tenant, acts, rng)
    for _ in range(3):
        model = random_model(tenant, acts, rng)
        days = scored_days(rng)
        expected = per_day(model, days)
        assert expected[0] and len(expected[2]) == len(days)
        wipe(model)
        results = engine.compute_days(model, days)
        assert snapshot(model) == expected, (seed, model.__dict__)
        assert [r.day for r in results] == days
        # Each day's row counts, as compute_day reports them.
        for result in results:
            assert result.users == UserScore.objects.unscoped().filter(model=model, day=result.day).count()
            assert result.accounts == AccountScore.objects.unscoped().filter(model=model, day=result.day).count()


def test_a_recompute_of_a_sub_range_gives_identical_rows(tenant, acts):
    rng = random.Random(99)
    build_world(tenant, acts, rng)
    model = random_model(tenant, acts, rng)
    days = [DAY - timedelta(days=i) for i in range(15)][::-1]
    engine.compute_days(model, days)
    reference = snapshot(model)
    engine.compute_days(model, days[4:9])
    engine.compute_days(model, days[-1:])
    assert snapshot(model) == reference


def test_a_range_runs_the_day_hooks_once_after_its_rows(tenant, acts):
    rng = random.Random(5)
    build_world(tenant, acts, rng)
    model = random_model(tenant, acts, rng)
    days = [DAY - timedelta(days=i) for i in range(3)][::-1]
    seen = []

    def hook(model_, hook_days):
        seen.append((list(hook_days), ProductScore.objects.unscoped().filter(model=model_, day__in=hook_days).count()))

    hooks.register_day_hook(hook)
    try:
        engine.compute_days(model, days)
    finally:
        hooks._day_hooks.remove(hook)
    assert seen == [(days, 3)]


def test_a_run_in_ranges_records_each_day_as_a_run_of_single_days_does(tenant, acts, settings):
    from scoring import services
    from scoring.models import RunKind, RunStatus

    rng = random.Random(7)
    build_world(tenant, acts, rng)
    model = random_model(tenant, acts, rng)
    first = DAY - timedelta(days=9)

    def run_with(range_days):
        settings.SCORING_RANGE_DAYS = range_days
        wipe(model)
        run = services.run_create(model=model, kind=RunKind.RECOMPUTE, first_day=first, last_day=DAY)
        seen = []
        services.run_claim(run.pk)
        services.run_compute_days(run.pk, services.run_days(run), on_day=lambda r, result: seen.append(result))
        run.refresh_from_db()
        assert run.status == RunStatus.SUCCEEDED and run.days_done == 10
        return run.day_rows, [(r.day, r.rows) for r in seen], snapshot(model)

    per_day = run_with(1)
    assert run_with(4) == per_day
    assert [day for day, _ in per_day[1]] == [first + timedelta(days=i) for i in range(10)]


def test_a_half_life_range_too_long_for_one_float_grid_is_cut_and_stays_exact(tenant, acts, monkeypatch):
    # The grid carries 2 ** (age / half-life): a range whose days span more doublings than the
    # limit is scored in parts (lowered here so that a short range needs three).
    monkeypatch.setattr(engine, "_MAX_DECAY_EXPONENT", 110)
    rng = random.Random(3)
    build_world(tenant, acts, rng)
    model = make_model(
        tenant, {a: 1 + i for i, a in enumerate(acts.values())}, half_life_days=1, window_days=14, trend_days=45
    )
    days = [DAY - timedelta(days=i) for i in range(120)][::-1]
    parts = engine._range_spans(model, days)
    assert len(parts) == 3 and [d for part in parts for d in part] == days
    expected = per_day(model, days)
    wipe(model)
    engine.compute_days(model, days)
    assert snapshot(model) == expected


def test_a_range_skips_the_days_another_chunk_recorded_while_it_waited(tenant, acts, settings, monkeypatch):
    """The run is read again under the range's locks: a day done meanwhile by a duplicate chunk
    (a resumed one beside a live worker) is left out of the range, not computed twice."""
    from scoring import services
    from scoring.models import RunKind, RunStatus

    settings.SCORING_RANGE_DAYS = 3
    build_world(tenant, acts, random.Random(11))
    model = random_model(tenant, acts, random.Random(12))
    days = [DAY - timedelta(days=i) for i in range(5)][::-1]
    per_day(model, days)
    reference = snapshot(model)
    wipe(model)
    computed = []
    real_day, real_days = engine.compute_day, engine.compute_days
    monkeypatch.setattr(engine, "compute_day", lambda m, d: computed.append(d) or real_day(m, d))
    monkeypatch.setattr(engine, "compute_days", lambda m, ds: computed.extend(ds) or real_days(m, ds))
    run = services.run_create(model=model, kind=RunKind.RECOMPUTE, first_day=days[0], last_day=days[-1])
    services.run_claim(run.pk)

    def the_other_chunk_takes_day_four(current, result):
        if result.day == days[0]:
            services.run_compute_days(run.pk, [days[3]])

    services.run_compute_days(run.pk, days, on_day=the_other_chunk_takes_day_four)

    assert sorted(computed) == days  # every day once: day four by the other chunk only
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.days_done == 5
    assert snapshot(model) == reference
