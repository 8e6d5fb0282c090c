"""The insight aggregates the scoring job writes (insights/aggregates.py) against the on-the-fly queries.

The `*_live` functions are the queries the pages ran before the aggregates: they are
the oracle here (and the pages' fallback for days never aggregated). A page read
from the aggregates must show exactly their numbers.
"""

import csv
import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse

from insights import aggregates
from insights.models import AdoptionCount, AggregatedDay, GrowthCount, OutcomeCount, TransitionCount
from insights.queries import adoption, growth, outcomes, transitions
from insights.queries.common import scored_days
from insights.views.transitions import snapped_days
from scoring import engine, hooks
from scoring.models import ProductScore, RunKind
from scoring.selectors import preview_draft, published_model
from scoring.services import run_create, run_in_foreground, scoring_model_create_draft

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

GROWTH_KEYS = [(s, m, p) for s in ("users", "accounts") for m in ("active", "engaged") for p in ("week", "month")]


@pytest.fixture
def from_aggregates(monkeypatch):
    """The pages' readers with their fallback refused: a test reads only what the aggregates hold."""

    def refuse(*args, **kwargs):
        raise AssertionError("fell back to the on-the-fly query")

    for module, name in ((growth, "growth_accounting_live"), (adoption, "feature_adoption_live"),
                         (adoption, "adoption_trend_live"), (transitions, "tier_transitions_live"),
                         (outcomes, "outcomes_live")):
        monkeypatch.setattr(module, name, refuse)


# The oracles, bound before `from_aggregates` swaps the module names.
LIVE_GROWTH = growth.growth_accounting_live
LIVE_ADOPTION = adoption.feature_adoption_live
LIVE_TREND = adoption.adoption_trend_live
LIVE_TRANSITIONS = transitions.tier_transitions_live
LIVE_OUTCOMES = outcomes.outcomes_live


def _growth(g):
    return [(r.start, r.active, r.new, r.retained, r.resurrected, r.churned, r.partial) for r in g.rows], g.baseline


def _adoption(a):
    return (a.last_day, a.active_users, a.active_accounts, a.active_users_before,
            [(r.name, r.users, r.accounts, r.users_before, r.accounts_before, r.user_share, r.account_share,
              r.user_share_before) for r in a.rows])


def assert_pages_match_the_oracle(tenant):
    for subject, measure, period in GROWTH_KEYS:
        stored = growth.growth_accounting.__wrapped__(tenant, subject=subject, measure=measure, period=period)
        live = LIVE_GROWTH(tenant, subject=subject, measure=measure, period=period)
        assert _growth(stored) == _growth(live), (subject, measure, period)
    for window in aggregates.WINDOWS:
        assert _adoption(adoption.feature_adoption.__wrapped__(tenant, window=window)) == _adoption(
            LIVE_ADOPTION(tenant, window=window)), window
    assert adoption.adoption_trend.__wrapped__(tenant) == LIVE_TREND(tenant)
    snapped = snapped_days(tenant, {})
    if snapped:
        model, day_from, day_to = snapped
        for subject in ("users", "accounts"):
            stored = transitions.tier_transitions(tenant, day_from=day_from, day_to=day_to, subject=subject,
                                                  model=model)
            live = LIVE_TRANSITIONS(tenant, day_from=day_from, day_to=day_to, subject=subject, model=model)
            assert (stored.matrix, stored.rows) == (live.matrix, live.rows), subject
    days = scored_days(tenant, published_model(tenant))
    today = tenant.today()
    # The default day (60 days observable), one with only 30 days observable, and the latest.
    for day in {None, *days[-1:], *[d for d in days if d + timedelta(days=45) >= today][:1]}:
        for subject in ("users", "accounts"):
            assert _outcomes(outcomes.outcomes.__wrapped__(tenant, day=day, subject=subject)) == _outcomes(
                LIVE_OUTCOMES(tenant, day=day, subject=subject)), (day, subject)


def _outcomes(o):
    return (o.day, o.observable, [(r.group, r.subjects, r.active, r.with_churn_trait, r.churned, r.mrr)
                                  for r in (*o.by_tier, *o.by_decile)])


def _stored_rows(tenant):
    out = {}
    for table in (GrowthCount, AdoptionCount, TransitionCount, OutcomeCount, AggregatedDay):
        fields = [f.attname for f in table._meta.concrete_fields if f.attname != "id"]
        out[table.__name__] = sorted(table.objects.for_tenant(tenant).values_list(*fields), key=repr)
    return out


# --- A demo-like world scored by the real engine (the hook ran on every day) ------------------------


def test_the_scoring_job_wrote_every_scored_day(scored_tenant):
    model = published_model(scored_tenant)
    scored = set(ProductScore.objects.for_tenant(scored_tenant).filter(model=model).values_list("day", flat=True))
    written = set(AggregatedDay.objects.for_tenant(scored_tenant).filter(model=model).values_list("day", flat=True))
    assert scored and written == scored
    assert GrowthCount.objects.for_tenant(scored_tenant).filter(model=model, active__gt=0).exists()


def test_every_insight_page_equals_the_on_the_fly_queries(scored_tenant, from_aggregates):
    # The demo's events start before its 90 scored days: the months before need the backfill.
    aggregates.aggregates_backfill(scored_tenant)
    assert_pages_match_the_oracle(scored_tenant)


def test_a_day_not_aggregated_falls_back_to_the_on_the_fly_query(scored_tenant):
    aggregates.aggregates_backfill(scored_tenant)
    model = published_model(scored_tenant)
    week = monday(scored_tenant.today()) - timedelta(days=1)  # last Sunday: the end of last week
    AggregatedDay.objects.for_tenant(scored_tenant).filter(model=model, day=week).delete()
    GrowthCount.objects.for_tenant(scored_tenant).filter(model=model, day=week).delete()
    stored = growth.growth_accounting.__wrapped__(scored_tenant, subject="users", period="week")
    assert _growth(stored) == _growth(LIVE_GROWTH(scored_tenant, subject="users", period="week"))
    assert stored.rows[-2].active > 0  # never a zero for the missing day


def _recompute(model, first_day, last_day):
    """A recompute through the scoring service, in this process (its hooks run as in a worker)."""
    run = run_create(model=model, kind=RunKind.RECOMPUTE, first_day=first_day, last_day=last_day)
    return run_in_foreground(run)


def test_a_recomputed_day_writes_identical_rows(scored_tenant):
    model = published_model(scored_tenant)
    before = _stored_rows(scored_tenant)
    today = scored_tenant.today()
    day = today - timedelta(days=3)
    AggregatedDay.objects.for_tenant(scored_tenant).filter(day=day).delete()
    _recompute(model, day, day)  # the scoring hook rewrites its day
    aggregates.aggregate_days(model, [today - timedelta(days=d) for d in range(10)])  # a range at once
    assert _stored_rows(scored_tenant) == before


def test_a_range_at_once_equals_day_by_day(scored_tenant):
    model = published_model(scored_tenant)
    today = scored_tenant.today()
    days = [today - timedelta(days=d) for d in range(40, -1, -1)]
    for day in days:
        aggregates.aggregate_days(model, [day])
    one_by_one = _stored_rows(scored_tenant)
    aggregates.aggregate_days(model, days)
    assert _stored_rows(scored_tenant) == one_by_one


def test_a_failing_day_leaves_its_aggregates_as_they_were(scored_tenant):
    """The hook writes in the scoring transaction: a later failure takes its rows back with the scores."""
    model = published_model(scored_tenant)
    before = _stored_rows(scored_tenant)
    unscored = scored_tenant.today() - timedelta(days=120)
    written = []

    def fail(model, days):
        written.append(AggregatedDay.objects.for_tenant(model.tenant_id).filter(model=model, day__in=days).count())
        raise RuntimeError("the worker died")

    hooks.register_day_hook(fail)  # after the insights hook: its rows are written when this fails
    try:
        for day in (scored_tenant.today(), unscored):
            with pytest.raises(RuntimeError):
                _recompute(model, day, day)
    finally:
        hooks._day_hooks.remove(fail)
    assert written == [1, 1]  # the insights hook had written each day in that transaction
    assert _stored_rows(scored_tenant) == before
    assert not AggregatedDay.objects.for_tenant(scored_tenant).filter(day=unscored).exists()


def test_drafts_previews_and_backtests_write_no_aggregates(scored_tenant):
    published = published_model(scored_tenant)
    draft = scoring_model_create_draft(tenant=scored_tenant, source=published)
    unscored = scored_tenant.today() - timedelta(days=100)
    with transaction.atomic():
        engine.compute_day(draft, scored_tenant.today())
        engine.compute_day(published, unscored)  # a backtest's day: the engine outside a run
        assert not AggregatedDay.objects.for_tenant(scored_tenant).filter(model=draft).exists()
        assert not AggregatedDay.objects.for_tenant(scored_tenant).filter(day=unscored).exists()
        transaction.set_rollback(True)
    preview_draft(draft)
    assert not AggregatedDay.objects.for_tenant(scored_tenant).filter(model=draft).exists()


def test_each_tenant_has_its_own_aggregates(scored_world, db):
    """The other workspace was scored from the same demo (same end user ids and days, fewer users)."""
    tenant, other = scored_world["tenant"], scored_world["other_tenant"]
    mine = GrowthCount.objects.for_tenant(tenant).filter(measure="active", period="week", subject="users")
    theirs = GrowthCount.objects.for_tenant(other).filter(measure="active", period="week", subject="users")
    day = tenant.today() - timedelta(days=1)
    assert mine.get(day=day).active > theirs.get(day=day).active > 0
    assert {r.model.tenant_id for r in mine.select_related("model")} == {tenant.pk}


def test_the_management_command_fills_past_days(scored_tenant, capsys):
    model = published_model(scored_tenant)
    AggregatedDay.objects.for_tenant(scored_tenant).filter(model=model).delete()
    call_command("aggregate_insights", "--tenant", scored_tenant.slug, "--days", "30")
    written = AggregatedDay.objects.for_tenant(scored_tenant).filter(model=model)
    assert written.count() == 30 and "Aggregated 30 day(s)" in capsys.readouterr().out


# --- Hand-built worlds: the cases of test_insights, aggregated -------------------------------------

def test_growth_from_the_aggregates_of_a_hand_built_world(weekly_events, from_aggregates):
    tenant = weekly_events
    published(tenant)
    aggregates.aggregates_backfill(tenant)
    result = growth.growth_accounting.__wrapped__(tenant, subject="users", period="week")
    assert [(r.active, r.new, r.retained, r.resurrected, r.churned) for r in result.rows[-4:]] == [
        (2, 2, 0, 0, 0), (2, 1, 1, 0, 1), (3, 1, 2, 0, 0), (2, 0, 1, 1, 2)]
    assert_pages_match_the_oracle(tenant)


def test_engaged_growth_from_the_aggregates(tenant, from_aggregates):
    w2 = engaged_weeks(tenant, published(tenant))
    aggregates.aggregates_backfill(tenant)
    result = growth.growth_accounting.__wrapped__(tenant, subject="users", measure="engaged", period="week")
    assert [(r.active, r.new, r.retained, r.resurrected, r.churned) for r in result.rows[-3:]] == [
        (1, 1, 0, 0, 0), (1, 1, 0, 0, 1), (0, 0, 0, 0, 1)]
    assert result.baseline == w2
    assert_pages_match_the_oracle(tenant)


def test_adoption_from_the_aggregates_of_a_hand_built_world(tenant, from_aggregates):
    today = tenant.today()
    recent, older = today - timedelta(days=3), today - timedelta(days=40)
    send(tenant, [
        group("u1", "acme", recent), group("u3", "initech", recent),
        track("u1", "Logged in", recent, "acme"), track("u2", "Logged in", recent), track("u3", "Logged in", recent),
        track("u4", "Logged in", recent), track("u1", "Shared photo", recent, "acme"),
        track("u1", "Shared photo", older), track("u2", "Shared photo", older), track("u2", "Invited friend", older),
        track("u2", "Shared photo", today - timedelta(days=8)),
    ])
    published(tenant)
    aggregates.aggregates_backfill(tenant)
    result = adoption.feature_adoption.__wrapped__(tenant, window=30)
    assert (result.active_users, result.active_accounts) == (4, 2)
    assert_pages_match_the_oracle(tenant)


def test_the_current_period_waits_for_its_first_scoring_run(tenant, from_aggregates):
    """Before today's first run the page shows the last run's day, and says so (never zeros for today)."""
    send(tenant, [track("u1", "Logged in", tenant.today() - timedelta(days=d)) for d in range(0, 20)])
    model = published(tenant)
    aggregates.aggregates_backfill(tenant)
    today = tenant.today()
    AggregatedDay.objects.for_tenant(tenant).filter(model=model, day=today).delete()
    result = adoption.feature_adoption.__wrapped__(tenant, window=7)
    assert result.last_day == today - timedelta(days=1) and result.active_users == 1
    weekly = growth.growth_accounting.__wrapped__(tenant, subject="users", period="week")
    assert weekly.as_of == today - timedelta(days=1)
    if today.weekday() == 0:  # a Monday: this week has no scored day yet
        assert weekly.rows[-1].pending
    else:
        assert weekly.rows[-1].active == 1


def test_outcomes_from_the_aggregates_of_a_hand_built_world(tenant, from_aggregates):
    """test_insights' retention case: a day's tiers, and who was active 30 and 60 days later."""
    model = published(tenant)
    day = tenant.today() - timedelta(days=70)
    retention_world(tenant, model, day)
    aggregates.aggregates_backfill(tenant)
    result = outcomes.outcomes.__wrapped__(tenant, day=day)
    by_tier = {r.group: r for r in result.by_tier}
    assert (by_tier["high"].subjects, by_tier["high"].active) == (4, {30: 3, 60: 1})
    assert (by_tier["low"].share(30), by_tier["low"].share(60)) == (50.0, 0.0)
    assert_pages_match_the_oracle(tenant)


def test_account_outcomes_with_churn_and_mrr_from_the_aggregates(tenant, from_aggregates):
    model = published(tenant)
    day = tenant.today() - timedelta(days=65)
    a = account(tenant, "a", mrr=100, churned=False)
    b = account(tenant, "b", mrr=50.5, status="churned")
    c = account(tenant, "c", plan="free")
    account_scores(tenant, model, day, [(a, 100, "high"), (b, 90, "high"), (c, 1, "low")])
    aggregates.aggregates_backfill(tenant)
    high = {r.group: r for r in outcomes.outcomes.__wrapped__(tenant, day=day, subject="accounts").by_tier}["high"]
    assert (high.with_churn_trait, high.churned, high.churn_rate, high.mrr) == (2, 1, 50.0, 150.5)
    assert_pages_match_the_oracle(tenant)


def test_an_outcome_not_yet_written_is_computed(tenant, from_aggregates, monkeypatch):
    """A horizon that became observable today, before today's first scoring run: computed, not zero."""
    model = published(tenant)
    day = tenant.today() - timedelta(days=30)
    people = users(tenant, "h1", "h2")
    user_scores(tenant, model, day, [(people["h1"], 90, "high"), (people["h2"], 80, "high")])
    send(tenant, [track("h1", "Logged in", tenant.today())])
    aggregates.aggregates_backfill(tenant)
    AggregatedDay.objects.for_tenant(tenant).filter(day=tenant.today()).delete()
    OutcomeCount.objects.for_tenant(tenant).filter(horizon=30).delete()
    monkeypatch.setattr(outcomes, "outcomes_live", LIVE_OUTCOMES)
    result = outcomes.outcomes.__wrapped__(tenant, day=day)
    assert result.by_tier[0].active == {30: 1, 60: None}


def test_the_growth_page_says_when_this_week_has_no_scored_day_yet(client, scored_tenant, scored_viewer):
    model = published_model(scored_tenant)
    this_week = monday(scored_tenant.today())
    AggregatedDay.objects.for_tenant(scored_tenant).filter(model=model, day__gte=this_week).delete()
    client.force_login(scored_viewer)
    response = client.get(reverse("insights:growth", args=[scored_tenant.slug]))
    assert "not scored yet: the first scoring run of the week fills it" in response.content.decode()
    rows = list(csv.reader(io.StringIO(client.get(reverse("insights:growth_csv", args=[scored_tenant.slug]))
                                       .getvalue().decode())))
    current = [r for r in rows if r[3] == str(this_week)]
    assert current and all(r[4:9] == [""] * 5 for r in current)  # blanks, not zeros


def test_engaged_growth_before_the_versions_first_scored_day_is_a_true_zero(tenant, from_aggregates):
    """A version published lately: its aggregates start with its scores, and so do its engaged counts."""
    send(tenant, [track("old-timer", "Logged in", tenant.today() - timedelta(days=200))])
    model = published(tenant)
    engaged_weeks(tenant, model)
    aggregates.aggregates_backfill(tenant, days=30)
    stored = growth.growth_accounting.__wrapped__(tenant, subject="users", measure="engaged", period="month")
    assert _growth(stored) == _growth(LIVE_GROWTH(tenant, subject="users", measure="engaged", period="month"))
    with pytest.raises(AssertionError, match="fell back"):  # the active months before it need the backfill
        growth.growth_accounting.__wrapped__(tenant, subject="users", measure="active", period="month")
