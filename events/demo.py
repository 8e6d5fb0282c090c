"""Ninety days of realistic events for the demo tenant, sent through the ingestion path.

A photo-sharing product: ~2,000 end users in ~150 customer accounts on free and
paid plans, with power users, steady and casual users, users fading away,
churned ones, some that come back, and new sign-ups. Deterministic (seeded), and
idempotent: message ids are derived from the generator, so a re-run stores nothing new.
"""

import random
from collections.abc import Iterator
from datetime import datetime, time, timedelta

from django.utils import timezone

from accounts.models import Tenant

from . import wire
from .models import Event
from .services import ingest

DAYS = 90
USERS = 2000
ACCOUNTS = 150
BATCH = 1000

ACTIVITIES = [
    "Logged in",
    "Added photo",
    "Edited photo",
    "Shared photo",
    "Commented on photo",
    "Invited friend",
    "Posted to Facebook",
    "Posted to Twitter",
    "Opened email",
    "Clicked email",
]

# Expected count per active day of each activity, by kind of user (kept modest so
# `make run` seeds in well under a minute on SQLite: ~120k events).
INTENSITY = {
    "power": [1.2, 1.2, 0.8, 0.6, 0.8, 0.06, 0.2, 0.15, 0.2, 0.1],
    "steady": [1.0, 0.4, 0.15, 0.12, 0.15, 0.01, 0.03, 0.02, 0.15, 0.06],
    "casual": [1.0, 0.15, 0.03, 0.03, 0.03, 0.004, 0.01, 0.004, 0.2, 0.03],
}

# (share of users, kind of activity, daily activity probability as a function of day index 0..89)
ARCHETYPES = [
    ("power", 0.06, "power", lambda d, r: 0.85),
    ("steady", 0.28, "steady", lambda d, r: 0.5),
    ("casual", 0.22, "casual", lambda d, r: 0.15),
    ("fading", 0.15, "steady", lambda d, r: max(0.03, 0.65 - 0.7 * d / DAYS)),
    ("churned", 0.13, "steady", lambda d, r: 0.5 if d < r["churn_day"] else 0.0),
    ("returning", 0.08, "steady", lambda d, r: 0.0 if r["gap_start"] <= d < r["gap_end"] else 0.45),
    ("new", 0.08, "steady", lambda d, r: 0.0 if d < r["signup_day"] else 0.6),
]

COMPANY_WORDS = [
    "Aurora", "Birch", "Cobalt", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Indigo", "Juniper",
    "Kestrel", "Lumen", "Maple", "Nimbus", "Onyx", "Pioneer", "Quartz", "Riverside", "Summit", "Tidal",
]  # fmt: skip
COMPANY_KINDS = ["Studio", "Media", "Labs", "Weddings", "Travel", "Realty", "Events", "Design"]
FIRST_NAMES = ["Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gia", "Hugo", "Ines", "Jon", "Kai", "Lena", "Mo", "Nia"]
LAST_NAMES = ["Alvarez", "Brown", "Chen", "Dubois", "Eze", "Fischer", "Garcia", "Haddad", "Ito", "Jensen", "Kowalski"]


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: fine for the small means used here.
    if mean <= 0:
        return 0
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _accounts(rng: random.Random) -> list[dict]:
    accounts = []
    for i in range(ACCOUNTS):
        paid = rng.random() < 0.35
        seats = rng.randint(5, 40) if paid else rng.randint(1, 12)
        accounts.append(
            {
                "group_id": f"acct-{i + 1:03d}",
                "name": f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)}",
                "plan": "paid" if paid else "free",
                "mrr": seats * 12 if paid else 0,
                "seats": seats,
            }
        )
    return accounts


def _users(rng: random.Random, accounts: list[dict]) -> list[dict]:
    weights = [a["seats"] for a in accounts]
    users = []
    for i in range(USERS):
        account = rng.choices(accounts, weights=weights)[0]
        roll, archetype = rng.random(), ARCHETYPES[-1]
        # Paid accounts have more power users and fewer churners.
        bias = 0.04 if account["plan"] == "paid" else 0.0
        for candidate in ARCHETYPES:
            share = candidate[1] + (bias if candidate[0] == "power" else -bias if candidate[0] == "churned" else 0)
            if roll < share:
                archetype = candidate
                break
            roll -= share
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        users.append(
            {
                "user_id": f"user-{i + 1:04d}",
                "name": f"{first} {last}",
                "email": f"{first.lower()}.{last.lower()}{i + 1}@example.com",
                "account": account,
                "archetype": archetype,
                "params": {
                    "churn_day": rng.randint(15, 70),
                    "gap_start": rng.randint(10, 40),
                    "gap_end": rng.randint(50, 75),
                    "signup_day": rng.randint(DAYS - 25, DAYS - 3),
                },
                "role": rng.choice(["designer", "photographer", "marketer", "owner"]),
            }
        )
    return users


def generate_messages(today, seed: int = 42, users: int | None = None) -> Iterator[dict]:
    """Yield Segment messages (raw dicts) in time order for the 90 days ending `today`.

    `users` keeps only the first N end users (the others are still drawn, so the
    kept ones get the same events as in the full demo).
    """
    rng = random.Random(seed)
    accounts = _accounts(rng)
    everyone = _users(rng, accounts)
    keep = {u["user_id"] for u in everyone[:users]} if users is not None else None
    for message in _messages(rng, today, everyone):
        if keep is None or message["userId"] in keep:
            yield message


def _messages(rng: random.Random, today, users: list[dict]) -> Iterator[dict]:
    start = today - timedelta(days=DAYS - 1)
    seq = 0
    introduced: set[str] = set()
    for d in range(DAYS):
        day = start + timedelta(days=d)
        for user in users:
            name, _share, kind, probability = user["archetype"]
            if rng.random() >= probability(d, user["params"]):
                continue
            moment = datetime.combine(day, time(hour=rng.randint(7, 21), minute=rng.randint(0, 59)))
            base = {"userId": user["user_id"], "timestamp": moment.isoformat() + "Z"}
            if user["user_id"] not in introduced:
                introduced.add(user["user_id"])
                account = user["account"]
                seq += 2
                yield {
                    **base,
                    "type": "identify",
                    "messageId": f"demo-{seq - 1}",
                    "traits": {
                        "name": user["name"],
                        "email": user["email"],
                        "plan": account["plan"],
                        "role": user["role"],
                        "created_at": day.isoformat(),
                    },
                }
                yield {
                    **base,
                    "type": "group",
                    "messageId": f"demo-{seq}",
                    "groupId": account["group_id"],
                    "traits": {k: account[k] for k in ("name", "plan", "mrr", "seats")},
                }
            for activity, mean in zip(ACTIVITIES, INTENSITY[kind], strict=True):
                for _ in range(_poisson(rng, mean)):
                    seq += 1
                    yield {
                        **base,
                        "type": "track",
                        "event": activity,
                        "messageId": f"demo-{seq}",
                        "properties": {"archetype": name} if activity == "Logged in" else {},
                        "context": {"groupId": user["account"]["group_id"]},
                    }


def seed_demo_events(tenant: Tenant, users: int | None = None, progress=None) -> int:
    """Send the demo events for `tenant` (the first `users` end users); returns how many were newly stored."""
    if Event.objects.for_tenant(tenant).filter(message_id__startswith="demo-").exists():
        return 0  # already seeded: every message would be a duplicate anyway
    received_at = timezone.now()
    stored, batch = 0, []
    for raw in generate_messages(tenant.today(), users=users):
        batch.append(raw)
        if len(batch) == BATCH:
            stored += _send(tenant, batch, received_at)
            batch = []
            if progress:
                progress(stored)
    if batch:
        stored += _send(tenant, batch, received_at)
    return stored


def _send(tenant: Tenant, batch: list[dict], received_at) -> int:
    messages = wire.normalize_all(batch, kind="batch", received_at=received_at, batch_sent_at=None)
    return ingest(tenant=tenant, messages=[m for m in messages if isinstance(m, wire.Message)], source="demo").stored
