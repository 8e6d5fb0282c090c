"""The one rate limiter: a fixed or sliding window counted in the shared cache.

Used by the ingestion API (requests per second per write key) and the survey
share links (answers per IP per hour). Three properties every caller relies on:

- **One round trip.** On Redis a hit is one Lua script (EVALSHA): count the
  window, read the previous one (sliding), read any extra keys the caller needs
  on the same trip (ingestion reads the API-key cache's generation token).
- **Fail open.** The limiter protects us from abuse, it is not what keeps data
  correct: when the store fails, the hit is allowed, a warning is logged once,
  and the store is left alone for `OUTAGE_RETRY_SECONDS` (per process), so an
  outage costs one failed call per interval, not one per request.
- **Works embedded.** Without Redis (the default `LocMemCache`, or any other
  Django cache) the same windows are counted through Django's cache API.

The Redis client is our own `redis.Redis` built from the cache's settings
(`CACHES[alias]["LOCATION"]` and the socket timeouts in `OPTIONS`), one
connection pool per process and location; keys go through the cache's public
`make_key`, so they share its prefix and database with everything else the
cache stores (the generation token is written by `cache.set`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

log = logging.getLogger(__name__)

OUTAGE_RETRY_SECONDS = 10

# KEYS[1] this window's counter (counted only when ARGV[3] == "1"), KEYS[2] the previous window's
# (read only when ARGV[2] == "1"), KEYS[3..] extra keys to read. ARGV[1] the counter's time to live.
# Returns {count, previous, extras...} (a missing key is false in Lua, nil in the reply).
_HIT_SCRIPT = """
local count = 0
if ARGV[3] == '1' then
  count = redis.call('INCR', KEYS[1])
  if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
end
local previous = 0
if ARGV[2] == '1' then previous = tonumber(redis.call('GET', KEYS[2]) or '0') end
local reply = {count, previous}
for i = 3, #KEYS do reply[#reply + 1] = redis.call('GET', KEYS[i]) end
return reply
"""


@dataclass(frozen=True)
class Hit:
    allowed: bool
    # This key's count in the window (sliding: weighted with the previous window);
    # None when nothing was counted (no limit, or the store is down).
    count: float | None
    # Seconds until the window lets a refused caller in again (0 when allowed).
    retry_after: int
    # The raw values of `also_get`, in order (Redis: the stored bytes, only fit for comparing);
    # empty when the store is down.
    extras: tuple[Any, ...] = ()


class RedisStore:
    """Counts on Redis with one script call per hit."""

    def __init__(self, url: str, options: dict | None = None, key_prefix=None):
        import redis

        options = options or {}
        self.name = url
        self.client = redis.Redis.from_url(
            url,
            socket_connect_timeout=options.get("socket_connect_timeout", 1),
            socket_timeout=options.get("socket_timeout", 1),
        )
        self.script = self.client.register_script(_HIT_SCRIPT)
        self.make_key = key_prefix or (lambda key: key)

    def hit(self, counter: str | None, previous: str | None, ttl: int, extras: Sequence[str]) -> tuple[int, int, list]:
        """Count `counter` (None: only read), read `previous` and `extras`: (count, previous count, extras)."""
        first = self.make_key(counter or "rl:none")
        keys = [first, self.make_key(previous) if previous else first, *map(self.make_key, extras)]
        reply = self.script(keys=keys, args=[ttl, "1" if previous else "0", "1" if counter else "0"])
        return int(reply[0]), int(reply[1]), list(reply[2:])


class CacheStore:
    """Counts through Django's cache API (locmem in the embedded default): several calls, same result."""

    def __init__(self, alias: str):
        self.name = alias
        self.cache = caches[alias]

    def hit(self, counter: str | None, previous: str | None, ttl: int, extras: Sequence[str]) -> tuple[int, int, list]:
        count = 0
        if counter:
            # add() is atomic on every backend: the first request creates the counter.
            self.cache.add(counter, 0, timeout=ttl)
            try:
                count = self.cache.incr(counter)
            except ValueError:  # expired between add and incr: this request is the first
                self.cache.set(counter, 1, timeout=ttl)
                count = 1
        before = (self.cache.get(previous) or 0) if previous else 0
        return count, before, [self.cache.get(key) for key in extras]


_stores: dict[tuple, RedisStore] = {}
_stores_lock = threading.Lock()
# Per store name: monotonic time before which the store is not tried again after a failure.
_down_until: dict[str, float] = {}


def store_for(alias: str = "default") -> RedisStore | CacheStore:
    """The store behind a cache alias: our own Redis client for a RedisCache, the cache itself otherwise."""
    backend = caches[alias]
    if not isinstance(backend, RedisCache):
        return CacheStore(alias)
    config = settings.CACHES[alias]
    location = config["LOCATION"]
    url = (location if isinstance(location, str) else location[0]).split(",")[0]
    options = config.get("OPTIONS", {})
    key = (url, options.get("socket_connect_timeout"), options.get("socket_timeout"), backend.key_prefix)
    with _stores_lock:
        if key not in _stores:
            _stores[key] = RedisStore(url, options, key_prefix=backend.make_key)
        return _stores[key]


def reset_outages() -> None:
    """Forget remembered store failures (tests)."""
    _down_until.clear()


class RateLimit:
    """`limit` hits per `window` seconds per key, in a named family of counters.

    Fixed windows are aligned on the clock (cheap: one counter). Sliding windows
    weigh the previous window's count by how much of it still overlaps the last
    `window` seconds (two counters, still one round trip), so a burst across a
    boundary cannot pass twice the limit.
    """

    def __init__(self, name: str, *, window: int, sliding: bool = False, cache_alias: str = "default", store=None):
        self.name, self.window, self.sliding = name, window, sliding
        self.cache_alias, self.store = cache_alias, store

    def hit(self, key: str, limit: int, *, also_get: Sequence[str] = ()) -> Hit:
        """Count one hit of `key` (unless `limit` is 0: unlimited) and read `also_get` on the same trip."""
        store = self.store or store_for(self.cache_alias)
        if time.monotonic() < _down_until.get(store.name, 0.0):
            return Hit(allowed=True, count=None, retry_after=0)
        now = time.time()
        index, elapsed = divmod(now, self.window)
        counter = f"rl:{self.name}:{key}:{int(index)}"
        previous = f"rl:{self.name}:{key}:{int(index) - 1}" if self.sliding else None
        ttl = self.window * (2 if self.sliding else 1) + 4
        if not limit and not also_get:
            return Hit(allowed=True, count=None, retry_after=0)
        try:
            if not limit:  # unlimited: only the extra reads
                extras = store.hit(None, None, ttl, also_get)[2]
                return Hit(allowed=True, count=None, retry_after=0, extras=tuple(extras))
            count, before, extras = store.hit(counter, previous, ttl, also_get)
        except Exception as exc:  # any store's connection error: redis, memcached, ...
            _down_until[store.name] = time.monotonic() + OUTAGE_RETRY_SECONDS
            log.warning("%s: rate limit skipped for %ss, the cache failed: %r", self.name, OUTAGE_RETRY_SECONDS, exc)
            return Hit(allowed=True, count=None, retry_after=0)
        weighted = count + before * (1 - elapsed / self.window) if self.sliding else count
        allowed = weighted <= limit
        retry_after = 0 if allowed else max(1, math.ceil(self.window - elapsed))
        return Hit(allowed=allowed, count=weighted, retry_after=retry_after, extras=tuple(extras))
