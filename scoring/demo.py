"""The demo tenant's scoring: publish a model and compute 90 days, idempotently.

Called by `manage.py seed_demo` after the demo events. Weights come from the
team survey's proposal when the surveys app has one with answers; otherwise
from the fixed demo weights below (rare "power user" actions high, frequent
ones low).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction

from accounts.models import Tenant
from events.models import DailyActivityCount

from . import services
from .modelfile import FORMAT
from .models import ProductScore, RunKind

log = logging.getLogger(__name__)

DEMO_POINTS = {
    "Logged in": 1,
    "Opened email": 1,
    "Clicked email": 3,
    "Added photo": 5,
    "Edited photo": 5,
    "Commented on photo": 8,
    "Shared photo": 15,
    "Posted to Facebook": 20,
    "Posted to Twitter": 20,
    "Invited friend": 50,
}


def _survey_points(tenant: Tenant) -> dict[str, int] | None:
    """The points proposed by the tenant's latest answered survey, when the surveys app offers them."""
    try:
        from surveys import services as survey_services
        from surveys.models import Survey
    except ImportError:
        return None
    propose = getattr(survey_services, "survey_propose_weights", None)
    if propose is None:
        return None
    for survey in Survey.objects.for_tenant(tenant).order_by("-created_at")[:5]:
        try:
            proposal = propose(survey=survey)
        except Exception:  # a proposal is a nicety for the demo, never a reason to fail seeding
            log.exception("survey proposal failed for the demo")
            return None
        points = {w.activity.name: max(0, min(1000, w.points)) for w in proposal if w.points}
        if points:
            return points
    return None


def demo_model_file(tenant: Tenant) -> dict:
    points = _survey_points(tenant) or DEMO_POINTS
    return {
        "format": FORMAT,
        "name": "Demo model",
        "window_days": 30,
        "daily_cap": 10,
        "half_life_days": None,
        "tier_rule": {"method": "percentile", "high": 80, "medium": 40},
        "grace_days": 14,
        "account_rollup": "sum",
        "points": points,
    }


def seed_demo_scoring(tenant: Tenant, days: int | None = None) -> str:
    """Publish the demo model once, then make sure every one of the last `days` days is scored."""
    days = days or settings.SCORING_BACKFILL_DAYS
    model = services.published_model(tenant)
    if model is None:
        with transaction.atomic():
            draft = services.scoring_model_import(tenant=tenant, raw=demo_model_file(tenant))
            services.scoring_model_publish(model=draft, backfill_days=days)
        model = services.published_model(tenant)
    today = tenant.today()
    first = today - timedelta(days=days - 1)
    rows = ProductScore.objects.for_tenant(tenant).filter(model=model, day__gte=first, day__lte=today)
    # Events seeded after an earlier scoring (or a new day) leave days to (re)compute.
    stale = DailyActivityCount.objects.for_tenant(tenant).exists() and not rows.filter(active_users__gt=0).exists()
    if rows.count() < days or stale:
        # Compute in the foreground so the demo is full on first start, broker or not.
        run = services.run_create(model=model, kind=RunKind.COMMAND, first_day=first, last_day=today)
        services.run_in_foreground(run)
    return f"Scoring: v{model.version} published, {days} days of snapshots."
