"""A per-process cache of API keys for the ingestion hot path.

Looking a write key up costs a query (and ORM work) on every tracking request;
keys change rarely. Entries live `API_KEY_CACHE_SECONDS` at most, and every
save or delete of a key or a tenant changes a generation token in the shared
cache. The tracking endpoint reads that token in the same Redis round trip as
its rate limit, so a revoked key is refused by every process at its next
request; if the shared cache is down, within `API_KEY_CACHE_SECONDS`.
"""

import logging
import time
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from . import rls
from .models import ApiKey, Tenant

log = logging.getLogger(__name__)

GENERATION_CACHE_KEY = "api-keys-generation"
MAX_ENTRIES = 10_000  # unknown prefixes are cached too: bound what random keys can fill

_entries: dict[str, tuple[float, ApiKey | None]] = {}
_generation: str | None = None


def lookup(prefix: str, generation: str | None) -> ApiKey | None:
    """The key with this prefix (tenant loaded), or None; from the cache while it is fresh."""
    global _generation
    if generation is not None and generation != _generation:
        _entries.clear()
        _generation = generation
    now = time.monotonic()
    entry = _entries.get(prefix)
    if entry is None or entry[0] < now:
        # RLS bypass: the key is what tells the tenant (the caller checks its secret's hash).
        with rls.bypass("write key lookup by prefix"):
            key = ApiKey.objects.unscoped().select_related("tenant").filter(prefix=prefix).first()
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        entry = _entries[prefix] = (now + settings.API_KEY_CACHE_SECONDS, key)
    return entry[1]


def clear() -> None:
    _entries.clear()


def _publish_new_generation() -> None:
    clear()
    try:
        cache.set(GENERATION_CACHE_KEY, uuid.uuid4().hex, timeout=None)
    except Exception as exc:  # noqa: BLE001 - the cache is down: other processes fall back to the TTL
        log.warning(
            "API key change not published to the cache (%r): other processes see it within %ss",
            exc,
            settings.API_KEY_CACHE_SECONDS,
        )


def _changed(sender, **kwargs) -> None:
    # Now for this process (it may read the change inside the same transaction), and
    # again after the commit for every process: before it they would reload the old row.
    clear()
    transaction.on_commit(_publish_new_generation)


def connect_signals() -> None:
    for model in (ApiKey, Tenant):
        post_save.connect(_changed, sender=model, dispatch_uid=f"key-cache-{model.__name__}-save")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"key-cache-{model.__name__}-delete")
