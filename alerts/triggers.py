"""What each trigger matches on one scored day: a read over the score snapshots and the rollup.

`matches(rule, day)` returns the subjects the rule fires for on `day` (its
filters applied) with the reason in words. It writes nothing: the evaluation
(alerts.services) records firings, the rule's "test" page shows these same
matches for the past week.

"Changes" compare two snapshots of the published model version: the day and
the day before (tier change, entered at risk, became a power user) or the day
N days before (points fell/rose).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

from accounts.models import Tenant
from core.sql import trait_sql
from events.models import CustomerAccount, DailyActivityCount, EndUser
from scoring.models import AccountScore, ScoringModel, UserScore
from scoring.selectors import TIER_RANK, published_model

from . import risk
from .models import AlertRule, Subject, Trigger

POWER_PERCENTILE = 99  # the dashboard's "power users": the top 1% by points


@dataclass
class Match:
    subject_id: int
    public_id: Any
    name: str
    reason: str
    details: dict = field(default_factory=dict)


def _snapshots(tenant: Tenant, model: ScoringModel, subject: str, day: date) -> dict[int, tuple]:
    if subject == Subject.USERS:
        rows = UserScore.objects.for_tenant(tenant).filter(model=model, day=day)
        column = "end_user_id"
    else:
        rows = AccountScore.objects.for_tenant(tenant).filter(model=model, day=day)
        column = "account_id"
    return {
        sid: (points, tier, pct) for sid, points, tier, pct in rows.values_list(column, "points", "tier", "percentile")
    }


def _tier_changed(rule, tenant, model, day) -> dict[int, tuple[str, dict]]:
    now, before = (
        _snapshots(tenant, model, rule.subject, day),
        _snapshots(tenant, model, rule.subject, day - timedelta(1)),
    )
    out = {}
    for sid, (_p, tier, _pct) in now.items():
        if sid not in before or before[sid][1] == tier:
            continue
        was = before[sid][1]
        if rule.tier_to and tier != rule.tier_to:
            continue
        if rule.tier_from in ("higher", "lower"):
            if was not in TIER_RANK or tier not in TIER_RANK:
                continue  # "new" is off the ladder: leaving it is neither a drop nor a rise
            if (TIER_RANK[was] > TIER_RANK[tier]) != (rule.tier_from == "higher"):
                continue
        elif rule.tier_from and was != rule.tier_from:
            continue
        verb = "dropped" if TIER_RANK.get(was, -1) > TIER_RANK.get(tier, -1) else "changed"
        out[sid] = (f"tier {verb} from {was} to {tier}", {"tier": tier, "tier_before": was})
    return out


def _points_changed(rule, tenant, model, day) -> dict[int, tuple[str, dict]]:
    now = _snapshots(tenant, model, rule.subject, day)
    before = _snapshots(tenant, model, rule.subject, day - timedelta(rule.days))
    fell = rule.trigger == Trigger.POINTS_FELL
    out = {}
    for sid, (points, tier, _pct) in now.items():
        was = before.get(sid, (None,))[0]
        if not was:
            continue  # nothing to fall from (or no snapshot then): a share of 0 says nothing
        share = 100.0 * (points - was) / was
        if (fell and share <= -rule.percent) or (not fell and share >= rule.percent):
            verb = "fell" if fell else "rose"
            out[sid] = (
                f"points {verb} {abs(share):.1f}% in {rule.days} days ({was:g} → {points:g})",
                {"points": points, "points_before": was, "change_percent": round(share, 1), "tier": tier},
            )
    return out


def _power_user(rule, tenant, model, day) -> dict[int, tuple[str, dict]]:
    def power(rows):
        return {sid for sid, (p, _t, pct) in rows.items() if p > 0 and pct is not None and pct > POWER_PERCENTILE}

    now = _snapshots(tenant, model, rule.subject, day)
    before = power(_snapshots(tenant, model, rule.subject, day - timedelta(1)))
    return {
        sid: (
            f"became a power user (top 1%: {now[sid][0]:g} points)",
            {"points": now[sid][0], "percentile": now[sid][2]},
        )
        for sid in power(now) - before
    }


def _at_risk(rule, tenant, model, day) -> dict[int, tuple[str, dict]]:
    now = risk.at_risk_reasons(tenant, day, model)
    before = risk.at_risk_reasons(tenant, day - timedelta(1), model)
    return {
        sid: (f"entered at risk: {reason}", {"risk_reason": reason}) for sid, reason in now.items() if sid not in before
    }


def _rollup(tenant):
    return DailyActivityCount.objects.for_tenant(tenant)


def _subject_column(subject: str) -> str:
    return "end_user_id" if subject == Subject.USERS else "end_user__account_id"


def _first_event(rule, tenant, model, day) -> dict[int, tuple[str, dict]]:
    column = _subject_column(rule.subject)
    active = set(_rollup(tenant).filter(day=day).exclude(**{f"{column}__isnull": True}).values_list(column, flat=True))
    earlier = (
        set(
            _rollup(tenant)
            .filter(day__lt=day, **{f"{column}__in": list(active)})
            .values_list(column, flat=True)
            .distinct()
        )
        if active
        else set()
    )
    what = "new account" if rule.subject == Subject.ACCOUNTS else "new user"
    return {sid: (f"first event of a {what}", {}) for sid in active - earlier}


def _no_event(rule, tenant, model, day) -> dict[int, tuple[str, dict]]:
    # Fires on the day the silence reaches N days: active N days ago, nothing since.
    column = _subject_column(rule.subject)
    last_day = day - timedelta(rule.days)
    then = set(
        _rollup(tenant).filter(day=last_day).exclude(**{f"{column}__isnull": True}).values_list(column, flat=True)
    )
    since = (
        set(
            _rollup(tenant)
            .filter(day__gt=last_day, day__lte=day, **{f"{column}__in": list(then)})
            .values_list(column, flat=True)
            .distinct()
        )
        if then
        else set()
    )
    return {
        sid: (
            f"no event for {rule.days} days (last on {last_day.isoformat()})",
            {"last_event_day": last_day.isoformat()},
        )
        for sid in then - since
    }


TRIGGERS = {
    Trigger.TIER_CHANGED: _tier_changed,
    Trigger.POINTS_FELL: _points_changed,
    Trigger.POINTS_ROSE: _points_changed,
    Trigger.POWER_USER: _power_user,
    Trigger.AT_RISK: _at_risk,
    Trigger.FIRST_EVENT: _first_event,
    Trigger.NO_EVENT: _no_event,
}


def _filtered_subjects(rule: AlertRule, ids):
    if rule.subject == Subject.USERS:
        rows = EndUser.objects.for_tenant(rule.tenant_id).filter(pk__in=ids)
        if rule.filter_owner_id:
            rows = rows.filter(
                Q(owner_id=rule.filter_owner_id) | Q(owner__isnull=True, account__owner_id=rule.filter_owner_id)
            )
    else:
        rows = CustomerAccount.objects.for_tenant(rule.tenant_id).filter(pk__in=ids)
        if rule.filter_owner_id:
            rows = rows.filter(owner_id=rule.filter_owner_id)
    table = rows.model._meta.db_table
    if rule.filter_plan:
        rows = rows.filter(_trait_equals(table, "plan", rule.filter_plan))
    if rule.filter_trait_key:
        rows = rows.filter(_trait_equals(table, rule.filter_trait_key, rule.filter_trait_value or None))
    if rule.filter_segment:
        year, month = int(rule.filter_segment[:4]), int(rule.filter_segment[5:])
        rows = rows.filter(first_seen_at__year=year, first_seen_at__month=month)
    return rows


def _trait_equals(table: str, key: str, value: str | None) -> Q:
    """A trait's text value equals `value` (any value when None): numbers compare as their text ("120")."""
    # The SQL text is the table name (a model's own) and trait_sql's expression; the key and value are parameters.
    sql, params = trait_sql(table, key)
    if value is None:
        return Q(RawSQL(f"{sql} IS NOT NULL", params, output_field=BooleanField()))  # noqa: S611
    return Q(RawSQL(f"{sql} = %s", [*params, value], output_field=BooleanField()))  # noqa: S611


def _name(subject) -> str:
    if isinstance(subject, CustomerAccount):
        return subject.name or subject.group_id
    return subject.display_name


def matches(rule: AlertRule, day: date, model: ScoringModel | None = None) -> list[Match]:
    """The subjects `rule` fires for on `day`, filters applied, in a stable order."""
    tenant = rule.tenant
    model = model or published_model(tenant)
    if model is None:
        return []
    found = TRIGGERS[Trigger(rule.trigger)](rule, tenant, model, day)
    if not found:
        return []
    subjects = _filtered_subjects(rule, list(found))
    out = []
    for subject in subjects.order_by("pk"):
        reason, details = found[subject.pk]
        out.append(Match(subject.pk, subject.public_id, _name(subject), reason, details))
    return out


def first_of(matches_by_day: dict[date, list[Match]]) -> list[tuple[date, Match]]:
    """Flatten a test run's matches, newest day first."""
    return [(day, m) for day in sorted(matches_by_day, reverse=True) for m in matches_by_day[day]]
