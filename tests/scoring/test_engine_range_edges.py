"""Edge cases of the range engine against the per-day engine (the oracle), beyond the random worlds
of test_engine_range.py: heavy uncapped histories under a half-life, non-contiguous days, users
first seen or imported inside the range in a time zone far from UTC, rollup rows of activities
outside the model, a single activity, a one-day window."""

from datetime import UTC, datetime, time, timedelta

import pytest

from scoring import engine
from tests.factories import ActivityFactory, EndUserFactory

from .conftest import DAY, LONG_AGO, add_counts, join, make_account, make_model
from .test_engine_range import per_day, snapshot, wipe

pytestmark = pytest.mark.django_db


def both_ways(model, days):
    expected = per_day(model, days)
    wipe(model)
    engine.compute_days(model, days)
    got = snapshot(model)
    return got, expected


def diff_rows(got, expected):
    return [sorted(set(g) ^ set(e), key=repr)[:6] for g, e in zip(got, expected, strict=True)]


@pytest.mark.parametrize("half_life", [30, 200])
def test_a_heavy_old_history_under_a_half_life_leaves_later_days_exact(tenant, acts, half_life):
    # An automated end user: fifty million page views a day for a week, three months before the
    # range's last days, then a few logins. The per-day engine never reads that week for the last
    # days (outside every window and compared window); a running sum over the whole grid carries
    # its size into their points as float error, which the 4-decimal rounding does not hide.
    view, login = acts["Viewed page"], acts["Logged in"]
    users = [EndUserFactory(tenant=tenant, user_id=f"bot{i}", first_seen_at=LONG_AGO) for i in range(6)]
    rows = []
    for i, user in enumerate(users):
        for back in range(110, 118):
            rows.append((user, view, back, 50_000_000 - 7919 * back - i))
        for back in range(0, 60):
            if (back + i) % 3 == 0:
                rows.append((user, login, back, 1 + (back * 7 + i) % 5))
    add_counts(tenant, rows)
    model = make_model(
        tenant, {view: 40, login: 7}, half_life_days=half_life, window_days=14, daily_cap=None, trend_days=45
    )
    days = [DAY - timedelta(days=i) for i in range(60)][::-1]
    expected = per_day(model, days[-10:])
    wipe(model)
    engine.compute_days(model, days)
    got = snapshot(model)
    late = [[row for row in table if row[2] >= days[-10]] for table in got]
    assert late == expected, diff_rows(late, expected)


def at(day, hour, tz):
    return datetime.combine(day, time(hour), tzinfo=tz)


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kathmandu"])
@pytest.mark.parametrize("grace", [0, 1, 3])
def test_users_first_seen_or_imported_inside_a_range_far_from_utc(tenant, acts, zone, grace):
    from zoneinfo import ZoneInfo

    tenant.time_zone = zone
    tenant.save(update_fields=["time_zone"])
    tz = ZoneInfo(zone)
    login, share, view = acts["Logged in"], acts["Shared photo"], acts["Viewed page"]
    other = ActivityFactory(tenant=tenant, name="Not in the model", first_seen_at=LONG_AGO)
    account = make_account(tenant, "acme")
    rows, users = [], []
    days = [DAY - timedelta(days=b) for b in (9, 5, 2, 1)]
    for i, hour in enumerate([0, 1, 11, 12, 13, 22, 23]):
        for j, offset in enumerate([-1, 0, 1, 3, 7, 9, 12]):
            first_seen = at(DAY - timedelta(days=offset), hour, tz)
            user = EndUserFactory(tenant=tenant, user_id=f"u{i}-{j}", first_seen_at=first_seen)
            users.append(user)
            kind = (i + j) % 5
            if kind == 0:  # active from the day it was first seen
                rows += [(user, login, b, 1 + b % 3) for b in range(0, offset + 1)]
            elif kind == 1:  # imported history: rollup rows long before first_seen_at
                rows += [(user, share, b, 2) for b in range(offset + 20, offset + 40, 4)]
            elif kind == 2:  # activities outside the model or at 0 points beside one that counts
                rows += [(user, other, max(offset - 1, 0), 5), (user, view, offset + 2, 0)]
                rows += [(user, view, max(offset - 2, 0), 3), (user, login, max(offset - 2, 0), 1)]
            elif kind == 3:  # a zero-count row only, before being first seen
                rows += [(user, login, offset + 3, 0)]
    add_counts(tenant, rows)
    join(account, *users[::3], at=at(DAY - timedelta(days=4), 5, tz))
    for window in (1, 7):
        model = make_model(
            tenant, {login: 3, share: 1, view: 0}, window_days=window, grace_days=grace, trend_days=7,
            half_life_days=None,
        )
        got, expected = both_ways(model, days)
        assert got == expected, diff_rows(got, expected)


def test_the_longest_window_and_trend_under_a_half_life(tenant, acts):
    # 365 window days (each weighed by its own factor on SQLite) and 90 trend days.
    import random

    from .test_engine_range import build_world

    build_world(tenant, acts, random.Random(21))
    model = make_model(
        tenant, {a: 1 + i for i, a in enumerate(acts.values())}, half_life_days=7, window_days=365, trend_days=90,
        daily_cap=3,
    )
    days = [DAY - timedelta(days=i) for i in range(0, 40, 3)][::-1]
    got, expected = both_ways(model, days)
    assert got == expected, diff_rows(got, expected)


@pytest.mark.parametrize("half_life", [None, 1, 7])
def test_a_model_with_no_activity_counting_and_a_world_without_rollup(tenant, acts, half_life):
    # Every activity at 0 points (nobody scores, everyone seen is dormant), then one activity alone,
    # first before any rollup row exists, then with rows of the other activities only.
    login, share = acts["Logged in"], acts["Shared photo"]
    EndUserFactory(tenant=tenant, user_id="early", first_seen_at=LONG_AGO)
    EndUserFactory(tenant=tenant, user_id="late", first_seen_at=at(DAY - timedelta(days=2), 23, UTC))
    days = [DAY - timedelta(days=b) for b in (6, 3, 2, 0)]
    zero = make_model(tenant, {a: 0 for a in acts.values()}, half_life_days=half_life, grace_days=3)
    lone = make_model(tenant, {login: 5}, half_life_days=half_life, grace_days=3, window_days=1)
    for model in (zero, lone):
        got, expected = both_ways(model, days)
        assert got == expected, diff_rows(got, expected)
    user = EndUserFactory(tenant=tenant, user_id="sharer", first_seen_at=LONG_AGO)
    add_counts(tenant, [(user, share, b, 4) for b in range(0, 30, 2)])
    for model in (zero, lone):
        got, expected = both_ways(model, days)
        assert got == expected, diff_rows(got, expected)
    assert {row[8] for row in got[0]} == {"dormant"}


@pytest.mark.django_db(transaction=True)
def test_overlapping_ranges_and_lone_days_at_once_never_deadlock_nor_interleave(postgres, tenant, acts):
    # Ranges given in any order, overlapping each other and a lone day: each takes its days' locks
    # ascending, so they queue instead of deadlocking, and the rows are one clean computation's.
    import random
    import threading

    from django.db import connection

    from accounts import rls

    from .test_engine_range import build_world

    build_world(tenant, acts, random.Random(8))
    model = make_model(tenant, {a: 2 + i for i, a in enumerate(acts.values())}, half_life_days=5, grace_days=3)
    days = [DAY - timedelta(days=b) for b in range(8)][::-1]
    reference = per_day(model, days)
    jobs = [days[6::-1], days[2:], days[1::2], [days[4]], days[::-1]]
    errors, barrier = [], threading.Barrier(len(jobs))

    def worker(job):
        try:
            barrier.wait()
            with rls.session_tenant(tenant):
                for _ in range(3):
                    if len(job) == 1:
                        engine.compute_day(model, job[0])
                    else:
                        engine.compute_days(model, job)
        except Exception as error:  # noqa: BLE001 - collected for the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert snapshot(model) == reference


def test_a_run_resumed_after_scattered_days_were_done_scores_the_gaps_in_ranges(tenant, acts, settings):
    # Days 3, 4 and 7 of ten recorded by an earlier (partial) chunk: the rest is scored as ranges of
    # non-contiguous days, and the run ends with every day's rows as the per-day engine writes them.
    import random

    from scoring import services
    from scoring.models import RunKind, RunStatus

    from .test_engine_range import build_world, random_model

    settings.SCORING_RANGE_DAYS = 4
    build_world(tenant, acts, random.Random(31))
    model = random_model(tenant, acts, random.Random(32))
    days = [DAY - timedelta(days=b) for b in range(10)][::-1]
    reference = per_day(model, days)
    wipe(model)
    run = services.run_create(model=model, kind=RunKind.RECOMPUTE, first_day=days[0], last_day=days[-1])
    services.run_claim(run.pk)
    services.run_compute_days(run.pk, [days[2], days[3], days[6]])
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.days_done == 3
    seen = []
    services.run_compute_days(run.pk, days, on_day=lambda r, result: seen.append(result.day))
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.days_done == 10
    assert seen == [d for i, d in enumerate(days) if i not in (2, 3, 6)]
    assert snapshot(model) == reference
    # Each day's rows recorded: its user and account snapshots and its product row.
    written = {day.isoformat(): 1 for day in days}
    for table in reference[:2]:
        for row in table:
            written[row[2].isoformat()] += 1
    assert run.day_rows == written
