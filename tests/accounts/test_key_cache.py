"""Write keys are cached per process on the tracking path; revocation still applies at once."""

import base64
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from accounts import key_cache
from accounts.models import ApiKey, ApiKeyKind
from accounts.services import api_key_create
from events.models import Event

ROOT = Path(__file__).resolve().parents[2]


def send(client, plaintext, **event):
    body = {"batch": [{"type": "track", "userId": "u1", "event": "Added photo", "messageId": str(uuid.uuid4()),
                       **event}]}  # fmt: skip
    auth = "Basic " + base64.b64encode(f"{plaintext}:".encode()).decode()
    return client.post("/v1/batch", json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=auth)


@pytest.fixture
def key(tenant):
    key_cache.clear()
    yield api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="web")
    key_cache.clear()


def test_a_key_revoked_behind_the_cache_s_back_works_until_its_time_limit(client, key, settings, monkeypatch):
    """Without a generation change (the shared cache was down) a cached key lives API_KEY_CACHE_SECONDS."""
    settings.API_KEY_CACHE_SECONDS = 5
    api_key, plaintext = key
    clock = [1000.0]
    monkeypatch.setattr(key_cache.time, "monotonic", lambda: clock[0])
    assert send(client, plaintext).status_code == 200
    ApiKey.objects.unscoped().filter(pk=api_key.pk).update(revoked_at=timezone.now())  # no signal: as from elsewhere
    assert send(client, plaintext).status_code == 200
    clock[0] += 6
    assert send(client, plaintext).status_code == 401


def test_a_new_generation_in_the_shared_cache_drops_cached_keys(client, key, settings):
    settings.API_KEY_CACHE_SECONDS = 3600
    api_key, plaintext = key
    assert send(client, plaintext).status_code == 200
    ApiKey.objects.unscoped().filter(pk=api_key.pk).update(revoked_at=timezone.now())
    from django.core.cache import cache

    cache.set(key_cache.GENERATION_CACHE_KEY, uuid.uuid4().hex, timeout=None)  # what another process publishes
    assert send(client, plaintext).status_code == 401


def test_a_time_zone_change_applies_to_the_next_request(client, key, tenant, settings):
    settings.API_KEY_CACHE_SECONDS = 3600
    _, plaintext = key
    tenant.time_zone = "UTC"
    tenant.save()
    late_evening_utc = datetime(2026, 11, 30, 23, 30, tzinfo=UTC).isoformat()
    assert send(client, plaintext, timestamp=late_evening_utc).status_code == 200
    tenant.time_zone = "Europe/Berlin"
    tenant.save()
    assert send(client, plaintext, timestamp=late_evening_utc).status_code == 200
    days = sorted(str(d) for d in Event.objects.for_tenant(tenant).values_list("day", flat=True))
    assert days == ["2026-11-30", "2026-12-01"]


@pytest.mark.django_db(transaction=True)
def test_a_key_revoked_by_another_process_is_refused_at_once(client, postgres, redis_url, settings):
    """A real second process revokes the key; this process refuses it on its next request."""
    from accounts.services import tenant_create
    from tests.conftest import make_user

    settings.API_KEY_CACHE_SECONDS = 3600
    owner = make_user("kc.owner@acme.test", "Key Owner")
    tenant = tenant_create(name="Keys", product_name="Keys", owner=owner)
    api_key, plaintext = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="web")
    assert send(client, plaintext).status_code == 200
    assert send(client, plaintext).status_code == 200  # now served from this process's cache

    db = django_settings.DATABASES["default"]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "engagement_site.settings", "REDIS_URL": redis_url}
    env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    # The other process is an application process: it reads the key inside its tenant (RLS).
    script = (
        "import django; django.setup()\n"
        "from accounts import rls; from accounts.models import ApiKey; from accounts.services import api_key_revoke\n"
        f"with rls.tenant_context({tenant.pk}):\n"
        f"    api_key_revoke(key=ApiKey.objects.unscoped().get(pk={api_key.pk}))"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert send(client, plaintext).status_code == 401
    assert Event.objects.for_tenant(tenant).count() == 2
