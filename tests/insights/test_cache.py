"""The insight cache: a result is kept for its TTL, a finished scoring run shows at once, a dead cache is skipped."""

from datetime import timedelta

import pytest
from django.core.cache import cache

from insights.queries.growth import growth_accounting
from scoring import services
from scoring.models import RunKind

from .helpers import monday, published, send, track

pytestmark = pytest.mark.django_db


@pytest.fixture
def cached(settings):
    settings.INSIGHTS_CACHE_SECONDS = 300
    cache.clear()
    yield
    cache.clear()


def _active_this_week(tenant) -> int:
    return growth_accounting(tenant, subject="users", measure="active", period="week").rows[-1].active


def test_a_result_is_kept_until_a_scoring_run_finishes(cached, tenant, django_assert_max_num_queries):
    this_week = monday(tenant.today())
    send(tenant, [track("ana", "Logged in", this_week)])
    assert _active_this_week(tenant) == 1

    send(tenant, [track("ben", "Logged in", this_week)])
    with django_assert_max_num_queries(1):  # only the freshness check: the SQL is not run again
        assert _active_this_week(tenant) == 1

    model = published(tenant)
    run = services.run_create(model=model, kind=RunKind.REFRESH, first_day=tenant.today(), last_day=tenant.today())
    services.run_in_foreground(run)
    assert _active_this_week(tenant) == 2


def test_arguments_are_part_of_the_key(cached, tenant):
    this_week = monday(tenant.today())
    send(tenant, [track("ana", "Logged in", this_week - timedelta(weeks=1))])
    weekly = growth_accounting(tenant, subject="users", measure="active", period="week")
    monthly = growth_accounting(tenant, subject="users", measure="active", period="month")
    assert weekly.period == "week" and monthly.period == "month"


def test_a_dead_cache_is_skipped(settings, tenant, caplog):
    settings.INSIGHTS_CACHE_SECONDS = 300
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    send(tenant, [track("ana", "Logged in", monday(tenant.today()))])
    assert _active_this_week(tenant) == 1
    assert "insight cache unavailable" in caplog.text
