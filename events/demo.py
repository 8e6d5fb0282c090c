"""Ninety days of realistic events for the demo tenant, sent through the ingestion path.

A photo-sharing product: ~2,000 end users in 150 customer accounts on free and
paid plans, with power users, steady and casual users, users fading away,
churned ones, some that come back, and new sign-ups. Its story, which the pages
tell: **albums launched 30 days ago** ("Created album", adopted by the engaged
users first); the **travel agencies on the free plan are churning** (their users
fade out over the last six weeks); **Harbor Studio is the power-user team**
(a paid account where almost everyone edits, shares and invites). Every account
and person has a name of its own. Times are drawn in the workspace's time zone
and never after the moment of seeding. Deterministic (seeded), and idempotent:
message ids are derived from the generator, so a re-run stores nothing new.
"""

import random
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

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
    "Created album",
]
# The feature launch: "Created album" exists from this day index on (30 days ago).
ALBUM_LAUNCH_DAY = 60
POWER_TEAM = "Harbor Studio"
CHURNING_KIND = "Travel"  # free-plan travel agencies: the churning segment

# Expected count per active day of each activity, by kind of user (kept modest so
# `make run` seeds in well under a minute on SQLite: ~120k events).
INTENSITY = {
    "power": [1.2, 1.2, 0.8, 0.6, 0.8, 0.06, 0.2, 0.15, 0.2, 0.1, 0.5],
    "steady": [1.0, 0.4, 0.15, 0.12, 0.15, 0.01, 0.03, 0.02, 0.15, 0.06, 0.1],
    "casual": [1.0, 0.15, 0.03, 0.03, 0.03, 0.004, 0.01, 0.004, 0.2, 0.03, 0.01],
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
FIRST_NAMES = [
    "Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gia", "Hugo", "Ines", "Jon", "Kai", "Lena", "Mo", "Nia",
    "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wei", "Yara", "Zoe", "Aiko", "Bruno",
    "Carla", "Diego", "Erin", "Farah", "Goran", "Hana", "Ivan", "Jade", "Kofi", "Luca", "Maya", "Nils",
    "Olga", "Pablo", "Rhea", "Sami", "Tomas", "Uma",
]
LAST_NAMES = [
    "Alvarez", "Brown", "Chen", "Dubois", "Eze", "Fischer", "Garcia", "Haddad", "Ito", "Jensen", "Kowalski",
    "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Quinlan", "Rossi", "Silva", "Tanaka", "Umarov",
    "Varga", "Weber", "Xu", "Yilmaz", "Zhang", "Andersen", "Bianchi", "Costa", "Dimitrov", "Evans", "Ferreira",
    "Gomez", "Horvat", "Iqbal", "Jovanovic", "Kim", "Lindqvist", "Mendes", "Novak", "Ortiz", "Park", "Reyes",
    "Schmidt", "Torres", "Ueda", "Vogel", "Wong",
]


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
    # Every account a name of its own: 150 of the 160 word x kind pairs, shuffled.
    names = [f"{word} {kind}" for word in COMPANY_WORDS for kind in COMPANY_KINDS]
    names.remove(POWER_TEAM)
    rng.shuffle(names)
    names = [POWER_TEAM, *names[: ACCOUNTS - 1]]
    accounts = []
    for i, name in enumerate(names):
        paid = name == POWER_TEAM or (rng.random() < 0.35 and not name.endswith(CHURNING_KIND))
        seats = 24 if name == POWER_TEAM else rng.randint(5, 40) if paid else rng.randint(1, 12)
        accounts.append(
            {
                "group_id": f"acct-{i + 1:03d}",
                "name": name,
                "plan": "paid" if paid else "free",
                "mrr": seats * 12 if paid else 0,
                "seats": seats,
            }
        )
    return accounts


def _archetype(rng: random.Random, account: dict) -> tuple:
    by_name = {a[0]: a for a in ARCHETYPES}
    if account["name"] == POWER_TEAM:
        return by_name["power"] if rng.random() < 0.8 else by_name["steady"]
    if account["name"].endswith(CHURNING_KIND) and account["plan"] == "free":
        return by_name["fading"] if rng.random() < 0.6 else by_name["churned"]
    roll, archetype = rng.random(), ARCHETYPES[-1]
    # Paid accounts have more power users and fewer churners.
    bias = 0.04 if account["plan"] == "paid" else 0.0
    for candidate in ARCHETYPES:
        share = candidate[1] + (bias if candidate[0] == "power" else -bias if candidate[0] == "churned" else 0)
        if roll < share:
            return candidate
        roll -= share
    return archetype


def _users(rng: random.Random, accounts: list[dict]) -> list[dict]:
    weights = [a["seats"] for a in accounts]
    # Every person a name of their own (no one twice in an account, or on two lists of the dashboard).
    names = [(first, last) for first in FIRST_NAMES for last in LAST_NAMES]
    rng.shuffle(names)
    users = []
    for i in range(USERS):
        account = rng.choices(accounts, weights=weights)[0]
        archetype = _archetype(rng, account)
        first, last = names[i]
        users.append(
            {
                "user_id": f"user-{i + 1:04d}",
                "name": f"{first} {last}",
                "email": f"{first.lower()}.{last.lower()}@{_domain(account['name'])}",
                "account": account,
                "archetype": archetype,
                "params": {
                    "churn_day": rng.randint(15, 70),
                    "gap_start": rng.randint(10, 40),
                    "gap_end": rng.randint(50, 75),
                    "signup_day": rng.randint(DAYS - 25, DAYS - 3),
                },
                "role": rng.choice(["designer", "photographer", "marketer", "owner"]),
                "platform": rng.choice(["web", "web", "ios", "android"]),
            }
        )
    return users


def _domain(account_name: str) -> str:
    return account_name.lower().replace(" ", "") + ".example"


def generate_messages(today, seed: int = 42, users: int | None = None, zone=UTC, now=None) -> Iterator[dict]:
    """Yield Segment messages (raw dicts) in time order for the 90 days ending `today` in `zone`.

    `users` keeps only the first N end users (the others are still drawn, so the
    kept ones get the same events as in the full demo). Nothing is dated after `now`.
    """
    rng = random.Random(seed)
    accounts = _accounts(rng)
    everyone = _users(rng, accounts)
    keep = {u["user_id"] for u in everyone[:users]} if users is not None else None
    now = now or timezone.now()
    for message in _messages(rng, today, everyone, zone, now):
        if keep is None or message["userId"] in keep:
            yield message


def _messages(rng: random.Random, today, users: list[dict], zone, now) -> Iterator[dict]:
    start = today - timedelta(days=DAYS - 1)
    seq = 0
    introduced: set[str] = set()
    for d in range(DAYS):
        day = start + timedelta(days=d)
        for user in users:
            _name, _share, kind, probability = user["archetype"]
            if rng.random() >= probability(d, user["params"]):
                continue
            local = datetime.combine(day, time(hour=rng.randint(7, 21), minute=rng.randint(0, 59)), tzinfo=zone)
            # Today's later hours have not happened yet: such a visit is earlier today.
            moment = min(local, now - timedelta(minutes=rng.randint(1, 90))).astimezone(UTC)
            base = {"userId": user["user_id"], "timestamp": moment.isoformat().replace("+00:00", "Z")}
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
                if activity == "Created album" and d < ALBUM_LAUNCH_DAY:
                    continue
                for _ in range(_poisson(rng, mean)):
                    seq += 1
                    yield {
                        **base,
                        "type": "track",
                        "event": activity,
                        "messageId": f"demo-{seq}",
                        "properties": _properties(rng, activity, user),
                        "context": {"groupId": user["account"]["group_id"]},
                    }


def _properties(rng: random.Random, activity: str, user: dict) -> dict:
    # What a product would send: the platform, and a detail or two per activity.
    properties = {"platform": user["platform"]}
    if activity == "Added photo":
        properties["source"] = rng.choice(["camera", "upload", "upload", "import"])
    elif activity == "Edited photo":
        properties["tool"] = rng.choice(["crop", "filters", "retouch", "pro editor"])
    elif activity == "Created album":
        properties["photos"] = rng.randint(3, 60)
    return properties


def seed_demo_events(tenant: Tenant, users: int | None = None, progress=None) -> int:
    """Send the demo events for `tenant` (the first `users` end users); returns how many were newly stored."""
    if Event.objects.for_tenant(tenant).filter(message_id__startswith="demo-").exists():
        return 0  # already seeded: every message would be a duplicate anyway
    received_at = timezone.now()
    stored, batch = 0, []
    for raw in generate_messages(tenant.today(), users=users, zone=tenant.tzinfo, now=received_at):
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
