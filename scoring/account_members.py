"""The account page's members and seats, read from AccountMembership (not the primary `EndUser.account`).

An end user belongs to every account that grouped them (events/services/memberships.py),
so an account's members are its open memberships, whichever account is their primary
one, and its seat tiers are those of the members as they stood when the snapshot's day
ended: the same pairs the engine rolled that day up from (`engine.account_members_cte`),
so "engaged of seats" adds up to the snapshot's `seats`. Rules: docs/scoring.md, "Users in
several accounts".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import FloatField, OuterRef, Q, QuerySet, Subquery, Value

from accounts.models import Tenant
from events.models import AccountMembership, CustomerAccount, DailyActivityCount

from .models import AccountScore, ScoringModel, Tier, UserScore
from .selectors import ListDays, SeatEngagement, tier_counts


@dataclass
class MemberRow:
    """A current member of the account, with their snapshot of the list's day (None: not scored that day)."""

    public_id: uuid.UUID
    user_id: str | None
    display_name: str
    since: datetime
    primary: bool
    points: float | None = None
    percentile: float | None = None
    tier: str | None = None
    change_7: float | None = None
    change_30: float | None = None
    last_seen: date | None = None


def open_memberships(tenant: Tenant, account: CustomerAccount) -> QuerySet[AccountMembership]:
    return AccountMembership.objects.for_tenant(tenant).filter(account=account, ended_at__isnull=True)


def members_on(tenant: Tenant, account_id: int, day: date) -> QuerySet[AccountMembership]:
    """The account's memberships as they stood when `day` ended (the engine's rule, `engine.day_start`)."""
    day_end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tenant.tzinfo)
    return AccountMembership.objects.for_tenant(tenant).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gte=day_end), account_id=account_id, started_at__lt=day_end
    )


def seat_engagement(tenant: Tenant, snapshot: AccountScore) -> SeatEngagement:
    """The snapshot's seats by tier: the members of its day (every member, not only primary ones)."""
    members = members_on(tenant, snapshot.account_id, snapshot.day).values("end_user_id")
    tiers = tier_counts(
        UserScore.objects.for_tenant(tenant).filter(model=snapshot.model_id, day=snapshot.day, end_user__in=members)
    )
    return SeatEngagement(seats=snapshot.seats, active=snapshot.active_users,
                          engaged=tiers[Tier.HIGH] + tiers[Tier.MEDIUM], tiers=tiers)


def member_count(tenant: Tenant, account: CustomerAccount, shown: list[MemberRow], limit: int) -> int:
    """How many members the account has now (counted only when the list was cut at `limit`)."""
    if len(shown) < limit:
        return len(shown)
    return open_memberships(tenant, account).values("end_user_id").distinct().count()


def _last_day_seen(user_ref: str) -> Subquery:
    rollup = DailyActivityCount.objects.filter(end_user=OuterRef(user_ref)).order_by("-day").values("day")[:1]
    return Subquery(rollup)


def _points_on(tenant: Tenant, model: ScoringModel, day: date | None) -> Subquery | Value:
    if day is None:
        return Value(None, output_field=FloatField())
    rows = UserScore.objects.for_tenant(tenant).filter(model=model, day=day, end_user=OuterRef("end_user"))
    return Subquery(rows.values("points")[:1])


def members(tenant: Tenant, account: CustomerAccount, model: ScoringModel | None, days: ListDays,
            limit: int) -> list[MemberRow]:
    """Up to `limit` current members: scored ones by points (most first), then those with no snapshot that day.

    One query for the scored members (ranked and limited in the database, with their
    snapshots 7 and 30 days back, membership start and last day seen), and one for the rest
    when fewer than `limit` are scored.
    """
    current = open_memberships(tenant, account)
    result = []
    unscored = current
    if model is not None and days.day is not None:
        day_rows = UserScore.objects.for_tenant(tenant).filter(model=model, day=days.day)
        scored = (
            day_rows.filter(end_user__in=current.values("end_user_id"))
            .select_related("end_user")
            .annotate(
                points_7=_points_on(tenant, model, days.day_7),
                points_30=_points_on(tenant, model, days.day_30),
                since=Subquery(current.filter(end_user=OuterRef("end_user")).values("started_at")[:1]),
                seen_last=_last_day_seen("end_user"),  # not `last_seen`: the snapshot's own column
            )
            .order_by("-points", "end_user_id")[:limit]
        )
        for s in scored:
            row = _row(s.end_user, account, s.since, s.seen_last)
            row.points, row.percentile, row.tier = float(s.points), s.percentile, s.tier
            # No snapshot on the compared day (not seen yet then): it had 0 points, as in the lists.
            if days.day_7 is not None:
                row.change_7 = round(row.points - float(s.points_7 or 0), 4)
            if days.day_30 is not None:
                row.change_30 = round(row.points - float(s.points_30 or 0), 4)
            result.append(row)
        unscored = current.exclude(end_user__in=day_rows.values("end_user_id"))
    if len(result) < limit:
        rest = (unscored.select_related("end_user").annotate(last_seen=_last_day_seen("end_user"))
                .order_by("started_at", "end_user_id")[: limit - len(result)])
        result += [_row(m.end_user, account, m.started_at, m.last_seen) for m in rest]
    return result


def _row(user, account: CustomerAccount, since, last_seen) -> MemberRow:
    if isinstance(last_seen, str):  # SQLite hands an annotated date back as text
        last_seen = date.fromisoformat(last_seen)
    return MemberRow(public_id=user.public_id, user_id=user.user_id, display_name=user.display_name, since=since,
                     primary=user.account_id == account.pk, last_seen=last_seen)
