"""The insight selectors on small hand-computed cases (real database, data through the services)."""

from datetime import timedelta

import pytest

from insights.queries.adoption import adoption_trend, feature_adoption
from insights.queries.growth import growth_accounting
from insights.queries.movers import at_risk_accounts, movers, power_users
from insights.queries.outcomes import outcomes
from insights.queries.segments import COHORT, segments, trait_keys
from insights.queries.transitions import NOT_SEEN, tier_transitions, transition_members
from scoring.selectors import published_model

from .helpers import (
    account,
    account_scores,
    engaged_weeks,
    group,
    monday,
    published,
    retention_world,
    send,
    track,
    user_scores,
    users,
)

pytestmark = pytest.mark.django_db


# --- Growth accounting ---------------------------------------------------------------------------------

def _rows(growth):
    return [(r.active, r.new, r.retained, r.resurrected, r.churned) for r in growth.rows[-4:]]


def test_growth_accounting_of_active_users(weekly_events):
    growth = growth_accounting(weekly_events, subject="users", measure="active", period="week")
    assert len(growth.rows) == 12
    assert _rows(growth) == [
        (2, 2, 0, 0, 0),  # A, B new
        (2, 1, 1, 0, 1),  # D new, A retained, B churned
        (3, 1, 2, 0, 0),  # C new, A and D retained
        (2, 0, 1, 1, 2),  # A retained, B resurrected, C and D churned
    ]
    assert growth.rows[-1].partial and growth.rows[-1].quick_ratio == 0.5
    assert growth.rows[-3].quick_ratio == 1.0  # (1 new + 0) / 1 churned
    assert growth.rows[-2].quick_ratio is None  # nobody churned


def test_growth_accounting_of_active_accounts(weekly_events):
    growth = growth_accounting(weekly_events, subject="accounts", measure="active", period="week")
    # X (A, B) active every week from -3; Y (C) only in week -1.
    assert _rows(growth) == [(1, 1, 0, 0, 0), (1, 0, 1, 0, 0), (2, 1, 1, 0, 0), (1, 0, 1, 0, 1)]


def test_growth_accounting_per_month(weekly_events):
    growth = growth_accounting(weekly_events, subject="users", measure="active", period="month")
    assert len(growth.rows) == 12
    total_new = sum(r.new for r in growth.rows)
    assert total_new == 4  # every user is new exactly once


def test_engaged_growth_reads_the_last_scored_day_of_each_period(tenant):
    w2 = engaged_weeks(tenant, published(tenant))
    growth = growth_accounting(tenant, subject="users", measure="engaged", period="week")
    last3 = [(r.active, r.new, r.retained, r.resurrected, r.churned) for r in growth.rows[-3:]]
    assert last3 == [(1, 1, 0, 0, 0), (1, 1, 0, 0, 1), (0, 0, 0, 0, 1)]
    assert growth.baseline == w2


def test_engaged_growth_without_a_model_is_empty(tenant):
    growth = growth_accounting(tenant, measure="engaged")
    assert growth.is_empty


# --- Tier transitions -----------------------------------------------------------------------------------


def test_tier_transition_matrix(tenant):
    model = published(tenant)
    p = users(tenant, "u1", "u2", "u3", "u4", "u5")
    d1, d2 = tenant.today() - timedelta(days=30), tenant.today()
    user_scores(tenant, model, d1, [(p["u1"], 90, "high"), (p["u2"], 50, "medium"), (p["u3"], 50, "medium"),
                                    (p["u4"], 0, "dormant")])
    user_scores(tenant, model, d2, [(p["u1"], 40, "medium"), (p["u2"], 60, "medium"), (p["u3"], 99, "high"),
                                    (p["u4"], 5, "low"), (p["u5"], 1, "new")])
    result = tier_transitions(tenant, day_from=d1, day_to=d2)
    assert result.matrix == {
        "high": {"medium": 1},
        "medium": {"medium": 1, "high": 1},
        "dormant": {"low": 1},
        NOT_SEEN: {"new": 1},
    }
    assert result.rows == ["high", "medium", "dormant", NOT_SEEN]
    assert (result.moved_up, result.moved_down, result.total) == (2, 1, 5)
    table = {row["tier"]: row["cells"] for row in result.table()}
    assert table["medium"] == [1, 1, 0, 0, 0]  # to high, medium, low, new, dormant


def test_the_people_behind_a_cell_are_those_the_matrix_counts(tenant, other_tenant):
    model = published(tenant)
    p = users(tenant, "u1", "u2", "u3", "u4", "u5", "u6")
    d1, d2 = tenant.today() - timedelta(days=30), tenant.today()
    user_scores(tenant, model, d1, [(p["u1"], 50, "medium"), (p["u2"], 55, "medium"), (p["u3"], 50, "medium"),
                                    (p["u4"], 90, "high")])
    user_scores(tenant, model, d2, [(p["u1"], 80, "high"), (p["u2"], 95, "high"), (p["u3"], 40, "medium"),
                                    (p["u4"], 97, "high"), (p["u5"], 1, "new"), (p["u6"], 3, "new")])
    # Another workspace's snapshots of the same days and tiers are not theirs.
    other = published(other_tenant)
    q = users(other_tenant, "u1")
    user_scores(other_tenant, other, d1, [(q["u1"], 50, "medium")])
    user_scores(other_tenant, other, d2, [(q["u1"], 99, "high")])

    up = transition_members(tenant, day_from=d1, day_to=d2, tier_from="medium", tier_to="high")
    assert [(r.subject.user_id, r.points_from, r.points_to) for r in up.rows] == [("u2", 55, 95), ("u1", 50, 80)]
    assert up.total == tier_transitions(tenant, day_from=d1, day_to=d2).matrix["medium"]["high"] == 2
    stayed = transition_members(tenant, day_from=d1, day_to=d2, tier_from="high", tier_to="high")
    assert [r.subject.user_id for r in stayed.rows] == ["u4"]
    first = transition_members(tenant, day_from=d1, day_to=d2, tier_from=NOT_SEEN, tier_to="new", limit=1)
    assert (first.total, len(first.rows), first.more) == (2, 1, True)
    assert first.rows[0].subject.user_id == "u6" and first.rows[0].points_from is None  # highest points first
    assert transition_members(tenant, day_from=d1, day_to=d2, tier_from="low", tier_to="high").rows == []


def test_tier_transitions_of_accounts(tenant):
    model = published(tenant)
    x, y = account(tenant, "x"), account(tenant, "y")
    d1, d2 = tenant.today() - timedelta(days=7), tenant.today()
    account_scores(tenant, model, d1, [(x, 10, "low"), (y, 10, "low")])
    account_scores(tenant, model, d2, [(x, 100, "high"), (y, 0, "dormant")])
    result = tier_transitions(tenant, day_from=d1, day_to=d2, subject="accounts")
    assert result.matrix == {"low": {"high": 1, "dormant": 1}}


# --- Feature adoption -----------------------------------------------------------------------------------


def test_adoption_shares_and_trend(tenant):
    today = tenant.today()
    recent, older = today - timedelta(days=3), today - timedelta(days=40)
    send(tenant, [
        group("u1", "acme", recent), group("u3", "initech", recent),
        track("u1", "Logged in", recent, "acme"), track("u2", "Logged in", recent), track("u3", "Logged in", recent),
        track("u4", "Logged in", recent), track("u1", "Shared photo", recent, "acme"),
        track("u1", "Shared photo", older), track("u2", "Shared photo", older), track("u2", "Invited friend", older),
    ])
    result = feature_adoption(tenant, window=30)
    rows = {r.name: r for r in result.rows}
    assert (result.active_users, result.active_accounts, result.active_users_before) == (4, 2, 2)
    assert (rows["Logged in"].user_share, rows["Logged in"].account_share) == (100.0, 100.0)
    assert (rows["Shared photo"].users, rows["Shared photo"].user_share, rows["Shared photo"].account_share) == (
        1, 25.0, 50.0)
    assert rows["Shared photo"].user_share_before == 100.0 and rows["Shared photo"].change == -75.0
    assert rows["Invited friend"].unused and rows["Invited friend"].user_share == 0.0
    assert [r.name for r in result.unused] == ["Invited friend"]
    weeks, series = adoption_trend(tenant)
    assert len(weeks) == 12
    assert series[rows["Logged in"].activity_id][-1 if monday(recent) == weeks[-1] else -2] == 100.0


# --- Segments -------------------------------------------------------------------------------------------


def test_segment_quartiles_and_tier_shares(tenant):
    model = published(tenant)
    free = users(tenant, *[f"f{i}" for i in range(1, 10)], plan="free")
    paid = users(tenant, "p1", "p2", "p3", plan="paid")
    nobody = users(tenant, "n1")
    day = tenant.today()
    rows = [(free[f"f{i}"], float(i), "low") for i in range(1, 9)] + [(free["f9"], 0, "dormant")]
    rows += [(paid["p1"], 10, "medium"), (paid["p2"], 20, "high"), (paid["p3"], 30, "high"), (nobody["n1"], 3, "low")]
    user_scores(tenant, model, day, rows)
    result = segments(tenant, dimension="plan")
    seg = {s.value: s for s in result.segments}
    assert list(seg) == ["free", "paid", "(none)"]
    f = seg["free"]
    # Points 1..8 (the dormant 0 is left out of quartiles): nearest-rank Q1 = 2, median 4.5, Q3 = 6.
    assert (f.subjects, f.scored, f.minimum, f.q1, f.median, f.q3, f.maximum) == (9, 8, 1, 2, 4.5, 6, 8)
    assert f.tiers["low"] == round(800 / 9, 1) and f.tiers["dormant"] == round(100 / 9, 1)
    p = seg["paid"]
    assert (p.q1, p.median, p.q3, p.mean) == (10, 20, 30, 20)
    assert p.tiers["high"] == 66.7 and p.thin
    assert "plan" in trait_keys(tenant)


def test_segments_by_signup_cohort(tenant):
    model = published(tenant)
    people = users(tenant, "a", "b")
    user_scores(tenant, model, tenant.today(), [(people["a"], 5, "low"), (people["b"], 7, "high")])
    result = segments(tenant, dimension=COHORT)
    assert len(result.segments) == 1 and result.segments[0].subjects == 2
    assert result.segments[0].value == people["a"].first_seen_at.strftime("%Y-%m")


def test_segments_refuse_odd_trait_names(tenant):
    published(tenant)
    user_scores(tenant, published_model(tenant), tenant.today(), [])
    with pytest.raises(ValueError):
        segments(tenant, dimension="plan'); DROP TABLE x; --")


# --- Outcomes -------------------------------------------------------------------------------------------


def test_outcome_retention_by_tier_and_decile(tenant):
    model = published(tenant)
    day = tenant.today() - timedelta(days=70)
    retention_world(tenant, model, day)
    result = outcomes(tenant, day=day)
    by_tier = {r.group: r for r in result.by_tier}
    assert (by_tier["high"].subjects, by_tier["high"].active) == (4, {30: 3, 60: 1})
    assert (by_tier["high"].share(30), by_tier["high"].share(60)) == (75.0, 25.0)
    assert (by_tier["low"].share(30), by_tier["low"].share(60)) == (50.0, 0.0)
    assert result.too_thin  # six users say nothing
    assert result.verdict(30) is None
    deciles = {r.group: r.subjects for r in result.by_decile}
    assert sum(deciles.values()) == 6 and "decile 10" in deciles


def test_outcomes_not_observable_yet(tenant):
    model = published(tenant)
    p = users(tenant, "a")
    user_scores(tenant, model, tenant.today() - timedelta(days=10), [(p["a"], 5, "high")])
    result = outcomes(tenant)
    assert result.observable == {30: False, 60: False} and result.too_thin
    assert result.by_tier[0].share(30) is None


def test_account_outcomes_with_churn_and_mrr(tenant):
    model = published(tenant)
    day = tenant.today() - timedelta(days=65)
    a = account(tenant, "a", mrr=100, churned=False)
    b = account(tenant, "b", mrr=50.5, status="churned")
    c = account(tenant, "c", plan="free")
    account_scores(tenant, model, day, [(a, 100, "high"), (b, 90, "high"), (c, 1, "low")])
    result = outcomes(tenant, day=day, subject="accounts")
    high = {r.group: r for r in result.by_tier}["high"]
    assert (high.with_churn_trait, high.churned, high.churn_rate, high.mrr) == (2, 1, 50.0, 150.5)
    low = {r.group: r for r in result.by_tier}["low"]
    assert (low.with_churn_trait, low.churn_rate, low.mrr) == (0, None, None)
    assert result.has_churn and result.has_mrr


def test_outcome_verdict_in_plain_words(tenant):
    model = published(tenant)
    day = tenant.today() - timedelta(days=65)
    highs = users(tenant, *[f"h{i}" for i in range(50)])
    lows = users(tenant, *[f"l{i}" for i in range(50)])
    rows = [(u, 50, "high") for u in highs.values()] + [(u, 1, "low") for u in lows.values()]
    user_scores(tenant, model, day, rows)
    later = day + timedelta(days=30)
    send(tenant, [track(f"h{i}", "Logged in", later) for i in range(40)] + [track(f"l{i}", "Logged in", later)
                                                                             for i in range(10)])
    result = outcomes(tenant, day=day)
    assert not result.too_thin
    assert result.verdict(30) == "In order on this day — users active 30 days later: high 80.0%, low 20.0%."


def test_outcome_verdict_says_when_tiers_are_out_of_order(tenant):
    """The case that was called "Yes": high 84.7%, medium 39.5%, low 41.6%, dormant 84%."""
    model = published(tenant)
    day = tenant.today() - timedelta(days=65)
    groups = {"high": (40, 34), "medium": (40, 16), "low": (40, 17), "dormant": (40, 35)}
    rows, later = [], day + timedelta(days=30)
    sends = []
    for tier, (n, stay) in groups.items():
        made = users(tenant, *[f"{tier}{i}" for i in range(n)])
        rows += [(u, {"high": 50, "medium": 20, "low": 1, "dormant": 0}[tier], tier) for u in made.values()]
        sends += [track(f"{tier}{i}", "Logged in", later) for i in range(stay)]
    user_scores(tenant, model, day, rows)
    send(tenant, sends)
    verdict = outcomes(tenant, day=day).verdict(30)
    assert verdict.startswith("No: the tiers are out of order"), verdict
    assert "Dormant users (87.5%) stayed more than high-tier ones." in verdict
    assert "predictive" not in verdict.lower() and not verdict.startswith("Yes")


# --- Movers, at risk, power users ---------------------------------------------------------------------


def test_risers_and_fallers(tenant):
    model = published(tenant)
    p = users(tenant, "up", "down", "flat", "newcomer")
    day = tenant.today()
    user_scores(tenant, model, day - timedelta(days=7), [(p["up"], 10, "low"), (p["down"], 50, "high"),
                                                         (p["flat"], 5, "low")])
    user_scores(tenant, model, day, [(p["up"], 40, "high"), (p["down"], 20, "low"), (p["flat"], 5, "low"),
                                     (p["newcomer"], 3, "new")])
    result = movers(tenant, subject="users", day=day)
    assert [(m.name, m.change) for m in result["risers"]] == [("up", 30), ("newcomer", 3)]
    assert [(m.name, m.change, m.tier_before) for m in result["fallers"]] == [("down", -30, "high")]


def test_at_risk_accounts_rule(tenant):
    model = published(tenant)
    fell = account(tenant, "fell-a-tier")
    dropped = account(tenant, "lost-40pc")
    fine = account(tenant, "lost-20pc")
    grew = account(tenant, "grew")
    day = tenant.today()
    account_scores(tenant, model, day - timedelta(days=14), [(fell, 100, "high"), (dropped, 100, "medium"),
                                                             (fine, 100, "medium"), (grew, 10, "low")])
    account_scores(tenant, model, day, [(fell, 95, "medium"), (dropped, 60, "medium"), (fine, 80, "medium"),
                                        (grew, 50, "high")])
    result = at_risk_accounts(tenant, day=day)
    assert [a.name for a in result.accounts] == ["lost-40pc", "fell-a-tier"] and result.count == 2
    assert result.accounts[0].change_share == -40.0
    assert [str(r) for r in result.accounts[1].reasons] == ["Tier fell from high to medium in 14 days"]
    # The thresholds are the workspace's own.
    tenant.risk_points_drop = 50
    assert [a.name for a in at_risk_accounts(tenant, day=day).accounts] == ["fell-a-tier"]
    tenant.risk_points_drop = 10
    assert at_risk_accounts(tenant, day=day).count == 3
    tenant.risk_tier_drop = False
    assert at_risk_accounts(tenant, day=day).count == 2


def test_power_users_are_the_top_percent(tenant):
    model = published(tenant)
    p = users(tenant, *[f"u{i}" for i in range(200)])
    day = tenant.today()
    rows = [(p[f"u{i}"], float(i + 1), "low", round(100.0 * (i + 1) / 200, 2)) for i in range(200)]
    user_scores(tenant, model, day, rows)
    result = power_users(tenant, day=day)
    assert result.count == 2 and [u["name"] for u in result.users] == ["u199", "u198"]
    assert result.threshold == 199.0


def test_people_are_shown_by_their_name_trait(tenant):
    model = published(tenant)
    named = users(tenant, "u-1", name="Lena Brown")["u-1"]
    blank = users(tenant, "u-2", name="")["u-2"]
    day = tenant.today()
    user_scores(tenant, model, day - timedelta(days=7), [(named, 1, "low"), (blank, 1, "low")])
    user_scores(tenant, model, day, [(named, 30, "high"), (blank, 20, "medium")])
    assert [m.name for m in movers(tenant, subject="users", day=day)["risers"]] == ["Lena Brown", "u-2"]
    many = users(tenant, *[f"p{i}" for i in range(150)], name="Power Person")
    user_scores(tenant, model, day - timedelta(days=1),
                [(u, float(i), "low", round(100.0 * (i + 1) / 150, 2)) for i, u in enumerate(many.values())])
    assert {u["name"] for u in power_users(tenant, day=day - timedelta(days=1)).users} == {"Power Person"}
