"""Score truth (insights/truth.py): AUC, retention by activity, backtests and fitted weights."""

import random
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from events.models import AccountMembership, Activity, DailyActivityCount, EndUser
from insights import truth
from scoring import services as scoring_services
from scoring.models import AccountScore, ProductScore, UserScore

LONG_AGO = datetime(2024, 1, 1, tzinfo=UTC)


def world(tenant, days_by_user: dict[str, list[tuple[str, int, int]]], history_days: int):
    """days_by_user: user id -> [(activity name, day offset from the first day, count)]; the last day is yesterday."""
    first = tenant.today() - timedelta(days=history_days)
    names = sorted({name for rows in days_by_user.values() for name, _, _ in rows})
    acts = {n: Activity.objects.create(tenant=tenant, name=n, first_seen_at=LONG_AGO) for n in names}
    users = {uid: EndUser.objects.create(tenant=tenant, user_id=uid, first_seen_at=LONG_AGO) for uid in days_by_user}
    DailyActivityCount.objects.bulk_create(
        DailyActivityCount(tenant=tenant, end_user=users[uid], activity=acts[name], day=first + timedelta(days=d),
                           count=c)
        for uid, rows in days_by_user.items() for name, d, c in rows
    )
    return first, acts, users


# --- AUC and intervals ------------------------------------------------------------------------------


def test_auc_by_hand():
    assert truth.auc([1, 2, 3], [0, 1, 1]) == 1.0
    assert truth.auc([3, 1, 2], [0, 1, 1]) == 0.0
    # Positives {2, 3}, negatives {1, 2}: 1 + 0.5 (tie) + 1 + 1 over 4 pairs.
    assert truth.auc([1, 2, 2, 3], [0, 0, 1, 1]) == 0.875
    assert truth.auc([1, 2], [1, 1]) is None


def test_auc_matches_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(7)
    for _ in range(20):
        scores = rng.integers(0, 6, size=200).astype(float)  # many ties
        labels = rng.random(200) < 0.4
        assert truth.auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))


def test_wilson_interval():
    assert truth.wilson(5, 10) == (23.7, 76.3)
    assert truth.wilson(0, 20) == (0.0, 16.1)
    assert truth.wilson(0, 0) is None


# --- Retention by activity -----------------------------------------------------------------------------


def test_retention_by_activity_by_hand(tenant, other_tenant):
    # Snapshot day = offset 40; horizon 30: "stayed" = any event on offsets 64-70.
    first, acts, users = world(tenant, {
        "a-stays": [("Exported", 39, 1), ("Logged in", 70, 1)],
        "a-leaves": [("Exported", 35, 8), ("Exported", 36, 7), ("Logged in", 38, 1)],
        "b-stays-1": [("Logged in", 20, 1), ("Logged in", 66, 2)],
        "b-stays-2": [("Logged in", 40, 1), ("Logged in", 64, 1)],
        "gone-before": [("Exported", 5, 1), ("Logged in", 68, 1)],  # not active in the window: not counted
    }, history_days=80)
    # Another tenant with data on the same days changes nothing.
    world(other_tenant, {"x": [("Exported", 39, 1)], "y": [("Exported", 39, 1), ("Logged in", 70, 1)]}, 80)

    result = truth.retention_by_activity(tenant, day=first + timedelta(days=40), horizon=30, window=30)

    assert (result.population.n, result.population.stayed) == (4, 3)
    rows = {r.activity.name: r for r in result.rows}
    exported = rows["Exported"]
    assert (exported.did.n, exported.did.stayed, exported.did_not.n, exported.did_not.stayed) == (2, 1, 2, 2)
    assert exported.did.share == 50.0 and exported.did_not.share == 100.0 and exported.difference == -50.0
    assert exported.thin
    # a-leaves did Exported 15 times on 2 days: the heavy band (5+ a day) and the 1-3 days band.
    assert (exported.heavy.n, exported.heavy.stayed) == (1, 0)
    assert [(b.n, b.stayed) for b in exported.bands] == [(2, 1), (0, 0), (0, 0), (0, 0)]
    logged = rows["Logged in"]
    assert (logged.did.n, logged.did.stayed) == (3, 2)


# --- Fitting ---------------------------------------------------------------------------------------------


def planted(seed=3, users=160, days=150):
    """Deep users export reports weekly and stay; busy users log in 10 times a day and leave."""
    rng = random.Random(seed)
    out = {}
    for i in range(users):
        rows = []
        if i % 2 == 0:
            for d in range(days):
                if rng.random() < 0.25:
                    rows.append(("Exported report", d, 1))
                if rng.random() < 0.5:
                    rows.append(("Logged in", d, 1))
            out[f"deep-{i}"] = rows
        else:
            leave = rng.randint(40, days + 30)
            for d in range(min(days, leave)):
                rows.append(("Logged in", d, 10))
                if rng.random() < 0.03:
                    rows.append(("Exported report", d, 1))
            out[f"busy-{i}"] = rows
    return out


def test_the_fit_puts_a_deep_activity_above_log_ins(tenant, other_tenant):
    _, acts, _ = world(tenant, planted(), history_days=150)
    world(other_tenant, planted(seed=9, users=40), history_days=150)

    fit = truth.fit_weights(tenant, horizon=30)

    assert fit.ok, fit.readiness.message
    assert fit.points[acts["Exported report"].pk] > fit.points.get(acts["Logged in"].pk, 0)
    assert fit.eval_auc > 0.8
    assert max(fit.train_days) < min(fit.eval_days)
    assert set(fit.activities) <= {a.pk for a in acts.values()}  # only this tenant's activities
    # The diminishing-returns form is judged like the caps, at the chosen half-life: here it is no better
    # than counting days (a cap of 1), so the page says nothing is lost by keeping the cap.
    assert fit.log_form.half_life_days == fit.half_life_days and fit.daily_cap == 1
    assert fit.log_form.validation_auc <= fit.best_candidate.validation_auc and fit.log_form_better is False


def test_the_log_form_counts_log_1_plus_count_a_day(tenant):
    world(tenant, {"u": [("A", 0, 10), ("A", 1, 1)]}, history_days=5)
    history = truth.load_history(tenant)
    features = truth.window_features(history, 1, window=2, log=True)
    assert features[0, 0] == pytest.approx(np.log(11) + np.log(2))


def test_the_fit_is_judged_out_of_time(tenant):
    """What kept users early (A) stops mattering later, and B starts to: an honest judge sees the fit fail."""
    rng = random.Random(5)
    days, rows = 150, {}
    for i in range(60):
        rows[f"x-{i}"] = [("A", d, 1) for d in range(days) if rng.random() < 0.3]  # A early and late, stays
        leave = rng.randint(30, 80)
        rows[f"y-{i}"] = [("B", d, 1) for d in range(leave) if rng.random() < 0.3]  # B early, leaves early
        leave = rng.randint(105, 140)
        rows[f"z-{i}"] = [("A", d, 1) for d in range(80, leave) if rng.random() < 0.3]  # A late, leaves
        rows[f"w-{i}"] = [("B", d, 1) for d in range(80, days) if rng.random() < 0.3]  # B late, stays
    _, acts, _ = world(tenant, rows, history_days=days)

    fit = truth.fit_weights(tenant, horizon=30, half_lives=(None,), caps=(None,))

    assert fit.points.get(acts["A"].pk, 0) > fit.points.get(acts["B"].pk, 0)
    assert max(fit.train_days) < min(fit.eval_days)
    # Had the fit seen the later days, B would weigh and the AUC there would be high.
    assert fit.eval_auc < 0.6
    assert fit.train_auc > 0.7


def turn_round_after(tenant, acts, seen_until):
    """Busy users of planted() stay and deep users leave, after `seen_until` (a fit's last look)."""
    later = DailyActivityCount.objects.filter(tenant=tenant, day__gt=seen_until)
    assert later.exists()
    later.filter(end_user__user_id__startswith="deep-").delete()
    busy = EndUser.objects.filter(tenant=tenant, user_id__startswith="busy-")
    later.filter(end_user__in=busy).delete()
    DailyActivityCount.objects.bulk_create(
        DailyActivityCount(tenant=tenant, end_user=u, activity=acts["Logged in"], day=seen_until + timedelta(days=d),
                           count=10)
        for u in busy for d in range(1, (tenant.today() - seen_until).days)
    )


def test_the_fit_never_reads_what_follows_its_training_days(tenant):
    """Change every event after the last training day's outcome: the fitted model must not move."""
    first, acts, _ = world(tenant, planted(seed=11, users=120), history_days=150)
    fit = truth.fit_weights(tenant, horizon=30)
    turn_round_after(tenant, acts, max(fit.train_days) + timedelta(days=fit.horizon))

    refit = truth.fit_weights(tenant, horizon=30)

    assert refit.train_days == fit.train_days
    assert (refit.points, refit.daily_cap, refit.half_life_days) == (fit.points, fit.daily_cap, fit.half_life_days)
    assert refit.eval_auc < fit.eval_auc  # the judge did see the change


def test_the_fit_is_embargoed_from_the_judged_period(tenant):
    """A and B users behave alike until day 95, then every A user leaves — after the first judged day.
    A fit whose training labels reached past that day would learn it and look perfect on the judged days."""
    rng = random.Random(2)
    rows = {}
    for i in range(40):
        rows[f"a{i}"] = [("A", d, 1) for d in range(96) if rng.random() < 0.4]
        rows[f"b{i}"] = [("B", d, 1) for d in range(150) if rng.random() < 0.4]
    for i in range(40):  # ordinary churn, alike for both, so every day has stayers and leavers
        stop = rng.randint(20, 90)
        rows[f"n{i}"] = [("A" if i % 2 else "B", d, 1) for d in range(stop) if rng.random() < 0.4]
    _, acts, _ = world(tenant, rows, history_days=150)

    fit = truth.fit_weights(tenant, horizon=30, caps=(None,), half_lives=(None,))

    assert fit.ok
    assert max(fit.train_days) + timedelta(days=30) <= min(fit.eval_days)
    assert fit.eval_auc < 0.9  # it could not have known


def test_readiness_counts_users_not_user_days(tenant):
    rng = random.Random(4)
    rows = {f"u{i}": [("A", d, 1) for d in range(150 if i % 2 else rng.randint(40, 120)) if rng.random() < 0.5]
            for i in range(7)}
    world(tenant, rows, history_days=150)
    fit = truth.fit_weights(tenant, horizon=30)
    assert not fit.ok and fit.readiness.left <= 7 and fit.readiness.stayed <= 7


def test_junk_event_names_stay_out_of_the_fit(tenant):
    rows = planted(users=80)
    rows["spammer"] = [(f"junk {i}", 10, 1) for i in range(300)]
    _, acts, _ = world(tenant, rows, history_days=150)
    fit = truth.fit_weights(tenant, horizon=30)
    assert fit.ok and not any(acts[f"junk {i}"].pk in fit.points for i in range(300))


def test_thin_history_says_so(tenant):
    world(tenant, {"only": [("Logged in", d, 1) for d in range(20)]}, history_days=20)

    fit = truth.fit_weights(tenant)

    assert not fit.ok and not fit.points
    assert fit.readiness.message.startswith(
        "Not enough history to fit or judge: 20 days of events (65 needed for 14-day outcomes), 1 users")


def test_an_empty_tenant_is_thin(tenant):
    assert not truth.fit_weights(tenant).ok
    model = scoring_services.scoring_model_create_draft(tenant=tenant)
    bt = truth.backtest(model)
    assert bt.verdict.level == "thin" and "Not enough history" in bt.verdict.headline


# --- Backtest and verdict ----------------------------------------------------------------------------------


def _rows():
    return (
        UserScore.objects.unscoped().count(),
        AccountScore.objects.unscoped().count(),
        ProductScore.objects.unscoped().count(),
    )


def test_a_backtest_stores_nothing_and_uses_the_engine(tenant):
    _, acts, _ = world(tenant, planted(users=80), history_days=150)
    draft = scoring_services.scoring_model_create_draft(tenant=tenant)
    scoring_services.scoring_model_update(model=draft, points={acts["Exported report"].pk: 50,
                                                               acts["Logged in"].pk: 1})
    before = _rows()

    bt = truth.backtest(draft, horizon=30)

    assert _rows() == before
    assert len(bt.days) == 6 and all(d.auc is not None for d in bt.days)
    assert bt.mean_auc > 0.75 and bt.verdict.level == "predictive", bt.verdict
    # The points are the engine's: same as a stored run of that draft on that day.
    day = bt.days[-1].day
    from scoring import engine

    engine.compute_day(draft, day)
    stored = dict(UserScore.objects.unscoped().filter(model=draft, day=day).values_list("end_user_id", "points"))
    assert {u: p for u, (p, _t) in bt.scores[day].items()} == stored


def _bt(aucs, tiers, ready=True):
    days = [truth.DayAuc(date(2026, 1, 1) + timedelta(days=7 * i), 100, 50, a, a) for i, a in enumerate(aucs)]
    rows = [truth.TierOutcome(t, n, s) for t, n, s in tiers]
    readiness = truth.Readiness(days=200 if ready else 10, users=500, left=100, stayed=400, horizon=60)
    bt = truth.Backtest(model=None, horizon=60, days=days, tiers=rows, in_order=truth._in_order(rows),
                        verdict=None, readiness=readiness)
    return truth.verdict(bt)


def test_the_verdict_never_calls_a_coin_predictive():
    in_order = [("high", 100, 90), ("medium", 100, 60), ("low", 100, 30)]
    assert _bt([0.82, 0.8, 0.78], in_order).level == "predictive"
    coin = _bt([0.52, 0.54, 0.5], in_order)
    assert coin.level == "not" and "close to a coin" in coin.headline
    assert _bt([0.65, 0.63], in_order).level == "weak"


def test_the_verdict_refuses_tiers_out_of_order():
    # The case: high 84.7%, medium 39.5%, low 41.6%, dormant 84%.
    tiers = [("high", 300, 254), ("medium", 300, 118), ("low", 300, 125), ("dormant", 300, 252)]
    v = _bt([0.8, 0.8], tiers)
    assert v.level == "not" and "out of order" in v.headline
    assert any("out of order" in w for w in v.warnings)
    tiers = [("high", 300, 200), ("medium", 300, 150), ("low", 300, 100), ("dormant", 300, 250)]
    assert any(w.startswith("Dormant users stayed more than high-tier ones") for w in _bt([0.75], tiers).warnings)


def test_thin_data_gets_no_verdict():
    v = _bt([0.9], [("high", 100, 90), ("low", 100, 10)], ready=False)
    assert v.level == "thin" and v.headline.startswith("Not enough history")


def test_blend_mixes_survey_and_data():
    assert truth.blend({1: 100, 2: 50}, {2: 10, 3: 5}, 0.0) == {1: 100, 2: 50}
    assert truth.blend({1: 100, 2: 50}, {2: 10, 3: 5}, 1.0) == {2: 100, 3: 50}
    assert truth.blend({1: 100, 2: 50}, {2: 10, 3: 5}, 0.5) == {1: 50, 2: 75, 3: 25}


# --- Accounts ----------------------------------------------------------------------------------------------


def test_retention_by_activity_for_accounts(tenant):
    from events.models import CustomerAccount

    first, acts, users = world(tenant, {
        "a1-u1": [("Exported", 39, 1)], "a1-u2": [("Logged in", 38, 1), ("Logged in", 66, 1)],  # a1 stays
        "a2-u1": [("Exported", 35, 1)],  # a2 leaves
        "a3-u1": [("Logged in", 40, 1), ("Logged in", 64, 1)],  # a3 stays
        "lonely": [("Exported", 39, 1)],  # no account: not counted
    }, history_days=80)
    for name in ("a1", "a2", "a3"):
        account = CustomerAccount.objects.create(tenant=tenant, group_id=name, name=name)
        AccountMembership.objects.bulk_create(
            AccountMembership(tenant=tenant, end_user=u, account=account, started_at=LONG_AGO)
            for uid, u in users.items() if uid.startswith(f"{name}-"))

    result = truth.retention_by_activity(tenant, day=first + timedelta(days=40), horizon=30, subject="accounts")

    assert (result.population.n, result.population.stayed) == (3, 2)
    exported = {r.activity.name: r for r in result.rows}["Exported"]
    assert (exported.did.n, exported.did.stayed, exported.did_not.n, exported.did_not.stayed) == (2, 1, 1, 1)


def test_a_backtest_judges_accounts_too(tenant):
    from events.models import CustomerAccount

    _, acts, users = world(tenant, planted(users=120), history_days=150)
    # Accounts of three users of the same kind each.
    for kind in ("deep", "busy"):
        members = sorted((u for uid, u in users.items() if uid.startswith(kind)), key=lambda u: u.pk)
        for i in range(0, len(members), 3):
            account = CustomerAccount.objects.create(tenant=tenant, group_id=f"{kind}-{i}", name=f"{kind}-{i}")
            EndUser.objects.unscoped().filter(pk__in=[u.pk for u in members[i:i + 3]]).update(account=account)
            # The account roll-up reads memberships (events.AccountMembership), from first seen.
            AccountMembership.objects.bulk_create(
                AccountMembership(tenant=tenant, end_user=u, account=account, started_at=u.first_seen_at)
                for u in members[i:i + 3])
    draft = scoring_services.scoring_model_create_draft(tenant=tenant)
    scoring_services.scoring_model_update(model=draft, points={acts["Exported report"].pk: 50})

    bt = truth.backtest(draft, horizon=30)

    assert bt.accounts and all(d.users <= 40 for d in bt.accounts)
    assert bt.account_mean_auc > 0.7


# --- Pages ------------------------------------------------------------------------------------------------


def test_the_pages_work_and_check_roles(client, tenant, owner, viewer, other_tenant, outsider):
    _, acts, _ = world(tenant, planted(users=80), history_days=150)
    client.force_login(viewer)
    page = client.get(f"/t/{tenant.slug}/insights/truth/?horizon=30")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Fitted on outcomes" in text and "Retention by activity: users" in text
    assert "Create a draft from this fit" not in text  # viewers read, editors act
    assert client.post(f"/t/{tenant.slug}/insights/truth/draft/", {"survey_share": 0}).status_code == 403
    assert client.get(f"/t/{tenant.slug}/insights/truth/?horizon=45").status_code == 400
    csv_text = client.get(f"/t/{tenant.slug}/insights/truth/retention-by-activity.csv?horizon=30").getvalue().decode()
    assert "Exported report" in csv_text.splitlines()[1] or "Exported report" in csv_text
    assert client.get(f"/t/{tenant.slug}/insights/truth/retention-by-activity.csv?subject=x").status_code == 400

    client.force_login(owner)
    response = client.post(f"/t/{tenant.slug}/insights/truth/draft/", {"horizon": 30, "survey_share": 0})
    assert response.status_code == 302 and "/insights/truth/backtest/" in response["Location"]
    backtest = client.get(response["Location"])
    assert backtest.status_code == 200 and b"Publish v" in backtest.content
    # Another workspace's member sees none of it.
    client.force_login(outsider)
    assert client.get(response["Location"]).status_code == 404


@pytest.mark.parametrize("history", [0, 1])
def test_an_empty_or_one_user_tenant_gets_a_plain_answer(client, tenant, owner, history):
    if history:
        world(tenant, {"solo": [("Logged in", d, 1) for d in range(30)]}, history_days=30)
    client.force_login(owner)
    page = client.get(f"/t/{tenant.slug}/insights/truth/")
    assert page.status_code == 200
    assert b"Not enough history to fit or judge" in page.content
    assert client.get(f"/t/{tenant.slug}/insights/truth.svg").status_code == 404  # the chart is on the page
    assert client.get(f"/t/{tenant.slug}/insights/truth/retention-by-activity.csv").status_code == 200
    response = client.post(f"/t/{tenant.slug}/insights/truth/draft/", {"survey_share": 0})
    assert response.status_code == 302  # back to the page with the reason, no draft
    from scoring.models import ScoringModel

    assert not ScoringModel.objects.filter(tenant=tenant).exists()


def test_an_edited_draft_gets_a_fresh_backtest(client, tenant, owner, settings):
    settings.INSIGHTS_CACHE_SECONDS = 300
    from django.core.cache import cache

    cache.clear()
    _, acts, _ = world(tenant, planted(users=80), history_days=150)
    draft = scoring_services.scoring_model_create_draft(tenant=tenant)
    scoring_services.scoring_model_update(model=draft, points={acts["Logged in"].pk: 10})
    client.force_login(owner)
    url = f"/t/{tenant.slug}/insights/truth/backtest/{draft.public_id}/?horizon=30"
    assert b"Not predictive" in client.get(url).content
    scoring_services.scoring_model_update(model=draft, points={acts["Exported report"].pk: 10})
    assert b"Predictive: over" in client.get(url).content
    cache.clear()


def test_no_blend_without_a_survey(client, tenant, owner):
    world(tenant, planted(users=80), history_days=150)
    client.force_login(owner)
    response = client.post(f"/t/{tenant.slug}/insights/truth/draft/", {"horizon": 30, "survey_share": 50},
                           follow=True)
    assert b"There is no survey proposal to blend with" in response.content
    from scoring.models import ScoringModel

    assert not ScoringModel.objects.filter(tenant=tenant).exists()


def test_a_fitted_draft_ranks_by_percentile(client, tenant, owner):
    _, acts, _ = world(tenant, planted(users=80), history_days=150)
    v1 = scoring_services.scoring_model_create_draft(tenant=tenant)
    scoring_services.scoring_model_update(model=v1, points={acts["Logged in"].pk: 10}, tier_method="points",
                                          tier_high=500, tier_medium=100)
    scoring_services.scoring_model_publish(model=v1, backfill_days=1)
    client.force_login(owner)
    client.post(f"/t/{tenant.slug}/insights/truth/draft/", {"horizon": 30, "survey_share": 0})
    from scoring.models import ModelStatus, ScoringModel

    draft = ScoringModel.objects.get(tenant=tenant, status=ModelStatus.DRAFT)
    assert (draft.tier_method, draft.tier_high, draft.tier_medium) == ("percentile", 80, 40)


def test_predictive_does_not_claim_an_unjudged_tier_order():
    v = _bt([0.9, 0.9], [("high", 10, 9), ("low", 10, 1)])
    assert v.level == "predictive" and "tier order not judged" in v.headline and "tiers are in order" not in v.headline


def test_a_cold_report_is_computed_by_a_job_when_a_broker_runs_them(client, tenant, owner, settings):
    """With a real broker the page must not compute a minute-long report in the request."""
    from django.core.cache import cache

    from engagement_site.celery import app

    settings.INSIGHTS_CACHE_SECONDS = 300
    settings.CELERY_TASK_ALWAYS_EAGER = False  # the site's view of it: a broker and workers
    cache.clear()
    world(tenant, planted(users=80), history_days=150)
    client.force_login(owner)
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True  # ...and here the "worker" runs the job at once, in this process
    try:
        first = client.get(f"/t/{tenant.slug}/insights/truth/")
        assert b"Computing the backtests" in first.content and b'http-equiv="refresh"' in first.content
        second = client.get(f"/t/{tenant.slug}/insights/truth/")
        assert b"Fitted on outcomes" in second.content and b"Computing the backtests" not in second.content
    finally:
        app.conf.task_always_eager = previous
        cache.clear()


def test_the_copy_reader_matches_the_portable_one(postgres, tenant):
    world(tenant, planted(users=30), history_days=60)
    first = tenant.today() - timedelta(days=60)
    last = tenant.today() - timedelta(days=1)
    fast = truth._rows_postgresql(tenant, first, last)
    slow = truth._rows_portable(tenant, first, last)
    order_fast, order_slow = np.lexsort(fast[:3][::-1]), np.lexsort(slow[:3][::-1])
    for a, b in zip(fast, slow, strict=True):
        assert np.array_equal(a[order_fast], b[order_slow])
