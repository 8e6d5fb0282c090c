"""Score truth: the falling flag judged on held-out days, and the fading warning read from it (issue 16, item 5)."""

import random
from datetime import date, timedelta

import numpy as np
import pytest

from insights import truth
from scoring import engine
from scoring import services as scoring_services
from scoring.models import UserScore

from .test_truth import _rows, world

HORIZON = 30
DAYS = 200


def fading_world(seed=1, users=240):
    """Steady light, medium and heavy users stay. Faders use the product every day, then thin out to
    every fourth day for five weeks and leave: while they fade their points sit among the steady
    users' — only the fall tells them apart."""
    rng = random.Random(seed)
    rows = {}
    for i in range(users):
        kind = ("light", "medium", "heavy", "fader", "fader")[i % 5]
        if kind == "fader":
            start = rng.randint(0, DAYS - 20)
            days = [d for d in range(start)] + [d for d in range(start, start + 35) if (d - start) % 4 == 0]
        else:
            every = {"light": 6, "medium": 3, "heavy": 1}[kind]
            offset = rng.randint(0, every - 1)
            days = range(offset, DAYS, every)
        rows[f"{kind}-{i}"] = [("Used", d, 1) for d in days if d < DAYS]
    return rows


def stopping_world(seed=1, users=300):
    """Stayers use the product on most days. Leavers stop at once (heavy and light ones alike): by the
    time their points have halved they are below every stayer, so the flag names users the points
    already rank last."""
    rng = random.Random(seed)
    rows = {}
    for i in range(users):
        kind = ("daily", "most-days", "heavy-stop", "light-stop")[i % 4]
        if kind.endswith("stop"):
            stop = rng.randint(10, DAYS)
            every = 1 if kind == "heavy-stop" else 5
            days = range(rng.randint(0, every - 1), stop, every)
        else:
            days = [d for d in range(DAYS) if kind == "daily" or rng.random() < 0.7]
        rows[f"{kind}-{i}"] = [("Used", d, 1) for d in days]
    return rows


def draft(tenant, acts, **fields):
    model = scoring_services.scoring_model_create_draft(tenant=tenant)
    return scoring_services.scoring_model_update(model=model, points={acts["Used"].pk: 10}, window_days=30,
                                                 daily_cap=None, half_life_days=None, **fields)


def split(tenant, window=30):
    history = truth.load_history(tenant)
    train, judged = truth.split_days(truth.snapshot_days(history, window=window, horizon=HORIZON), HORIZON)
    return history, train[-truth.MAX_FLAG_TRAIN_DAYS:], judged


def test_the_flag_adds_where_fading_users_leave(tenant):
    _, acts, _ = world(tenant, fading_world(), history_days=DAYS)
    model = draft(tenant, acts, falling_drop_pct=50, trend_days=30)
    history, train, judged = split(tenant)
    before = _rows()

    bt = truth.backtest(model, horizon=HORIZON, days=judged, history=history, train_days=train)

    assert _rows() == before  # the train days were computed and rolled back too
    check = bt.falling_check
    print(check)
    assert check.level == "adds", check.headline
    assert check.falling.share < check.steady.share
    assert check.combined_auc >= check.score_auc + truth.FLAG_GAIN and check.flag_weight < 0
    assert check.headline.startswith("The falling flag adds to the points")


def test_the_flag_adds_nothing_where_the_points_already_rank_leavers_last(tenant):
    _, acts, _ = world(tenant, stopping_world(), history_days=DAYS)
    model = draft(tenant, acts, falling_drop_pct=50, trend_days=30)
    history, train, judged = split(tenant)

    check = truth.backtest(model, horizon=HORIZON, days=judged, history=history, train_days=train).falling_check

    print(check)
    assert check.level == "nothing", check.headline
    assert check.falling.n >= truth.FLAG_MIN and check.falling.share < check.steady.share
    assert abs(check.gain) < truth.FLAG_GAIN
    assert check.headline.startswith("The falling flag adds nothing that counts beyond the points")


# --- Out of time --------------------------------------------------------------------------------------


def _flag_day(day, rng, n=200, falling_stays=0.2, falling_share=0.2):
    points = rng.integers(0, 300, size=n).astype(float)
    falling = rng.random(n) < falling_share
    stayed = rng.random(n) < np.where(falling, falling_stays, 0.3 + points / 500)
    return truth.FlagDay(day, points, falling, stayed)


def test_the_verdict_says_when_the_flag_points_the_other_way_or_is_too_thin():
    rng = np.random.default_rng(8)
    first = date(2026, 1, 1)

    def days(**kw):
        train = [_flag_day(first + timedelta(days=7 * i), rng, **kw) for i in range(3)]
        return train, [_flag_day(first + timedelta(days=14 + HORIZON + 7 * i), rng, **kw) for i in range(4)]

    reversed_ = truth.compare_falling(*days(falling_stays=0.95), horizon=HORIZON, trend_days=30, drop_pct=50)
    assert reversed_.level == "reversed" and reversed_.flag_weight > 0, reversed_.headline
    assert reversed_.headline.startswith("The falling flag tells something, but not decline")
    thin = truth.compare_falling(*days(falling_share=0.005), horizon=HORIZON, trend_days=30, drop_pct=50)
    assert thin.level == "thin" and thin.combined_auc is None
    assert thin.headline.startswith(f"Too few falling users to judge the flag: {thin.falling.n} falling snapshots")


def test_the_flag_is_judged_only_on_days_it_was_not_weighed_on():
    rng = np.random.default_rng(3)
    first = date(2026, 1, 1)
    train = [_flag_day(first + timedelta(days=7 * i), rng) for i in range(3)]
    judged = [_flag_day(first + timedelta(days=14 + HORIZON + 7 * i), rng) for i in range(4)]
    base = truth.compare_falling(train, judged, horizon=HORIZON, trend_days=30, drop_pct=50)
    assert base.eval_days == [j.day for j in judged] and base.level in ("adds", "nothing")

    # Other outcomes on the weighed days move the weight, never what is judged.
    flipped = [truth.FlagDay(t.day, t.points, t.falling, ~t.stayed) for t in train]
    other = truth.compare_falling(flipped, judged, horizon=HORIZON, trend_days=30, drop_pct=50)
    assert other.flag_weight != base.flag_weight
    assert (other.falling, other.steady, other.score_auc, other.demoted_auc) == \
        (base.falling, base.steady, base.score_auc, base.demoted_auc)
    # Other outcomes on the judged days move the judgement, never the weight.
    turned = [truth.FlagDay(j.day, j.points, j.falling, ~j.stayed) for j in judged]
    again = truth.compare_falling(train, turned, horizon=HORIZON, trend_days=30, drop_pct=50)
    assert again.flag_weight == base.flag_weight and again.falling != base.falling
    # The cohorts count the judged days only: falling snapshots and how many of them stayed.
    assert base.falling.n == sum(int(j.falling.sum()) for j in judged)
    assert base.falling.stayed == sum(int((j.falling & j.stayed).sum()) for j in judged)

    # A weighed day whose outcome (day + horizon) falls after the first judged day is refused.
    late = _flag_day(judged[0].day - timedelta(days=HORIZON - 1), rng)
    with pytest.raises(ValueError, match="weighed only on days whose outcome was known"):
        truth.compare_falling([*train, late], judged, horizon=HORIZON, trend_days=30, drop_pct=50)
    off = truth.compare_falling(train, judged, horizon=HORIZON, trend_days=30, drop_pct=None)
    assert off.level == "off" and off.combined_auc is None


@pytest.fixture
def eager(settings):
    from engagement_site.celery import app

    was = app.conf.task_always_eager
    app.conf.task_always_eager = True  # publishing enqueues its backfill: run it here, never on a broker
    yield
    app.conf.task_always_eager = was


def test_the_report_judges_the_published_flag_on_the_fits_held_out_days(client, tenant, owner, eager):
    _, acts, _ = world(tenant, fading_world(), history_days=DAYS)
    v1 = draft(tenant, acts, falling_drop_pct=50, trend_days=30)
    scoring_services.scoring_model_publish(model=v1, backfill_days=1)

    report = truth.score_truth(tenant, horizon=HORIZON)

    fit = report.fit
    assert fit.ok, fit.readiness.message
    for column in (report.published, report.fit_backtest):
        check = column.falling_check
        assert check.eval_days == fit.eval_days == [d.day for d in column.days]
        assert check.train_days == fit.train_days[-truth.MAX_FLAG_TRAIN_DAYS:]
        assert max(check.train_days) + timedelta(days=HORIZON) <= min(check.eval_days)
        assert not column.scores and not column.falling  # the cached report keeps no user's rows
    assert report.published.falling_check.level == "adds", report.published.falling_check.headline
    assert report.survey_backtest is None

    client.force_login(owner)
    text = client.get(f"/t/{tenant.slug}/insights/truth/?horizon={HORIZON}").content.decode()
    assert "The falling flag: does it tell more than the points?" in text
    assert f"Published {v1}:</strong> The falling flag adds to the points" in text


# --- The fading warning reads the stored flag ---------------------------------------------------------


def _fading_warning(bt):
    return next((w for w in bt.verdict.warnings if w.startswith("Fading users")), None)


def test_the_fading_warning_reads_the_versions_falling_flag(tenant):
    _, acts, _ = world(tenant, fading_world(seed=2), history_days=DAYS)
    history, _, judged = split(tenant)
    half = draft(tenant, acts, falling_drop_pct=50, trend_days=30)
    for day in judged:  # stored, as a run would
        engine.compute_day(half, day)
    bt = truth.backtest(half, horizon=HORIZON, days=judged, history=history)
    warning = _fading_warning(bt)
    assert warning is not None and "by at least 50% in 30 days (this version's falling flag)" in warning
    members = {d: set(history.users[truth.snapshot(history, d, window=30, horizon=HORIZON).members].tolist())
               for d in judged}
    flagged = UserScore.objects.for_tenant(tenant).filter(model=half, day__in=judged, falling=True)
    flagged = flagged.values_list("day", "end_user_id")
    expected = sum(1 for day, u in flagged if u in members[day])
    assert warning.startswith(f"Fading users: {expected} had their points fall")

    # The stored flag is what is read: clear it and the warning goes.
    UserScore.objects.for_tenant(tenant).filter(model=half, day__in=judged).update(falling=False)
    assert _fading_warning(truth.backtest(half, horizon=HORIZON, days=judged, history=history)) is None

    # Another version's setting, computed and rolled back: the warning follows it.
    steep = draft(tenant, acts, falling_drop_pct=80, trend_days=30)
    steep_warning = _fading_warning(truth.backtest(steep, horizon=HORIZON, days=judged, history=history))
    assert "by at least 80% in 30 days" in steep_warning
    assert int(steep_warning.split()[2]) < expected
    assert not UserScore.objects.for_tenant(tenant).filter(model=steep).exists()
    # No falling rule: the warning's own fall (more than half), over the version's trend days.
    no_flag = draft(tenant, acts, falling_drop_pct=None, trend_days=21)
    fallback = _fading_warning(truth.backtest(no_flag, horizon=HORIZON, days=judged, history=history))
    assert fallback is not None and "by more than 50% in 21 days and" in fallback
    assert "falling flag" not in fallback
