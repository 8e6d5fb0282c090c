"""core.ratelimit: fixed and sliding windows, one round trip on Redis, fail-open, the embedded fallback."""

import logging
from importlib.metadata import version
from pathlib import Path

import pytest
from django.core.cache import caches
from django.test import override_settings

from core import ratelimit
from core.ratelimit import CacheStore, RateLimit, RedisStore


@pytest.fixture(autouse=True)
def no_outage():
    with override_settings(CACHES=LOCMEM):
        caches["default"].clear()
    ratelimit.reset_outages()
    yield
    ratelimit.reset_outages()


# The embedded default's store, also when REDIS_URL points the suite's cache at Redis.
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "ratelimit-tests"}}


def _pinned_redis() -> str:
    requirements = Path(__file__).resolve().parents[2] / "requirements.txt"
    line = next(line for line in requirements.read_text().splitlines() if line.startswith("redis=="))
    return line.split("==", 1)[1].strip()


def test_the_redis_client_is_the_pinned_one():
    # The Lua call and the error types below are those of this client: an upgrade re-runs these tests first.
    assert version("redis") == _pinned_redis() == "8.1.0"


@override_settings(CACHES=LOCMEM)
def test_a_fixed_window_counts_and_refuses_past_the_limit(monkeypatch):
    monkeypatch.setattr(ratelimit.time, "time", lambda: 1_000_000.25)
    limit = RateLimit("t-fixed", window=10, store=CacheStore("default"))
    hits = [limit.hit("k", 2) for _ in range(3)]
    assert [h.count for h in hits] == [1, 2, 3]
    assert [h.allowed for h in hits] == [True, True, False]
    assert hits[2].retry_after == 10  # 9.75 s left in the window, rounded up
    assert limit.hit("other", 2).allowed  # another key has its own counter
    monkeypatch.setattr(ratelimit.time, "time", lambda: 1_000_010.0)  # the next window
    assert limit.hit("k", 2).count == 1


@override_settings(CACHES=LOCMEM)
def test_a_sliding_window_weighs_the_previous_one(monkeypatch):
    clock = [1_000_000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: clock[0])
    limit = RateLimit("t-sliding", window=100, sliding=True, store=CacheStore("default"))
    for _ in range(4):
        assert limit.hit("k", 4).allowed
    clock[0] += 125  # a quarter into the next window: 3/4 of the previous 4 still count
    hit = limit.hit("k", 4)
    assert hit.count == pytest.approx(1 + 4 * 0.75) and hit.allowed
    assert not limit.hit("k", 4).allowed  # 2 + 3 = 5: no burst of twice the limit across a boundary


@override_settings(CACHES=LOCMEM)
def test_zero_is_unlimited_and_still_reads_the_extras():
    caches["default"].set("some-token", "abc")
    hit = RateLimit("t-zero", window=1).hit("k", 0, also_get=["some-token", "missing"])
    assert (hit.allowed, hit.count, hit.extras) == (True, None, ("abc", None))


def test_it_fails_open_on_a_closed_port_and_backs_off(caplog, monkeypatch):
    store = RedisStore("redis://127.0.0.1:1/0")
    calls = []
    real_hit = store.hit
    monkeypatch.setattr(store, "hit", lambda *a: calls.append(a) or real_hit(*a))
    limit = RateLimit("t-down", window=1, store=store)
    with caplog.at_level(logging.WARNING, logger="core.ratelimit"):
        first = limit.hit("k", 1, also_get=["token"])
        second = limit.hit("k", 1)
    assert (first.allowed, first.count, first.extras) == (True, None, ())
    assert second.allowed
    # Logged once, tried once: the store is left alone for OUTAGE_RETRY_SECONDS.
    assert caplog.text.count("t-down: rate limit skipped") == 1 and len(calls) == 1
    ratelimit.reset_outages()
    assert limit.hit("k", 1).allowed and len(calls) == 2


UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}


def test_a_redis_cache_gets_a_redis_store_and_locmem_the_cache_store():
    with override_settings(CACHES=LOCMEM):
        assert isinstance(ratelimit.store_for(), CacheStore)
    with override_settings(CACHES=UNREACHABLE_REDIS):
        store = ratelimit.store_for()
        assert isinstance(store, RedisStore) and store is ratelimit.store_for()  # one pool per process
        assert RateLimit("t-settings", window=1).hit("k", 1).allowed  # down: fails open


@pytest.mark.redis
def test_on_redis_a_hit_is_one_round_trip(redis_url, monkeypatch):
    store = RedisStore(redis_url, key_prefix=lambda key: f"test-ratelimit:{key}")
    store.client.delete(*store.client.keys("test-ratelimit:*") or ["test-ratelimit:none"])
    store.client.set("test-ratelimit:token", b"raw")
    store.client.script_load(ratelimit._HIT_SCRIPT)  # as after the first hit of a process
    commands = []
    execute = store.client.execute_command
    monkeypatch.setattr(store.client, "execute_command", lambda *a, **k: commands.append(a[0]) or execute(*a, **k))
    monkeypatch.setattr(ratelimit.time, "time", lambda: 2_000_000.5)

    limit = RateLimit("t-redis", window=60, sliding=True, store=store)
    hits = [limit.hit("k", 2, also_get=["token", "missing"]) for _ in range(3)]
    assert [h.count for h in hits] == [1, 2, 3] and [h.allowed for h in hits] == [True, True, False]
    assert hits[0].extras == (b"raw", None)
    assert commands == ["EVALSHA"] * 3
    ttl = store.client.ttl(f"test-ratelimit:rl:t-redis:k:{2_000_000 // 60}")
    assert 0 < ttl <= 124
    # The next window (sliding): the previous window's 3 hits still weigh.
    monkeypatch.setattr(ratelimit.time, "time", lambda: (2_000_000 // 60 + 1) * 60 + 30.0)
    assert limit.hit("k", 2).count == pytest.approx(1 + 3 * 0.5)
