"""The synthetic worlds of bench/truth_worlds.py: deterministic, well-formed, and with the planted truth in place."""

from collections import Counter, defaultdict
from datetime import UTC, date, datetime

import pytest

from bench.truth_worlds import PRODUCTS, TYPE_SHARES, generate_world, iter_batches
from events import wire

USERS = 150


@pytest.fixture(scope="module")
def worlds():
    return {p: generate_world(p, seed=7, users=USERS) for p in PRODUCTS}


def _day(world, message) -> int:
    return (date.fromisoformat(message["timestamp"][:10]) - world.start).days


def _active_days(world) -> dict[str, set[int]]:
    days = defaultdict(set)
    for m in world.messages:
        days[m["userId"]].add(_day(world, m))
    return days


def test_same_seed_same_messages_other_seed_differs():
    a, b = generate_world("crm", 3, users=USERS), generate_world("crm", 3, users=USERS)
    assert a.messages == b.messages and a.user_type == b.user_type and a.survey == b.survey
    c = generate_world("crm", 4, users=USERS)
    assert c.messages != a.messages and set(c.user_type) != set(a.user_type)


def test_every_product_generates(worlds):
    assert len(PRODUCTS) >= 3
    for name, world in worlds.items():
        assert 8 <= len(world.activities) <= 14
        assert set(world.value_activities) <= set(world.activities)
        assert set(world.shallow_activities) <= set(world.activities)
        assert not set(world.value_activities) & set(world.shallow_activities)
        assert len(world.user_type) == USERS
        assert {m["event"] for m in world.messages if m["type"] == "track"} <= set(world.activities), name


def test_type_shares_near_spec(worlds):
    for world in worlds.values():
        shares = Counter(world.user_type.values())
        for kind, share in TYPE_SHARES.items():
            assert abs(shares[kind] / USERS - share) < 0.07, (kind, shares)


def test_busy_users_do_more_per_day_yet_leave_more(worlds):
    for world in worlds.values():
        events, days = Counter(), _active_days(world)
        for m in world.messages:
            if m["type"] == "track":
                events[m["userId"]] += 1
        def per_day(kind):
            users = [u for u, t in world.user_type.items() if t == kind]
            return sum(events[u] for u in users) / sum(len(days[u]) for u in users)

        def left(kind):
            users = [u for u, t in world.user_type.items() if t == kind]
            return sum(world.last_active_day[u] < world.days - 30 for u in users) / len(users)

        assert per_day("busy") > 2 * per_day("valuable")  # busy leavers look in lightly before their busy weeks
        assert left("busy") > left("valuable") + 0.3
        assert left("fading") > left("valuable") + 0.3 and left("valuable") < 0.3


def test_messages_are_what_ingestion_takes(worlds):
    now = datetime.now(UTC)
    for world in worlds.values():
        ids = [m["messageId"] for m in world.messages]
        assert len(ids) == len(set(ids))
        end = datetime.combine(world.end, datetime.min.time(), tzinfo=UTC)
        begin = datetime.combine(world.start, datetime.min.time(), tzinfo=UTC)
        types = Counter(m["type"] for m in world.messages)
        assert types["identify"] == USERS and types["group"] >= USERS
        for m in world.messages:
            assert begin <= wire.parse_timestamp(m["timestamp"]) < end
            assert m["userId"] and m["messageId"]
            if m["type"] == "track":
                assert m["event"] and m["context"]["groupId"] and set(m) <= {
                    "type", "userId", "event", "messageId", "timestamp", "context", "properties"}
        for batch in iter_batches(world, size=500):
            assert len(batch) <= 500
            assert all(isinstance(r, wire.Message) for r in wire.normalize_all(
                batch, kind="batch", received_at=now, batch_sent_at=None))
        assert sum(len(b) for b in iter_batches(world)) == len(world.messages)
        stamps = [m["timestamp"] for m in world.messages]
        assert stamps == sorted(stamps)  # time order
        assert len({m["timestamp"][11:13] for m in world.messages}) > 10  # spread over the day


def test_last_active_day_is_what_the_messages_say(worlds):
    for world in worlds.values():
        days = _active_days(world)
        assert world.last_active_day == {u: max(d) for u, d in days.items()}


def test_churned_accounts_have_no_user_left(worlds):
    for world in worlds.values():
        churned = {m["groupId"] for m in world.messages if m["type"] == "group" and
                   m["traits"].get("status") == "churned"}
        assert churned == set(world.churned_accounts) and churned
        for gid in churned:
            users = [u for u, g in world.user_account.items() if g == gid]
            assert max(world.last_active_day[u] for u in users) < world.days - 1 or len(users) == 1


@pytest.mark.parametrize("snapshot", [60, 90, 120, 150])
def test_stayers_and_leavers_at_every_snapshot(worlds, snapshot):
    for world in worlds.values():
        days = _active_days(world)
        active = [u for u, d in days.items() if any(snapshot - 30 <= x < snapshot for x in d)]
        stayed = [u for u in active if any(snapshot + 54 <= x <= snapshot + 60 for x in days[u])]
        assert 0.2 * len(active) < len(stayed) < 0.9 * len(active), (world.product, snapshot)


def test_survey_is_plausible_not_the_truth(worlds):
    for world in worlds.values():
        assert 17 <= len(world.survey) <= 23
        by_dept = defaultdict(list)
        for answer in world.survey:
            assert set(answer["ratings"]) == set(world.activities)
            for value in answer["ratings"].values():
                assert value is None or 1 <= value <= 10
            by_dept[answer["department"]].append(answer["ratings"])

        def mean(depts, acts):
            xs = [r[a] for d in depts for r in by_dept[d] for a in acts if r[a] is not None]
            return sum(xs) / len(xs)

        shallow, value = world.shallow_activities, world.value_activities
        assert mean(["sales", "marketing"], shallow) > mean(["product", "engineering"], shallow) + 2
        assert mean(["product", "engineering"], value) > mean(["sales", "marketing"], value)
        # Some value activity is rated below some activity that is not one.
        means = {a: mean(list(by_dept), [a]) for a in world.activities}
        assert min(means[a] for a in value) < max(means[a] for a in world.activities if a not in value)


def test_no_type_in_ids_or_properties(worlds):
    for world in worlds.values():
        for m in world.messages[:5000]:
            assert "properties" not in m or "archetype" not in m["properties"]
            assert not any(t in m["userId"] or t in m["messageId"] for t in TYPE_SHARES)
