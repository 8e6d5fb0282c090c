"""Risk that shows early (issue 17): reasons, the workspace's thresholds, and the "new account" fix."""

from datetime import timedelta

import pytest
from django.urls import reverse

from events.models import Activity, CustomerAccount
from insights.queries.risk import RiskSettings, at_risk
from scoring import engine
from scoring.models import AccountScore, ActivityWeight

from .helpers import group, published, send, track


def _scored(tenant, raws, days):
    """Send the messages, publish a model (1 point per "Used feature"), and score `days`."""
    send(tenant, raws)
    model = published(tenant)
    ActivityWeight.objects.create(tenant=tenant, model=model, points=1,
                                  activity=Activity.objects.for_tenant(tenant).get(name="Used feature"))
    for day in sorted(days):
        engine.compute_day(model, day)
    return model


@pytest.fixture
def silent_seats(tenant):
    """The issue's case: four of an account's eight seats went silent 8-13 days before scoring, while
    the other four did more than before (so the account's points rose)."""
    day = tenant.today() - timedelta(days=1)
    raws = []
    quiet_since = {4: 8, 5: 10, 6: 12, 7: 13}
    for seat in range(8):
        uid = f"seat-{seat}"
        raws.append(group(uid, "northwind", day - timedelta(days=40), name="Northwind"))
        for ago in range(40, -1, -1):
            if ago < quiet_since.get(seat, 0):
                break
            times = 3 if seat < 4 and ago < 7 else 1
            raws += [track(uid, "Used feature", day - timedelta(days=ago)) for _ in range(times)]
    # A second, steady account so that percentiles mean something.
    for ago in range(40, -1, -1):
        raws.append(track("steady-1", "Used feature", day - timedelta(days=ago), group_id="steady"))
    model = _scored(tenant, raws, [day, day - timedelta(days=7), day - timedelta(days=14)])
    return day, model


def test_silent_seats_put_the_account_at_risk(tenant, silent_seats):
    day, model = silent_seats
    northwind = CustomerAccount.objects.for_tenant(tenant).get(group_id="northwind")
    now = AccountScore.objects.for_tenant(tenant).get(account=northwind, day=day, model=model)
    before = AccountScore.objects.for_tenant(tenant).get(account=northwind, day=day - timedelta(days=7), model=model)
    assert now.points > before.points  # the case that was listed as "rising"
    result = at_risk(tenant, day=day)
    assert [i.name for i in result.items] == ["Northwind"]
    assert [str(r) for r in result.items[0].reasons] == ["4 of 8 seats silent for 8+ days"]


def test_the_dashboard_counts_it_and_does_not_call_it_rising(tenant, silent_seats, owner_client):
    html = owner_client.get(reverse("tenant_home", args=[tenant.slug])).content.decode()
    at_risk_card = html[html.index("Accounts at risk"):html.index("Power users")]
    assert "1 account</small>" in at_risk_card
    assert "4 of 8 seats silent for 8+ days" in at_risk_card
    rising = html[html.index("<h3>Accounts rising</h3>"):html.index("<h3>Accounts falling</h3>")]
    assert "Northwind" not in rising


def test_silent_seat_thresholds_are_the_workspaces(tenant, silent_seats):
    day, _ = silent_seats
    assert not at_risk(tenant, day=day, settings=RiskSettings(silent_days=14)).items  # none silent 14+ days
    assert not at_risk(tenant, day=day, settings=RiskSettings(silent_share=60)).items  # 50% < 60%
    only_longer = at_risk(tenant, day=day, settings=RiskSettings(silent_days=10, silent_share=25))
    assert [str(r) for r in only_longer.items[0].reasons] == ["3 of 8 seats silent for 10+ days"]


def test_last_seen_beyond_the_usual_gap(tenant):
    """An account active every other day that has been quiet for 9 days; a weekly one quiet for 5 is fine."""
    day = tenant.today() - timedelta(days=1)
    raws = [track("often-1", "Used feature", day - timedelta(days=ago), group_id="often")
            for ago in range(9, 60, 2)]
    raws += [track("weekly-1", "Used feature", day - timedelta(days=ago), group_id="weekly")
             for ago in range(5, 60, 7)]
    _scored(tenant, raws, [day, day - timedelta(days=14)])
    result = at_risk(tenant, day=day, settings=RiskSettings(points_drop=0, tier_drop=False))
    assert [(i.name, [str(r) for r in i.reasons]) for i in result.items] == [
        ("often", ["Last seen 9 days ago; usually active every 2.0 days"])
    ]


def test_end_users_at_risk(tenant):
    day = tenant.today() - timedelta(days=1)
    raws = [track("fading", "Used feature", day - timedelta(days=ago)) for ago in range(20, 60)]
    raws += [track("busy", "Used feature", day - timedelta(days=ago)) for ago in range(0, 60)]
    _scored(tenant, raws, [day, day - timedelta(days=14)])
    result = at_risk(tenant, day=day, subject="users")
    assert [i.name for i in result.items] == ["fading"]
    # 10 points now against 30 in the window ending 30 days earlier: falling under the default rule (50 %).
    assert {r.code for r in result.items[0].reasons} == {"points", "last_seen", "falling"}
    assert "Falling: points fell 67% in 30 days (30.0 → 10.0)" in [str(r) for r in result.items[0].reasons]


def test_falling_is_the_scoring_models_rule(tenant):
    day = tenant.today() - timedelta(days=1)
    # Every day for 60 days, then only one day in two over the last 30: points 30 → 15, a 50 % fall.
    raws = [track("halved", "Used feature", day - timedelta(days=ago)) for ago in range(30, 60)]
    raws += [track("halved", "Used feature", day - timedelta(days=ago)) for ago in range(0, 30, 2)]
    raws += [track("busy", "Used feature", day - timedelta(days=ago)) for ago in range(0, 60)]
    model = _scored(tenant, raws, [day, day - timedelta(days=14)])
    only_falling = RiskSettings(points_drop=0, tier_drop=False, silent_share=0, gap_factor=0)
    result = at_risk(tenant, day=day, subject="users", settings=only_falling)
    assert [(i.name, [str(r) for r in i.reasons]) for i in result.items] == [
        ("halved", ["Falling: points fell 50% in 30 days (30.0 → 15.0)"])
    ]
    model.falling_drop_pct = 60  # a fall of 50 % is not one of 60 %
    model.save()
    engine.compute_day(model, day)
    assert not at_risk(tenant, day=day, subject="users", settings=only_falling).items


def test_an_old_account_is_not_new_again_because_its_users_are(tenant):
    """Its old users stopped more than a window ago, its active users are all new: its fall shows."""
    day = tenant.today() - timedelta(days=1)
    raws = [group(u, "oldco", day - timedelta(days=45), name="Old Co") for u in ("old-1", "old-2")]
    raws += [track(u, "Used feature", day - timedelta(days=ago)) for u in ("old-1", "old-2") for ago in range(31, 42)]
    raws += [group(u, "oldco", day - timedelta(days=4)) for u in ("new-1", "new-2")]
    raws += [track(u, "Used feature", day - timedelta(days=ago)) for u in ("new-1", "new-2") for ago in range(0, 5)]
    raws += [track("other-1", "Used feature", day - timedelta(days=ago), group_id="other") for ago in range(0, 60)]
    model = _scored(tenant, raws, [day, day - timedelta(days=14)])
    oldco = CustomerAccount.objects.for_tenant(tenant).get(group_id="oldco")
    score = AccountScore.objects.for_tenant(tenant).get(account=oldco, day=day, model=model)
    assert score.active_users == 2 and score.tier != "new"
    item = at_risk(tenant, day=day).by_id()[oldco.pk]
    assert "Points fell 54.5% in 14 days (22.0 → 10.0)" in [str(r) for r in item.reasons]


def test_a_really_new_account_is_new_and_never_at_risk(tenant):
    day = tenant.today() - timedelta(days=1)
    raws = [track("fresh-1", "Used feature", day - timedelta(days=ago), group_id="fresh") for ago in range(0, 5)]
    raws += [track("other-1", "Used feature", day - timedelta(days=ago), group_id="other") for ago in range(0, 60)]
    model = _scored(tenant, raws, [day])
    fresh = CustomerAccount.objects.for_tenant(tenant).get(group_id="fresh")
    assert AccountScore.objects.for_tenant(tenant).get(account=fresh, day=day, model=model).tier == "new"
    assert fresh.pk not in at_risk(tenant, day=day).ids


def test_thresholds_are_set_on_the_settings_page(tenant, owner_client, client, viewer):
    url = reverse("accounts:tenant_settings", args=[tenant.slug])
    page = owner_client.get(url).content.decode()
    assert 'name="risk-risk_silent_days"' in page
    form = {"section": "risk", "risk-risk_days": "21", "risk-risk_points_drop": "40", "risk-risk_tier_drop": "on",
            "risk-risk_silent_days": "10", "risk-risk_silent_share": "30", "risk-risk_gap_factor": "2.5"}
    assert owner_client.post(url, form).status_code == 302
    tenant.refresh_from_db()
    assert RiskSettings.of(tenant) == RiskSettings(days=21, points_drop=40, tier_drop=True, silent_days=10,
                                                   silent_share=30, gap_factor=2.5)
    bad = owner_client.post(url, {**form, "risk-risk_points_drop": "140"})
    assert bad.status_code == 400 and "less than or equal to 100" in bad.content.decode()
    client.force_login(viewer)
    assert client.post(url, form).status_code == 403


def test_one_subjects_reasons_for_its_page(tenant, silent_seats, owner_client):
    day, _ = silent_seats
    northwind = CustomerAccount.objects.for_tenant(tenant).get(group_id="northwind")
    steady = CustomerAccount.objects.for_tenant(tenant).get(group_id="steady")
    assert [str(r) for r in at_risk(tenant, day=day, ids=[northwind.pk]).items[0].reasons] == [
        "4 of 8 seats silent for 8+ days"]
    assert at_risk(tenant, day=day, ids=[steady.pk]).items == []
    page = owner_client.get(reverse("scoring:account_detail", args=[tenant.slug, northwind.public_id]))
    assert "4 of 8 seats silent for 8+ days" in page.content.decode()
    listing = owner_client.get(reverse("scoring:accounts", args=[tenant.slug])).content.decode()
    assert "4 of 8 seats silent for 8+ days" in listing
