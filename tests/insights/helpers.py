"""Data for the insight tests: events through the ingestion service, snapshots with bulk_create."""

from datetime import UTC, date, datetime, time, timedelta
from itertools import count

from django.utils import timezone

from events import wire
from events.models import AccountMembership, CustomerAccount, EndUser
from events.services import ingest
from scoring.models import AccountScore, ProductScore, ScoringModel, UserScore
from tests.factories import CustomerAccountFactory, EndUserFactory, ScoringModelFactory

_ids = count(1)


def track(user_id: str, event: str, day: date, group_id: str | None = None) -> dict:
    raw = {"type": "track", "userId": user_id, "event": event, "messageId": f"m-{next(_ids)}",
           "timestamp": datetime.combine(day, time(12, 0), tzinfo=UTC).isoformat()}
    if group_id:
        raw["context"] = {"groupId": group_id}
    return raw


def identify(user_id: str, day: date, **traits) -> dict:
    return {"type": "identify", "userId": user_id, "messageId": f"m-{next(_ids)}", "traits": traits,
            "timestamp": datetime.combine(day, time(11, 0), tzinfo=UTC).isoformat()}


def group(user_id: str, group_id: str, day: date, **traits) -> dict:
    return {"type": "group", "userId": user_id, "groupId": group_id, "messageId": f"m-{next(_ids)}",
            "traits": traits, "timestamp": datetime.combine(day, time(11, 0), tzinfo=UTC).isoformat()}


def send(tenant, raws: list[dict]):
    now = timezone.now()
    messages = [wire.normalize(raw, kind="batch", received_at=now, batch_sent_at=None) for raw in raws]
    assert all(isinstance(m, wire.Message) for m in messages), messages
    return ingest(tenant=tenant, messages=messages)


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def published(tenant, version: int = 1, **fields) -> ScoringModel:
    return ScoringModelFactory(tenant=tenant, version=version, published=True, **fields)


def users(tenant, *user_ids, account=None, **traits) -> dict[str, EndUser]:
    made = {uid: EndUserFactory(tenant=tenant, user_id=uid, account=account, traits=dict(traits),
                                first_seen_at=timezone.now() - timedelta(days=400))
            for uid in user_ids}
    if account is not None:  # the account roll-up reads memberships (events.AccountMembership)
        AccountMembership.objects.bulk_create(
            AccountMembership(tenant=tenant, end_user=u, account=account, started_at=u.first_seen_at)
            for u in made.values())
    return made


def account(tenant, group_id: str, **traits) -> CustomerAccount:
    return CustomerAccountFactory(tenant=tenant, group_id=group_id, name=group_id, traits=traits,
                                  first_seen_at=timezone.now())


def user_scores(tenant, model, day: date, rows):
    """rows: (end_user, points, tier[, percentile]); also writes the day's product row."""
    UserScore.objects.bulk_create(
        UserScore(tenant=tenant, model=model, day=day, end_user=u, points=p, breadth=1 if p else 0,
                  active_days=1 if p else 0, percentile=(r[0] if r else None), tier=t)
        for u, p, t, *r in rows
    )
    product_row(tenant, model, day)


def product_row(tenant, model, day: date, **values):
    defaults = dict(total_points=0, mean_points=0, median_points=0, active_users=0, engaged_users=0, high_users=0,
                    medium_users=0, low_users=0, new_users=0, dormant_users=0)
    ProductScore.objects.update_or_create(tenant=tenant, model=model, day=day, defaults={**defaults, **values})


def account_scores(tenant, model, day: date, rows):
    """rows: (account, points, tier)."""
    AccountScore.objects.bulk_create(
        AccountScore(tenant=tenant, model=model, day=day, account=a, points=p, active_users=1, seats=1,
                     percentile=None, tier=t)
        for a, p, t in rows
    )
    product_row(tenant, model, day)


def engaged_weeks(tenant, model) -> date:
    """Week -2: a engaged on its last scored day (Sunday), c only mid-week (ignored); week -1: b.
    Returns the Monday of week -2."""
    people = users(tenant, "a", "b", "c")
    w2 = monday(tenant.today()) - timedelta(weeks=2)
    w1 = w2 + timedelta(weeks=1)
    user_scores(tenant, model, w2 + timedelta(days=2), [(people["c"], 50, "high")])
    user_scores(tenant, model, w2 + timedelta(days=6), [(people["a"], 50, "high"), (people["c"], 1, "low")])
    user_scores(tenant, model, w1 + timedelta(days=6), [(people["a"], 5, "low"), (people["b"], 40, "medium")])
    return w2


def retention_world(tenant, model, day: date) -> None:
    """Four high and two low users on `day`. Active in the 7 days ending day + 30: h1, h2, h3, l1 (h4 only
    20 days later, no); ending day + 60: h1 only."""
    high = users(tenant, "h1", "h2", "h3", "h4")
    low = users(tenant, "l1", "l2")
    user_scores(tenant, model, day, [(high["h1"], 90, "high"), (high["h2"], 80, "high"), (high["h3"], 70, "high"),
                                     (high["h4"], 60, "high"), (low["l1"], 2, "low"), (low["l2"], 1, "low")])
    later = [("h1", 30), ("h2", 27), ("h3", 24), ("l1", 29), ("h4", 20), ("h1", 55)]
    send(tenant, [track(uid, "Logged in", day + timedelta(days=n)) for uid, n in later])
