"""The official segment-analytics-python client sends to our server unchanged."""

import pytest
import segment.analytics as segment_analytics
from segment.analytics import request as segment_request
from segment.analytics.client import Client
from segment.analytics.request import APIError

from events.models import Activity, CustomerAccount, DailyActivityCount, EndUser, Event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def close_client_connections():
    yield
    # The client keeps a module-level keep-alive session; close it before the live server stops.
    segment_request._session.close()


def make_client(live_server, key, **options):
    errors = []
    client = Client(
        write_key=key,
        host=live_server.url,
        sync_mode=True,
        max_retries=0,
        on_error=lambda error, batch: errors.append(error),
        **options,
    )
    return client, errors


@pytest.mark.parametrize("use_gzip", [False, True], ids=["plain", "gzip"])
def test_official_client_calls_arrive(live_server, tenant, write_key, use_gzip):
    client, errors = make_client(live_server, write_key, gzip=use_gzip)
    client.identify("u-1", {"email": "ann@example.com", "name": "Ann"})
    client.group("u-1", "acct-1", {"name": "Acme Photo", "plan": "paid"})
    client.track("u-1", "Added photo", {"size": 3})
    client.track("u-1", "Added photo", {"size": 4})
    client.page("u-1", "Docs", "Pricing")
    client.screen("u-1", "App", "Feed")
    client.track(anonymous_id="anon-1", event="Opened email")
    client.alias("anon-1", "u-1")
    client.flush()
    assert errors == []

    user = EndUser.objects.for_tenant(tenant).get(user_id="u-1")
    assert user.traits["email"] == "ann@example.com"
    assert user.account == CustomerAccount.objects.for_tenant(tenant).get(group_id="acct-1")
    assert Event.objects.for_tenant(tenant).count() == 8
    assert EndUser.objects.for_tenant(tenant).count() == 1  # the alias merged the anonymous visitor
    names = set(Activity.objects.for_tenant(tenant).values_list("name", flat=True))
    assert names == {"Added photo", "Viewed Docs Pricing Page", "Viewed Feed Screen", "Opened email"}
    counts = dict(DailyActivityCount.objects.for_tenant(tenant).values_list("activity__name", "count"))
    assert counts["Added photo"] == 2
    assert counts["Opened email"] == 1
    payload = Event.objects.for_tenant(tenant).filter(activity__name="Added photo").first().payload
    assert payload["context"]["library"]["name"] == "analytics-python"


def test_official_client_with_wrong_key_gets_an_error(live_server, tenant):
    client, _errors = make_client(live_server, "wk_wrongwrongwro_nope")
    # In sync mode the client raises the server's error, read from our {"code", "message"} body.
    with pytest.raises(APIError) as caught:
        client.track("u-1", "Added photo")
    assert caught.value.status == 401
    assert caught.value.code == "unauthorized"
    assert Event.objects.unscoped().count() == 0


def test_module_level_api_with_batching(live_server, tenant, write_key):
    """The way most apps use it: module-level config, background thread, batches of many messages."""
    segment_analytics.write_key = write_key
    segment_analytics.host = live_server.url
    segment_analytics.max_retries = 0
    try:
        for i in range(250):
            segment_analytics.track(f"user-{i % 25}", "Shared photo", {"i": i})
        segment_analytics.flush()
    finally:
        segment_analytics.shutdown()
        segment_analytics.default_client = None
    assert Event.objects.for_tenant(tenant).count() == 250
    total = sum(DailyActivityCount.objects.for_tenant(tenant).values_list("count", flat=True))
    assert total == 250
