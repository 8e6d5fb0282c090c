"""Segment's analytics-node 3.1.0 (npm, node_modules) sends to a live server with only its host changed."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from accounts.models import ApiKeyKind
from accounts.services import api_key_create
from events.models import Activity, CustomerAccount, EndUser, Event
from tests.conftest import _missing, node_package

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = Path(__file__).with_name("analytics_node_client.js")


def run_client(live_server, write_key: str) -> dict:
    node = shutil.which("node")
    if node is None:
        _missing("node", "no `node` on PATH (install Node.js 20)")
    node_package("@segment/analytics-node", "3.1.0")
    done = subprocess.run([node, str(SCRIPT)], env={"HOST": live_server.url, "WRITE_KEY": write_key},
                          capture_output=True, text=True, timeout=60, cwd=SCRIPT.parent)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_analytics_node_calls_arrive_as_one_batch(live_server, tenant):
    key = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="backend")[1]
    result = run_client(live_server, key)
    assert result["errors"] == []
    assert result["requests"] == [{"url": f"{live_server.url}/v1/batch", "method": "POST", "count": 5}]

    events = Event.objects.for_tenant(tenant)
    assert sorted(events.values_list("type", flat=True)) == ["group", "identify", "page", "track", "track"]
    user = EndUser.objects.for_tenant(tenant).get(user_id="node-u1")
    assert user.traits == {"email": "nora@acme.test", "name": "Nora", "plan": "pro"}
    account = CustomerAccount.objects.for_tenant(tenant).get(group_id="acme-node")
    assert account.name == "Acme Node"
    assert user.account == account
    assert [m.account for m in user.memberships.filter(ended_at=None)] == [account]
    names = set(Activity.objects.for_tenant(tenant).values_list("name", flat=True))
    assert names == {"Added photo", "Viewed Docs Home Page", "Opened email"}
    photo = events.get(activity__name="Added photo")
    assert photo.end_user == user and photo.payload["properties"] == {"size": 3}
    assert photo.payload["context"]["library"]["name"] == "@segment/analytics-node"
    assert events.get(activity__name="Opened email").end_user.anonymous_id == "anon-node"


def test_analytics_node_with_a_wrong_key_reports_it_and_stores_nothing(live_server, tenant):
    result = run_client(live_server, "wk_wrongwrongwro_nope")
    assert result["errors"] and result["errors"][0]["code"] == "delivery_failure"
    assert "401" in result["errors"][0]["reason"]
    assert Event.objects.unscoped().count() == 0
