"""Score truth for accounts: membership with its history, and the account-level fit (insights/truth.py)."""

import random
from datetime import UTC, datetime, time, timedelta

import numpy as np
import pytest

from events.models import AccountMembership, CustomerAccount, EndUser
from insights import truth
from scoring.models import ScoringModel

from .test_truth import LONG_AGO, planted, turn_round_after, world

# The small world: snapshot day D = offset 40, horizon 30, window 30 (offsets 11-40);
# "stayed" = an event on offsets 64-70 by a member as of D + 30 (offset 70).
SMALL = {
    "shared": [("Exported", 39, 1), ("Logged in", 66, 1)],  # in A and B: both did Exported, both stay
    "a-only": [("Exported", 35, 2)],
    "mover": [("Exported", 30, 1), ("Logged in", 68, 1)],  # in D until offset 50, then in C
    "seat-1": [("Logged in", 40, 1)],  # in E until offset 45 ...
    "seat-2": [("Logged in", 69, 1)],  # ... then seat-2 takes the seat: E stayed
    "f-user": [("Logged in", 39, 1), ("Logged in", 66, 1)],  # F churned at offset 60 (a dated trait)
    "c-old": [("Logged in", 38, 1), ("Logged in", 65, 1)],  # left C at offset 20: counts nowhere on D
}


def _at(first, offset):
    return datetime.combine(first + timedelta(days=offset), time(12), tzinfo=UTC)


def small_world(tenant):
    first, acts, users = world(tenant, SMALL, history_days=80)
    churn_day = (first + timedelta(days=60)).isoformat()
    accounts = {name: CustomerAccount.objects.create(tenant=tenant, group_id=name, name=name,
                                                     traits={"churned_at": churn_day} if name == "F" else {})
                for name in "ABCDEF"}
    spans = [("shared", "A", None, None), ("shared", "B", None, None), ("a-only", "A", None, None),
             ("mover", "D", None, 50), ("mover", "C", 50, None), ("seat-1", "E", None, 45),
             ("seat-2", "E", 45, None), ("f-user", "F", None, None), ("c-old", "C", None, 20)]
    AccountMembership.objects.bulk_create(
        AccountMembership(tenant=tenant, end_user=users[u], account=accounts[a],
                          started_at=LONG_AGO if start is None else _at(first, start),
                          ended_at=None if end is None else _at(first, end))
        for u, a, start, end in spans)
    # The primary account, which the outcomes no longer read: all of them in A.
    EndUser.objects.filter(tenant=tenant).update(account=accounts["A"])
    return first, acts, users, accounts


def test_retention_by_activity_follows_membership_history(tenant, other_tenant):
    first, acts, users, accounts = small_world(tenant)
    small_world(other_tenant)  # the same world elsewhere changes nothing

    result = truth.retention_by_activity(tenant, day=first + timedelta(days=40), horizon=30, subject="accounts")

    # On D: A, B (shared), D (mover), E (seat-1), F; C has no member active then. Stayed: A, B, E;
    # D's mover is active on day 68 but no longer its member; F churned on day 60.
    assert (result.population.n, result.population.stayed) == (5, 3)
    rows = {r.activity.name: r for r in result.rows}
    exported = rows["Exported"]
    assert (exported.did.n, exported.did.stayed, exported.did_not.n, exported.did_not.stayed) == (3, 2, 2, 1)
    # A did it on 2 days (shared on 39, a-only on 35): the 1-3 days band holds A, B and D.
    assert [(b.n, b.stayed) for b in exported.bands] == [(3, 2), (0, 0), (0, 0), (0, 0)]
    logged = rows["Logged in"]
    assert (logged.did.n, logged.did.stayed) == (2, 1)  # E and F


def test_account_snapshots_follow_membership_history(tenant):
    first, acts, users, accounts = small_world(tenant)
    history = truth.load_history(tenant)
    history_accounts = truth.account_history(tenant, history)

    snap = truth.account_snapshot(history, history_accounts, first + timedelta(days=40), window=30, horizon=30)

    ids = {accounts[n].pk: n for n in "ABCDEF"}
    assert sorted(ids[a] for a in snap.members) == ["A", "B", "D", "E", "F"]
    assert {ids[a]: bool(s) for a, s in zip(snap.members, snap.stayed, strict=True)} == \
        {"A": True, "B": True, "D": False, "E": True, "F": False}
    # Account features sum their members' as of D: shared's Exported counts in A and in B.
    exported = history.activities.index(acts["Exported"].pk)
    features = snap.rows(truth.window_features(history, snap.offset, window=30))
    by_name = {ids[a]: row for a, row in zip(snap.members, features, strict=True)}
    assert [by_name[n][exported] for n in "ABDEF"] == [3.0, 1.0, 1.0, 0.0, 0.0]

    # The account AUC of a backtest uses the same snapshot: points 3 (A), 1 (B), 1 (D), 0 (E), 0 (F);
    # stayers A, B, E against leavers D, F: (A > D, A > F, B = D, B > F, E = F, E < D) = 3 + 2 x 0.5 of 6.
    # Tiers high (A), low (B), medium (D), dormant (E, F without a row): A > D, A > F, B < D, B > F,
    # E < D, E = F: 3.5 of 6.
    day = first + timedelta(days=40)
    scores = {day: {accounts["A"].pk: (3.0, "high"), accounts["B"].pk: (1.0, "low"),
                    accounts["D"].pk: (1.0, "medium")}}
    (result,) = truth.account_days(history, history_accounts, [day], 30, 30, scores)
    assert (result.users, result.stayed, result.auc, result.tier_auc) == (5, 3, round(4 / 6, 3), round(3.5 / 6, 3))


def accounts_world(tenant, rows, *, size=2, shared_every=5):
    """Accounts of `size` users of the same kind; every `shared_every`-th deep user is in a busy account too."""
    _, acts, users = world(tenant, rows, history_days=150)
    made = []
    for kind in ("deep", "busy"):
        members = sorted((u for uid, u in users.items() if uid.startswith(kind)), key=lambda u: u.pk)
        for i in range(0, len(members), size):
            account = CustomerAccount.objects.create(tenant=tenant, group_id=f"{kind}-{i}", name=f"{kind}-{i}")
            made.append((kind, account, members[i:i + size]))
    links = [(a, u) for _, a, group in made for u in group]
    deep = [u for kind, _, group in made if kind == "deep" for u in group]
    busy_accounts = [a for kind, a, _ in made if kind == "busy"]
    links += [(busy_accounts[j % len(busy_accounts)], u) for j, u in enumerate(deep[::shared_every])]
    AccountMembership.objects.bulk_create(
        AccountMembership(tenant=tenant, end_user=u, account=a, started_at=LONG_AGO) for a, u in links)
    return acts, users


def test_the_account_fit_puts_a_deep_activity_above_log_ins(tenant, other_tenant):
    acts, _ = accounts_world(tenant, planted(users=160))
    accounts_world(other_tenant, planted(seed=9, users=40))

    fit = truth.fit_weights(tenant, horizon=30, subject="accounts")

    assert fit.ok, fit.readiness.message
    assert fit.subject == "accounts" and fit.readiness.subject == "accounts"
    assert fit.readiness.users == 80  # accounts, not users
    assert fit.points[acts["Exported report"].pk] > fit.points.get(acts["Logged in"].pk, 0)
    assert fit.eval_auc > 0.8
    assert max(fit.train_days) + timedelta(days=30) <= min(fit.eval_days)


def test_the_account_fit_never_reads_the_days_it_is_judged_on(tenant):
    """Turn the world round after the last training day's outcome: the account fit must not move,
    and its judge must see the change."""
    acts, _ = accounts_world(tenant, planted(seed=11, users=160))
    fit = truth.fit_weights(tenant, horizon=30, subject="accounts")
    assert fit.ok, fit.readiness.message
    seen_until = max(fit.train_days) + timedelta(days=fit.horizon)
    assert seen_until <= min(fit.eval_days)  # the embargo: every judged outcome comes after
    turn_round_after(tenant, acts, seen_until)

    refit = truth.fit_weights(tenant, horizon=30, subject="accounts")

    assert refit.train_days == fit.train_days
    assert (refit.points, refit.daily_cap, refit.half_life_days) == (fit.points, fit.daily_cap, fit.half_life_days)
    assert refit.eval_auc < 0.5 < fit.eval_auc


@pytest.mark.parametrize("accounts", [0, 1])
def test_thin_account_history_says_so(tenant, accounts):
    rng = random.Random(1)
    rows = {f"u{i}": [("A", d, 1) for d in range(150 if i % 2 else rng.randint(40, 120)) if rng.random() < 0.5]
            for i in range(60)}
    _, _, users = world(tenant, rows, history_days=150)
    if accounts:
        account = CustomerAccount.objects.create(tenant=tenant, group_id="solo", name="solo")
        AccountMembership.objects.bulk_create(
            AccountMembership(tenant=tenant, end_user=u, account=account, started_at=LONG_AGO)
            for u in users.values())

    fit = truth.fit_weights(tenant, horizon=30, subject="accounts")

    assert not fit.ok and not fit.points
    assert fit.readiness.message.startswith("Not enough history to fit or judge: 150 days of events")
    assert f"{accounts} accounts, 0 left within 30 days" in fit.readiness.message
    assert truth.fit_weights(tenant, horizon=30).ok  # the users have enough: only accounts are thin


def test_an_empty_tenant_has_no_account_fit(tenant):
    fit = truth.fit_weights(tenant, subject="accounts")
    assert not fit.ok and "0 accounts" in fit.readiness.message


def test_the_score_truth_page_shows_the_account_fit_and_makes_a_draft(client, tenant, owner, viewer, settings):
    from django.core.cache import cache

    settings.INSIGHTS_CACHE_SECONDS = 300
    # The report computed in the request (as in the embedded default), not enqueued to a worker.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    cache.clear()
    acts, _ = accounts_world(tenant, planted(users=120))
    client.force_login(viewer)
    # Outcomes never computes the fit: before Score truth has, it links there.
    outcomes = client.get(f"/t/{tenant.slug}/insights/outcomes/?subject=accounts").content.decode()
    assert "Weights fitted on what made accounts stay" not in outcomes and "Score truth, accounts" in outcomes
    text = client.get(f"/t/{tenant.slug}/insights/truth/?horizon=30").content.decode()
    assert "Weights fitted on what made accounts stay" in text
    assert "Create a draft from the account fit" not in text  # viewers read
    assert "Diminishing returns: points × log(1 + count) a day cross-validates at AUC" in text

    client.force_login(owner)
    page = client.get(f"/t/{tenant.slug}/insights/truth/?horizon=30")
    text = page.content.decode()
    assert "Create a draft from the account fit" in text
    report = page.context["report"]
    assert report.account_fit.ok and report.account_fit.user_fit_auc is not None
    assert f"AUC {report.account_fit.eval_auc}" in text
    response = client.post(f"/t/{tenant.slug}/insights/truth/draft/",
                           {"horizon": 30, "survey_share": 0, "subject": "accounts"})
    assert response.status_code == 302 and "/insights/truth/backtest/" in response["Location"]
    draft = ScoringModel.objects.for_tenant(tenant).get(name__startswith="Fitted on account outcomes")
    weights = dict(draft.weights.filter(points__gt=0).values_list("activity_id", "points"))
    assert weights == report.account_fit.points and draft.account_rollup == "sum"
    assert client.get(response["Location"]).status_code == 200
    # The accounts view of Outcomes carries the same card once the page's default report is computed.
    assert client.get(f"/t/{tenant.slug}/insights/truth/").status_code == 200
    outcomes = client.get(f"/t/{tenant.slug}/insights/outcomes/?subject=accounts").content.decode()
    assert "Weights fitted on what made accounts stay" in outcomes
    cache.clear()


def test_a_thin_account_fit_is_a_plain_sentence_on_the_pages(client, tenant, owner):
    world(tenant, planted(users=80), history_days=150)  # users but no accounts
    client.force_login(owner)
    text = client.get(f"/t/{tenant.slug}/insights/truth/?horizon=30").content.decode()
    assert "Not enough history to fit or judge: 150 days of events" in text and "0 accounts" in text
    response = client.post(f"/t/{tenant.slug}/insights/truth/draft/",
                           {"horizon": 30, "survey_share": 0, "subject": "accounts"})
    assert response.status_code == 302 and not ScoringModel.objects.for_tenant(tenant).exists()
    assert client.get(f"/t/{tenant.slug}/insights/outcomes/?subject=accounts").status_code == 200
    assert client.post(f"/t/{tenant.slug}/insights/truth/draft/",
                       {"horizon": 30, "survey_share": 0, "subject": "teams"}).status_code == 302
    assert not ScoringModel.objects.for_tenant(tenant).exists()


def test_user_points_are_judged_on_accounts_too(tenant):
    acts, _ = accounts_world(tenant, planted(users=120))
    history = truth.load_history(tenant)
    accounts = truth.account_history(tenant, history)
    user_fit = truth.fit_weights(tenant, horizon=30, history=history)
    account_fit = truth.fit_weights(tenant, horizon=30, history=history, subject="accounts", accounts=accounts)
    value = truth.points_on_accounts(history, accounts, user_fit, account_fit.eval_days)
    assert value is not None and value > 0.7
    assert np.isclose(value, account_fit.eval_auc, atol=0.15)
