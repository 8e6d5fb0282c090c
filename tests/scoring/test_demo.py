"""seed_demo's scoring step: publishes a model and fills 90 days, idempotently."""

from datetime import timedelta

import pytest

from scoring.demo import DEMO_POINTS, seed_demo_scoring
from scoring.models import ModelStatus, ProductScore, ScoringModel, ScoringRun

from .conftest import add_counts, make_activities, make_users

pytestmark = pytest.mark.django_db


def test_it_publishes_the_demo_model_and_computes_90_days(tenant):
    acts = make_activities(tenant, "Logged in", "Shared photo")
    users = make_users(tenant, "u1", "u2")
    today = tenant.today()
    add_counts(
        tenant,
        [(users["u1"], acts["Logged in"], today - timedelta(days=d), 2) for d in range(0, 90, 7)]
        + [(users["u2"], acts["Shared photo"], today - timedelta(days=3), 1)],
    )
    seed_demo_scoring(tenant)
    model = ScoringModel.objects.get(tenant=tenant, status=ModelStatus.PUBLISHED)
    assert dict(model.weights.values_list("activity__name", "points")) == DEMO_POINTS
    assert ProductScore.objects.unscoped().filter(model=model).count() == 90
    assert ProductScore.objects.unscoped().filter(model=model, active_users__gt=0).exists()

    runs = ScoringRun.objects.unscoped().count()
    seed_demo_scoring(tenant)  # again: nothing new
    assert ScoringModel.objects.filter(tenant=tenant).count() == 1
    assert ScoringRun.objects.unscoped().count() == runs
