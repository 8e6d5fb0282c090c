"""Each trigger and filter on snapshots written as the engine writes them; Slack and email actions."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from alerts import services, triggers
from alerts.models import ActionKind, AlertRule, Subject, Trigger
from events.models import CustomerAccount, DailyActivityCount, EndUser
from scoring.models import Tier
from tests.scoring.conftest import make_activities

from .conftest import LONG_AGO, falling_accounts, snapshot_model, user_scores


def _rule(tenant, **fields):
    rule = AlertRule(tenant=tenant, name="r", **fields)
    rule.full_clean()
    return rule


def _names(rule, day):
    return [(m.name, m.reason) for m in triggers.matches(rule, day)]


def test_tier_change_to_and_from(tenant):
    falling_accounts(tenant)
    today = tenant.today()
    assert _names(_rule(tenant, trigger=Trigger.TIER_CHANGED, tier_to="low"), today) == [
        ("Falling Co", "tier dropped from medium to low")
    ]
    assert _names(_rule(tenant, trigger=Trigger.TIER_CHANGED, tier_from="high"), today) == []
    assert _names(_rule(tenant, trigger=Trigger.TIER_CHANGED, tier_from="higher", tier_to="low"), today) == [
        ("Falling Co", "tier dropped from medium to low")
    ]
    assert _names(_rule(tenant, trigger=Trigger.TIER_CHANGED, tier_from="lower", tier_to="low"), today) == []
    assert _names(_rule(tenant, trigger=Trigger.TIER_CHANGED, tier_to="low"), today - timedelta(days=1)) == []


def test_points_fell_and_rose(tenant):
    falling_accounts(tenant)
    today = tenant.today()
    fell = _rule(tenant, trigger=Trigger.POINTS_FELL, percent=50, days=1)
    assert _names(fell, today) == [("Falling Co", "points fell 77.8% in 1 days (90 → 20)")]
    assert _names(_rule(tenant, trigger=Trigger.POINTS_FELL, percent=90, days=1), today) == []
    rose = _rule(tenant, trigger=Trigger.POINTS_ROSE, percent=3, days=1)
    assert [n for n, _ in _names(rose, today)] == ["Steady Co"]


def test_entered_at_risk_uses_the_at_risk_rule(tenant):
    falling_accounts(tenant)
    rule = _rule(tenant, trigger=Trigger.AT_RISK)
    # Today it fell a tier against 14 days ago; yesterday it was not at risk (90 vs 100: -10%).
    # The reasons are the workspace's at-risk rule's, as the dashboard shows them.
    assert _names(rule, tenant.today()) == [(
        "Falling Co",
        "entered at risk: Points fell 80.0% in 14 days (100.0 → 20.0); Tier fell from medium to low in 14 days",
    )]


def test_filters(tenant, owner, editor):
    falling_accounts(tenant, owner=owner)
    today = tenant.today()
    base = {"trigger": Trigger.POINTS_FELL, "percent": 1, "days": 1}
    assert len(triggers.matches(_rule(tenant, **base), today)) == 1
    assert _names(_rule(tenant, filter_plan="free", **base), today) == []
    assert len(triggers.matches(_rule(tenant, filter_plan="paid", **base), today)) == 1
    assert len(triggers.matches(_rule(tenant, filter_owner=owner, **base), today)) == 1
    assert _names(_rule(tenant, filter_owner=editor, **base), today) == []
    assert len(triggers.matches(_rule(tenant, filter_trait_key="plan", filter_trait_value="paid", **base), today)) == 1
    assert _names(_rule(tenant, filter_trait_key="region", **base), today) == []
    assert _names(_rule(tenant, filter_segment="2024-12", **base), today) == []
    assert len(triggers.matches(_rule(tenant, filter_segment=LONG_AGO.strftime("%Y-%m"), **base), today)) == 1


def test_power_users_first_event_and_silence(tenant):
    model = snapshot_model(tenant)
    today = tenant.today()
    star = EndUser.objects.create(tenant=tenant, user_id="star")
    quiet = EndUser.objects.create(tenant=tenant, user_id="quiet")
    user_scores(tenant, model, today - timedelta(days=1), [(star, 50, Tier.HIGH, 90)])
    user_scores(tenant, model, today, [(star, 500, Tier.HIGH, 99.5)])
    assert _names(_rule(tenant, subject=Subject.USERS, trigger=Trigger.POWER_USER), today) == [
        ("star", "became a power user (top 1%: 500 points)")
    ]
    act = make_activities(tenant, "Logged in")["Logged in"]
    DailyActivityCount.objects.create(
        tenant=tenant, end_user=quiet, activity=act, day=today - timedelta(days=7), count=1
    )
    DailyActivityCount.objects.create(tenant=tenant, end_user=star, activity=act, day=today, count=1)
    first = _rule(tenant, subject=Subject.USERS, trigger=Trigger.FIRST_EVENT)
    assert _names(first, today) == [("star", "first event of a new user")]
    silent = _rule(tenant, subject=Subject.USERS, trigger=Trigger.NO_EVENT, days=7)
    assert [n for n, _ in _names(silent, today)] == ["quiet"]
    assert _names(silent, today - timedelta(days=1)) == []


def test_rules_are_checked(tenant):
    with pytest.raises(ValidationError) as error:
        _rule(tenant, subject=Subject.USERS, trigger=Trigger.AT_RISK)
    assert "subject" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        _rule(tenant, trigger=Trigger.POINTS_FELL)
    assert {"days", "percent"} <= set(error.value.message_dict)
    with pytest.raises(ValidationError) as error:
        _rule(tenant, trigger=Trigger.TIER_CHANGED, filter_segment="March", filter_trait_key="a.b")
    assert {"tier_to", "filter_segment", "filter_trait_key"} <= set(error.value.message_dict)
    with pytest.raises(ValidationError) as error:
        services.rule_save(tenant=tenant, name="x", subject="accounts", trigger="at_risk", actions=[])
    assert "actions" in error.value.message_dict


def test_slack_and_email_actions(tenant, owner, editor, receiver, django_capture_on_commit_callbacks):
    _model, falling, _ = falling_accounts(tenant, owner=owner)
    services.rule_save(
        tenant=tenant,
        name="Dropped to low",
        subject="accounts",
        trigger="tier_changed",
        tier_to="low",
        actions=[
            {"kind": ActionKind.SLACK, "slack_url": receiver.url},
            {"kind": ActionKind.EMAIL, "email_owner": True, "email_user_ids": [editor.pk]},
        ],
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.evaluate_days(tenant, [tenant.today()])
    slack = json.loads(receiver.requests[0]["body"])
    assert "*Account Falling Co*: tier dropped from medium to low" in slack["text"]
    assert f"/scoring/accounts/{falling.public_id}/|Open" in slack["text"]
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == sorted([owner.email, editor.email])
    assert "Falling Co" in message.subject and "tier dropped from medium to low" in message.body


def test_email_only_goes_to_members(tenant, owner, outsider):
    with pytest.raises(ValidationError):
        services.rule_save(
            tenant=tenant,
            name="x",
            subject="accounts",
            trigger="at_risk",
            actions=[{"kind": ActionKind.EMAIL, "email_user_ids": [outsider.pk]}],
        )


def test_preview_last_week_records_nothing(tenant):
    falling_accounts(tenant)
    rule = services.rule_save(
        tenant=tenant,
        name="low",
        subject="accounts",
        trigger="tier_changed",
        tier_to="low",
        actions=[{"kind": ActionKind.EMAIL, "email_owner": True}],
    )
    hits = services.preview_last_week(rule)
    assert [(d, m.name) for d, m in hits] == [(tenant.today(), "Falling Co")]
    assert not rule.firings.exists()
    assert CustomerAccount.objects.for_tenant(tenant).count() == 2
