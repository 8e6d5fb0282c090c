"""How fresh a tenant's scores are, and the embedded default's in-process refresh.

With a broker, Celery beat refreshes every tenant each SCORING_REFRESH_MINUTES. The
embedded default (`make run`: SQLite, tasks run eagerly, no beat) has no beat, so the
web process keeps scores fresh itself: a daemon thread started with `runserver`
(`start_in_process_refresh`) looks every SCORING_IN_PROCESS_REFRESH_SECONDS for
workspaces whose newest events arrived after their scores were last computed and
have settled (no new event for SCORING_REFRESH_SETTLE_SECONDS), or whose day has
turned, and refreshes them with the same code beat runs (`services.refresh_tenant`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts import rls
from accounts.models import Tenant
from events.models import Event

from .models import ModelStatus, RunStatus, ScoringModel, ScoringRun

logger = logging.getLogger(__name__)

# Newest events looked at to count the ones waiting: the (tenant, id) index reads them at once.
WAITING_SCAN = 1000


@dataclass(frozen=True)
class Freshness:
    computed_at: datetime | None  # when the last finished run that covers today started
    newest_event_at: datetime | None  # when the newest event was received
    waiting: int  # events received since then (at most WAITING_SCAN, see `waiting_more`)
    running: bool  # a run is queued or running now

    @property
    def waiting_more(self) -> bool:
        return self.waiting >= WAITING_SCAN


def freshness(tenant: Tenant) -> Freshness | None:
    """None without a published model (there are no scores to be fresh)."""
    model = ScoringModel.objects.for_tenant(tenant).filter(status=ModelStatus.PUBLISHED).first()
    if model is None:
        return None
    runs = ScoringRun.objects.for_tenant(tenant).filter(model=model)
    last = (
        runs.filter(status=RunStatus.SUCCEEDED, last_day__gte=tenant.today())
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    received = list(
        Event.objects.for_tenant(tenant).order_by("-id").values_list("received_at", flat=True)[:WAITING_SCAN]
    )
    waiting = len(received) if last is None else sum(1 for at in received if at > last)
    return Freshness(
        computed_at=last,
        newest_event_at=max(received) if received else None,
        waiting=waiting,
        running=runs.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists(),
    )


def in_process_delay_seconds() -> int:
    """About how long after the last event the in-process refresh scores it (for the pages)."""
    return int(settings.SCORING_IN_PROCESS_REFRESH_SECONDS + settings.SCORING_REFRESH_SETTLE_SECONDS)


def needs_refresh(tenant: Tenant, now: datetime | None = None) -> bool:
    """New events that have settled since the last computation, or no computation of today yet."""
    state = freshness(tenant)
    if state is None or state.running:
        return False
    if state.computed_at is None:
        return True  # a new day (or a model published before any run finished)
    now = now or timezone.now()
    settle = timedelta(seconds=settings.SCORING_REFRESH_SETTLE_SECONDS)
    return state.waiting > 0 and state.newest_event_at is not None and state.newest_event_at <= now - settle


def refresh_due_tenants(now: datetime | None = None) -> list[int]:
    """One pass of the in-process refresh: refresh every workspace that needs it; returns their ids."""
    from . import services  # services imports this module's neighbours; keep the import graph flat

    with rls.bypass("in-process refresh: the tenants with a published model"):
        tenant_ids = list(
            ScoringModel.objects.unscoped().filter(status=ModelStatus.PUBLISHED).values_list("tenant_id", flat=True)
        )
    refreshed = []
    for tenant in Tenant.objects.filter(pk__in=tenant_ids).order_by("pk"):
        with rls.session_tenant(tenant):
            if needs_refresh(tenant, now):
                services.refresh_tenant(tenant)  # eager: computed here, in this thread
                refreshed.append(tenant.pk)
    return refreshed


def in_process_refresh_wanted() -> bool:
    """The embedded default's development server, in the process that serves (not the autoreloader)."""
    if not settings.CELERY_TASK_ALWAYS_EAGER or settings.SCORING_IN_PROCESS_REFRESH_SECONDS <= 0:
        return False
    if not (len(sys.argv) > 1 and sys.argv[1] == "runserver"):
        return False
    return os.environ.get("RUN_MAIN") == "true" or "--noreload" in sys.argv


_started = threading.Event()


def start_in_process_refresh() -> None:
    if _started.is_set():
        return
    _started.set()
    threading.Thread(target=_loop, name="scoring-in-process-refresh", daemon=True).start()


def _loop() -> None:
    interval = settings.SCORING_IN_PROCESS_REFRESH_SECONDS
    while True:
        time.sleep(interval)
        try:
            refreshed = refresh_due_tenants()
            if refreshed:
                logger.info("In-process refresh: scored today for %d workspace(s).", len(refreshed))
        except Exception:  # a failed pass must not stop the next one; the run row keeps the error
            logger.exception("In-process scoring refresh failed; trying again in %s s", interval)
        finally:
            connection.close()  # this thread's own connection: not kept between passes
