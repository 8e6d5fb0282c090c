"""Synthetic tenants with a planted truth about who stays, for the score-truth benchmark and its tests.

A world is one product's history: end users of planted types (valuable, busy,
fading, casual, returning, new) whose fate is decided by the mix and trend of
what they do, not by how much. Busy users log in all day and open every email
yet mostly leave; valuable users do the few things that matter a couple of
days a week and stay. The fit in score truth must find that from the events
alone, so nothing else carries the type: ids are random, traits and
properties are what a real product would send, message ids follow time.

    world = generate_world("crm", seed=3)
    for batch in iter_batches(world):   # Segment `batch` payloads, in time order
        ...

Deterministic for (product, seed, users, days, start): numpy's PCG64 seeded
with the seed and a CRC of the product name (not `hash`, which is salted).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

__all__ = ["PRODUCTS", "TYPE_SHARES", "ProductSpec", "World", "generate_world", "iter_batches"]

DEFAULT_START = date(2025, 1, 6)  # a Monday, so weekday effects line up across worlds
MS_PER_DAY = 86_400_000

# Spec shares of the planted types; each seed moves them by a point or two.
TYPE_SHARES = {"valuable": 0.25, "busy": 0.20, "fading": 0.15, "casual": 0.20, "returning": 0.10, "new": 0.10}
# Probability of leaving before the end of the history, by behaviour.
LEAVE_PROB = {"valuable": 0.10, "busy": 0.75, "fading": 0.90, "casual": 0.50, "returning": 0.15}

# Department codes of accounts.models.Department (not imported: this module stays Django-free).
SURVEY_DEPARTMENTS = {"sales": 4, "marketing": 3, "customer_success": 3, "product": 3, "engineering": 3,
                      "finance": 2, "leadership": 2}
# How each department shifts the team's common belief, by kind of activity: sales and
# marketing look at volume, product and engineering at the work done in the product.
DEPARTMENT_BIAS = {
    "sales": {"shallow": 3.0, "value": -1.0, "neutral": 1.0},
    "marketing": {"shallow": 3.5, "value": -0.5, "neutral": 1.0},
    "customer_success": {"shallow": 0.0, "value": 1.0, "neutral": 0.0},
    "product": {"shallow": -2.0, "value": 1.5, "neutral": 0.0},
    "engineering": {"shallow": -2.5, "value": 1.5, "neutral": -0.5},
    "finance": {"shallow": 1.0, "value": 0.0, "neutral": 0.0},
    "leadership": {"shallow": 1.5, "value": 0.5, "neutral": 0.5},
}
NOT_RELEVANT = {"finance": 0.25, "leadership": 0.10}  # chance of answering None; 0.05 elsewhere


@dataclass(frozen=True)
class ProductSpec:
    """One product: its events, which of them go with staying, and what the team believes about them."""

    title: str
    login: str
    emails: tuple[str, ...]  # opened / clicked: shallow like the log-in
    value: dict[str, float]  # value activity -> extra count on a day it is used (Poisson mean)
    neutral: dict[str, float]  # everyone does these alike (Poisson mean per active day): no signal
    beliefs: dict[str, float]  # the team's common rating 1-10, deliberately imperfect
    weekend: float  # activity on Saturday/Sunday relative to a weekday
    hours: tuple[float, float]  # range of users' usual hour of use (UTC)
    plans: dict[str, int]  # plan -> monthly price per seat
    domain_words: tuple[str, ...]
    order: tuple[str, ...] = ()  # activities in catalog order (defaults to login, emails, value, neutral)

    @property
    def activities(self) -> list[str]:
        return list(self.order) or [self.login, *self.emails, *self.value, *self.neutral]

    @property
    def shallow(self) -> list[str]:
        return [self.login, *self.emails]


PRODUCTS: dict[str, ProductSpec] = {
    "photos": ProductSpec(
        title="PhotoShare",
        login="Logged in",
        emails=("Opened email", "Clicked email"),
        value={"Added photo": 1.2, "Edited photo": 0.6, "Shared photo": 0.5, "Commented on photo": 0.8,
               "Created album": 0.2, "Invited friend": 0.1},
        neutral={"Viewed photo": 2.5, "Searched photos": 0.4, "Posted to Facebook": 0.15},
        # "Commented" is underrated and "Posted to Facebook" overrated: the survey is not the truth.
        beliefs={"Logged in": 6, "Opened email": 4, "Clicked email": 5, "Added photo": 8, "Edited photo": 6,
                 "Shared photo": 8, "Commented on photo": 4, "Created album": 6, "Invited friend": 8,
                 "Viewed photo": 6, "Searched photos": 4, "Posted to Facebook": 8},
        weekend=1.2,
        hours=(8, 22),
        plans={"free": 0, "plus": 8, "studio": 20},
        domain_words=("Aurora", "Birch", "Ember", "Fjord", "Lumen", "Maple", "Nimbus", "Tidal", "Juniper", "Quartz"),
    ),
    "crm": ProductSpec(
        title="DealFlow CRM",
        login="Signed in",
        emails=("Opened digest email", "Clicked digest email"),
        value={"Created deal": 0.5, "Logged call": 1.2, "Moved deal stage": 0.9, "Sent email sequence": 0.3,
               "Synced calendar": 0.1, "Built report": 0.2},
        neutral={"Viewed contact": 3.0, "Exported contacts": 0.1, "Updated profile": 0.05,
                 "Viewed pipeline": 1.0},
        beliefs={"Signed in": 7, "Opened digest email": 5, "Clicked digest email": 5, "Created deal": 9,
                 "Logged call": 5, "Moved deal stage": 7, "Sent email sequence": 7, "Synced calendar": 4,
                 "Built report": 8, "Viewed contact": 6, "Exported contacts": 6, "Updated profile": 3,
                 "Viewed pipeline": 7},
        weekend=0.25,
        hours=(7, 18),
        plans={"starter": 15, "growth": 45, "enterprise": 90},
        domain_words=("Cobalt", "Granite", "Harbor", "Kestrel", "Onyx", "Pioneer", "Summit", "Delta", "Indigo"),
    ),
    "devtool": ProductSpec(
        title="Pipewright CI",
        login="Logged in",
        emails=("Opened build alert email", "Clicked build alert email"),
        value={"Ran pipeline": 2.0, "Fixed failing build": 0.3, "Configured pipeline": 0.2,
               "Deployed to production": 0.6, "Reviewed test report": 0.4, "Added integration": 0.05},
        neutral={"Viewed dashboard": 2.0, "Viewed build log": 1.2, "Read docs": 0.4, "Changed settings": 0.08},
        beliefs={"Logged in": 5, "Opened build alert email": 4, "Clicked build alert email": 6, "Ran pipeline": 7,
                 "Fixed failing build": 8, "Configured pipeline": 6, "Deployed to production": 9,
                 "Reviewed test report": 5, "Added integration": 8, "Viewed dashboard": 6, "Viewed build log": 6,
                 "Read docs": 5, "Changed settings": 3},
        weekend=0.35,
        hours=(8, 20),
        plans={"free": 0, "team": 19, "business": 49},
        domain_words=("Forge", "Vector", "Basalt", "Helix", "Orbit", "Rivet", "Sprocket", "Tensor", "Zephyr"),
    ),
}

FIRST_NAMES = ("Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gia", "Hugo", "Ines", "Jon", "Kai", "Lena", "Mo",
               "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Vik", "Wen", "Yara", "Zoe")
LAST_NAMES = ("Alvarez", "Brown", "Chen", "Dubois", "Eze", "Fischer", "Garcia", "Haddad", "Ito", "Jensen",
              "Kowalski", "Lopez", "Mensah", "Novak", "Okafor", "Petrov", "Rossi", "Singh", "Tanaka", "Weber")
COMPANY_KINDS = ("Labs", "Studio", "Group", "Partners", "Works", "Co", "Digital", "Systems")


@dataclass
class World:
    product: str
    seed: int
    start: date
    days: int
    activities: list[str]
    value_activities: list[str]
    shallow_activities: list[str]
    messages: list[dict]
    user_type: dict[str, str]
    last_active_day: dict[str, int]
    survey: list[dict]
    # Not in the brief's list, kept for the benchmark's own checks: userId -> groupId, churned groupIds.
    user_account: dict[str, str] = field(default_factory=dict)
    churned_accounts: list[str] = field(default_factory=list)

    @property
    def end(self) -> date:
        """The first day after the history (no timestamp reaches it)."""
        return self.start + timedelta(days=self.days)


# --------------------------------------------------------------------------
# Users: planted type, fate and daily behaviour
# --------------------------------------------------------------------------


def _type_counts(rng: np.random.Generator, users: int) -> dict[str, int]:
    names = list(TYPE_SHARES)
    shares = rng.dirichlet([TYPE_SHARES[n] * 600 for n in names])  # sd ~1.5-2 points per type
    counts = [int(s * users) for s in shares]
    for i in np.argsort(-(shares * users - counts))[: users - sum(counts)]:
        counts[i] += 1
    return dict(zip(names, counts, strict=True))


def _weekday_factor(spec: ProductSpec, start: date, days: int) -> np.ndarray:
    weekend = np.array([(start + timedelta(days=d)).weekday() >= 5 for d in range(days)])
    # Scaled so a week holds the same expected active days whatever the weekend factor.
    scale = 7 / (5 + 2 * spec.weekend)
    return np.where(weekend, spec.weekend * scale, scale)


def _behaviour(planted: str, rng: np.random.Generator, days: int) -> tuple[str, int]:
    """(behaviour, signup day): `new` users behave as valuable or busy from a random day."""
    if planted != "new":
        return planted, 0
    return ("valuable" if rng.random() < 0.5 else "busy"), int(rng.integers(5, days - 30))


def _leave_day(behaviour: str, rng: np.random.Generator, signup: int, days: int) -> int | None:
    """Last day a leaver may be active (spread over the history), or None for a stayer."""
    if behaviour == "fading" or rng.random() >= LEAVE_PROB[behaviour]:  # fading users leave at their fade's end
        return None
    earliest = signup + (10 if behaviour == "busy" else 20)
    return int(rng.integers(min(earliest, days - 2), days - 1))


def _user_days(spec: ProductSpec, behaviour: str, rng: np.random.Generator, days: int, signup: int,
               week: np.ndarray) -> tuple[np.ndarray, int | None]:
    """Counts per (day, activity) for one user, and their planned last day when they leave."""
    acts = spec.activities
    col = {a: i for i, a in enumerate(acts)}
    value = list(spec.value)
    counts = np.zeros((days, len(acts)), dtype=np.int64)
    d = np.arange(days)
    leave = _leave_day(behaviour, rng, signup, days)
    alive = (d >= signup) & (d <= (days - 1 if leave is None else leave))
    trend = np.ones(days)  # 1 = full use, falling towards 0 as a user drifts away
    fade = None
    if leave is not None:
        # Nobody leaves out of the blue: their last 4-11 weeks thin out, value use most.
        length = int(rng.integers(30, 76))
        trend = 0.2 + 0.8 * np.clip((leave - d) / length, 0, 1)
        fade = (leave - length, length)

    if behaviour == "busy":
        # No slowing down: the busy keep clicking until the day they are gone.
        p = np.minimum(rng.uniform(0.5, 0.75) * week, 0.97)
        active = (rng.random(days) < p) & alive
        # Log-ins 8-30 a day when active: a per-user level with day-to-day swings, capped for the volume budget;
        # the frantic ones are those who leave, those who stay settle down.
        level = rng.uniform(8, 14) if leave is not None else rng.uniform(5, 9)
        logins = np.clip(rng.poisson(level * rng.gamma(4, 1 / 4, days)), 8, 30)
        counts[:, col[spec.login]] = logins
        counts[:, col[spec.emails[0]]] = rng.poisson(rng.uniform(1.0, 2.0), days)
        counts[:, col[spec.emails[1]]] = rng.poisson(rng.uniform(0.3, 0.9), days)
        # An occasional value activity, a little less rare among the busy who stay: the truth holds for them too.
        rare = rng.random(days) < (0.03 if leave is not None else 0.25)
        counts[rare, col[value[int(rng.integers(len(value)))]]] += 1
        for a, mean in spec.neutral.items():
            counts[:, col[a]] = rng.poisson(mean * 0.3, days)
        if leave is not None:
            # Busy leavers turn busy 6-18 weeks before they go (a new workflow, a flood of notifications);
            # before that they only looked in now and then. So at any snapshot the busy mostly leave soon.
            before = d < leave - int(rng.integers(45, 131))
            n = int(before.sum())
            active[before] = (rng.random(n) < 0.12 * week[before]) & alive[before]
            counts[before] = 0
            counts[before, col[spec.login]] = 1 + rng.poisson(0.5, n)
            counts[before, col[spec.emails[0]]] = rng.poisson(0.5, n)
    else:
        if behaviour == "casual":
            # Light users who stay come a little more often than those who drift off.
            p = (rng.uniform(0.09, 0.15) if leave is None else rng.uniform(0.04, 0.10)) * week
        else:
            p = rng.uniform(1.5, 4) / 7 * week
        if behaviour == "fading":
            # Fades over 30-60 days starting at a random day; its end is the leaving day.
            length = int(rng.integers(30, 61))
            begin = int(rng.integers(0, days - length - 1))
            fade = (begin, length)
            trend = np.clip(1 - (d - begin) / length, 0, 1)
            if rng.random() < LEAVE_PROB["fading"]:
                leave = begin + length
                alive = d <= leave
            else:
                trend = np.maximum(trend, 0.3)  # the one in ten who fades but hangs on
        if behaviour == "returning":
            for _ in range(int(rng.integers(1, 3))):
                gap = int(rng.integers(14, 36))
                first = int(rng.integers(10, days - gap - 10))
                alive &= ~((d >= first) & (d < first + gap))
        active = (rng.random(days) < p * np.maximum(trend, 0.15)) & alive

        if behaviour == "casual":
            counts[:, col[spec.login]] = 1 + rng.poisson(0.4, days)
            pick = value[rng.choice(len(value), p=_popularity(spec))]
            # Casual users who stay are those whose one value activity comes back now and then.
            use = (0.10 if leave is not None else 0.50) * trend
            counts[:, col[pick]] = (rng.random(days) < use) * (1 + rng.poisson(spec.value[pick] * 0.5, days))
            counts[:, col[spec.emails[0]]] = rng.poisson(0.3, days)
            for a, mean in spec.neutral.items():
                counts[:, col[a]] = rng.poisson(mean * 0.5, days)
        else:
            counts[:, col[spec.login]] = np.minimum(rng.poisson(rng.uniform(0.5, 1.5), days), 3)
            k = int(rng.integers(2, 6))
            mine = rng.choice(len(value), size=min(k, len(value)), replace=False, p=_popularity(spec))
            for i in mine:
                a = value[i]
                used = rng.random(days) < rng.uniform(0.25, 0.6) * trend**2  # value goes first
                if fade:
                    # Breadth shrinks too: each activity is dropped at its own point of the decline.
                    used &= d < fade[0] + rng.uniform(0.2, 1.0) * fade[1]
                counts[:, col[a]] = used * (1 + rng.poisson(spec.value[a] * 0.5, days))
            counts[:, col[spec.emails[0]]] = rng.poisson(0.3, days)
            counts[:, col[spec.emails[1]]] = rng.poisson(0.1, days)
            for a, mean in spec.neutral.items():
                counts[:, col[a]] = rng.poisson(mean * 0.5, days)

    counts[~active] = 0
    # An active day has at least one event (a log-in).
    empty = active & (counts.sum(axis=1) == 0)
    counts[empty, col[spec.login]] = 1
    if signup and not counts[signup].any():
        counts[signup, col[spec.login]] = 1 + int(rng.poisson(1))  # a sign-up is a first visit
    return counts, leave


def _popularity(spec: ProductSpec) -> np.ndarray:
    # Users pick the common value activities more often than the rare ones.
    w = np.sqrt(np.array(list(spec.value.values())))
    return w / w.sum()


# --------------------------------------------------------------------------
# Accounts and messages
# --------------------------------------------------------------------------


def _accounts(spec: ProductSpec, rng: np.random.Generator, users: int) -> list[dict]:
    accounts, seated = [], 0
    while seated < users:
        seats = min(int(rng.geometric(0.22)), 12, users - seated)  # many small teams, a few of up to 12
        plans = list(spec.plans)
        plan = plans[0] if seats <= 2 and rng.random() < 0.6 else plans[int(rng.integers(len(plans)))]
        name = f"{spec.domain_words[int(rng.integers(len(spec.domain_words)))]} " \
               f"{COMPANY_KINDS[int(rng.integers(len(COMPANY_KINDS)))]}"
        accounts.append({"group_id": f"acct_{int(rng.integers(16**8)):08x}", "name": name, "plan": plan,
                         "mrr": seats * spec.plans[plan], "seats": seats})
        seated += seats
    return accounts


def _stamp(start: date, day: int, ms: int) -> str:
    s, ms = divmod(int(ms), 1000)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{(start + timedelta(days=day)).isoformat()}T{h:02d}:{m:02d}:{s:02d}.{ms:03d}Z"


def generate_world(product: str, seed: int, *, users: int = 600, days: int = 240, start: date | None = None) -> World:
    """One synthetic tenant history with its planted truth (see the module docstring)."""
    if product not in PRODUCTS:
        raise ValueError(f"unknown product {product!r}; one of {sorted(PRODUCTS)}")
    if days < 120 or users < 20:
        raise ValueError("a world needs at least 120 days and 20 users")
    spec = PRODUCTS[product]
    start = start or DEFAULT_START
    rng = np.random.default_rng([seed, zlib.crc32(product.encode())])
    acts = spec.activities
    week = _weekday_factor(spec, start, days)

    planted = [t for t, n in _type_counts(rng, users).items() for _ in range(n)]
    rng.shuffle(planted)  # types interleaved: a user's position says nothing
    accounts = _accounts(spec, rng, users)
    seats = [a for a in accounts for _ in range(a["seats"])]
    rng.shuffle(seats)

    ids: set[str] = set()
    rows: list[tuple] = []  # (day, ms, order, user index, payload) sorted into message order
    user_type, user_account, last_day, leaves = {}, {}, {}, {}
    people = []
    for i, kind in enumerate(planted):
        uid = f"usr_{int(rng.integers(16**10)):010x}"
        while uid in ids:
            uid = f"usr_{int(rng.integers(16**10)):010x}"
        ids.add(uid)
        behaviour, signup = _behaviour(kind, rng, days)
        counts, leave = _user_days(spec, behaviour, rng, days, signup, week)
        active_days = np.flatnonzero(counts.sum(axis=1))
        if not len(active_days):  # a casual user the dice never brought in: give them one visit
            counts[int(rng.integers(signup, days)), 0] = 1
            active_days = np.flatnonzero(counts.sum(axis=1))
        account = seats[i]
        first, name = int(active_days[0]), f"{FIRST_NAMES[int(rng.integers(len(FIRST_NAMES)))]} " \
                                           f"{LAST_NAMES[int(rng.integers(len(LAST_NAMES)))]}"
        user_type[uid], user_account[uid], last_day[uid] = kind, account["group_id"], int(active_days[-1])
        leaves[uid] = leave is not None
        people.append((uid, account))

        centre = rng.uniform(*spec.hours) * 3_600_000
        day_idx, act_idx = np.nonzero(counts)
        reps = counts[day_idx, act_idx]
        ev_days, ev_acts = np.repeat(day_idx, reps), np.repeat(act_idx, reps)
        ev_ms = np.clip(rng.normal(centre, 2.5 * 3_600_000, len(ev_days)), 0, MS_PER_DAY - 1).astype(np.int64)
        rows.extend(zip(ev_days.tolist(), ev_ms.tolist(), [2] * len(ev_days), [i] * len(ev_days),
                        [acts[a] for a in ev_acts.tolist()], strict=True))
        # identify and group just before the first event of the first active day
        first_ms = int(ev_ms[ev_days == first].min())
        intro = max(0, first_ms - int(rng.integers(1_000, 60_000)))
        created = start + timedelta(days=first) if signup else start - timedelta(days=int(rng.integers(20, 900)))
        email = f"{name.split()[0].lower()}.{name.split()[1].lower()}.{uid[-4:]}@" \
                f"{account['name'].split()[0].lower()}.example.com"
        rows.append((first, intro, 0, i, {"email": email, "name": name, "plan": account["plan"],
                                          "created_at": created.isoformat()}))
        rows.append((first, intro, 1, i, {k: account[k] for k in ("name", "plan", "mrr")}))
        last_ms = int(ev_ms[ev_days == last_day[uid]].max())
        people[-1] = (uid, account, last_ms)

    # An account whose every user left is marked churned, by its last user at the end of their last day.
    churned = []
    by_account: dict[str, list[int]] = {}
    for i, (_uid, account, _ms) in enumerate(people):
        by_account.setdefault(account["group_id"], []).append(i)
    for gid, members in by_account.items():
        if all(leaves[people[i][0]] for i in members):
            i = max(members, key=lambda j: (last_day[people[j][0]], people[j][2]))
            uid, account, last_ms = people[i]
            ms = min(MS_PER_DAY - 1, last_ms + int(rng.integers(1_000, 600_000)))
            rows.append((last_day[uid], ms, 3, i, {"name": account["name"], "plan": account["plan"], "mrr": 0,
                                                   "status": "churned"}))
            churned.append(gid)

    rows.sort(key=lambda r: r[:4] + ((r[4],) if r[2] == 2 else ()))
    prefix = f"{product}-{seed}-"
    messages = []
    for n, (day, ms, order, i, payload) in enumerate(rows):
        uid, account, _ms = people[i]
        base = {"userId": uid, "messageId": f"{prefix}{n:07d}", "timestamp": _stamp(start, day, ms)}
        if order == 2:
            messages.append({"type": "track", **base, "event": payload, "context": {"groupId": account["group_id"]}})
        elif order == 0:
            messages.append({"type": "identify", **base, "traits": payload})
        else:
            messages.append({"type": "group", **base, "groupId": account["group_id"], "traits": payload})

    return World(product=product, seed=seed, start=start, days=days, activities=acts,
                 value_activities=list(spec.value), shallow_activities=spec.shallow, messages=messages,
                 user_type=user_type, last_active_day=last_day, survey=_survey(spec, rng),
                 user_account=user_account, churned_accounts=sorted(churned))


def iter_batches(world: World, size: int = 1000) -> Iterator[list[dict]]:
    """The world's messages in time order, `size` at a time (a Segment batch holds at most 2,500)."""
    if size < 1:
        raise ValueError("size must be positive")
    for i in range(0, len(world.messages), size):
        yield world.messages[i : i + size]


# --------------------------------------------------------------------------
# Survey
# --------------------------------------------------------------------------


def _survey(spec: ProductSpec, rng: np.random.Generator) -> list[dict]:
    """~20 team members rate each activity: common belief + department bias + their own leniency and noise."""
    kind = {a: "shallow" for a in spec.shallow} | {a: "value" for a in spec.value}
    kind |= {a: "neutral" for a in spec.neutral}
    departments = [d for d, n in SURVEY_DEPARTMENTS.items() for _ in range(n)]
    extra = int(rng.integers(-2, 3))
    if extra > 0:
        departments += [str(d) for d in rng.choice(list(SURVEY_DEPARTMENTS), size=extra)]
    elif extra < 0:
        departments = [departments[i] for i in sorted(rng.choice(len(departments), len(departments) + extra,
                                                                 replace=False))]
    respondents = []
    for dept in departments:
        leniency = rng.normal(0, 1.0)
        ratings = {}
        for a in spec.activities:
            if rng.random() < NOT_RELEVANT.get(dept, 0.05):
                ratings[a] = None
                continue
            score = spec.beliefs[a] + DEPARTMENT_BIAS[dept][kind[a]] + leniency + rng.normal(0, 1.3)
            ratings[a] = int(min(10, max(1, math.floor(score + 0.5))))
        respondents.append({"department": dept, "ratings": ratings})
    return respondents
