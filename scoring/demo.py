"""The demo tenant's scoring: publish a model and compute 90 days, idempotently.

Called by `manage.py seed_demo` after the demo events and the demo survey, with
the draft the survey proposed. Without a draft it imports the fixed demo
weights below (rare "power user" actions high, frequent ones low).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction

from accounts.models import Tenant
from events.models import DailyActivityCount

from . import selectors, services
from .modelfile import FORMAT
from .models import ProductScore, RunKind, ScoringModel

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
    "Created album": 10,
}


# The demo's settings; its points come from the team survey when seed_demo has one.
DEMO_SETTINGS = {
    "window_days": 30,
    "daily_cap": 10,
    "half_life_days": None,
    "grace_days": 14,
    "account_rollup": "sum",
}


def demo_model_file() -> dict:
    return {
        "format": FORMAT,
        "name": "Demo model",
        **DEMO_SETTINGS,
        "tier_rule": {"method": "percentile", "high": 80, "medium": 40},
        "points": DEMO_POINTS,
    }


def seed_demo_scoring(tenant: Tenant, days: int | None = None, draft: ScoringModel | None = None) -> str:
    """Publish the demo model once, then make sure every one of the last `days` days is scored.

    `draft` is the model to publish (seed_demo passes the one the team survey proposed);
    without it the fixed DEMO_POINTS are imported.
    """
    days = days or settings.SCORING_BACKFILL_DAYS
    model = selectors.published_model(tenant)
    if model is None:
        with transaction.atomic():
            if draft is None:
                draft = services.scoring_model_import(tenant=tenant, raw=demo_model_file())
            else:
                draft = services.scoring_model_update(model=draft, **DEMO_SETTINGS)
            services.scoring_model_publish(model=draft, backfill_days=days)
        model = selectors.published_model(tenant)
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
