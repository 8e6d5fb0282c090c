"""Every id the tracking API stores is addressable in the read API, percent-encoded.

userId `org/42` used to be stored by /v1/track and then be Django's HTML 404 at
/api/v1/users/org%2F42. Django decodes the path before resolving it, so the
detail routes match the whole rest of the path, and any other path under
/api/v1/ is the API's JSON 404.
"""

import base64
import json
import urllib.error
import urllib.request
import uuid
from urllib.parse import quote

import pytest

from accounts.models import ApiKeyKind
from accounts.services import api_key_create
from events.models import CustomerAccount, EndUser

ODD_IDS = [
    "org/42",
    "a%2Fb",  # a literal percent sign: sent as a%252Fb
    "100%",
    "what?x=1",
    "tag#1",
    "two words",
    " padded ",
    "trailing/",
    "/leading",
    "a//b",
    "..",
    "../users",
    "users/u1/history",
    "line\nbreak",
    "tab\there",
    "üñí/cödé ✓",
    "日本語",
    "emoji 🎉",
    "plus+sign&amp;=",
    "back\\slash",
    "x" * 255,
]


def _basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


@pytest.fixture
def keys(tenant):
    return {
        "write": api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="w")[1],
        "read": api_key_create(tenant=tenant, kind=ApiKeyKind.READ, name="r")[1],
    }


def _ingest(client, write_key, ids):
    batch = []
    for i, value in enumerate(ids):
        batch.append({"type": "track", "userId": value, "event": "Logged in", "messageId": f"t{i}"})
        batch.append({"type": "group", "userId": value, "groupId": value, "messageId": f"g{i}"})
    response = client.post(
        "/v1/batch", json.dumps({"batch": batch}), content_type="application/json", HTTP_AUTHORIZATION=_basic(write_key)
    )
    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_every_stored_id_round_trips_through_the_read_api(client, tenant, keys):
    _ingest(client, keys["write"], ODD_IDS)
    assert set(EndUser.objects.for_tenant(tenant).values_list("user_id", flat=True)) == set(ODD_IDS)
    assert set(CustomerAccount.objects.for_tenant(tenant).values_list("group_id", flat=True)) == set(ODD_IDS)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {keys['read']}"}
    for value in ODD_IDS:
        encoded = quote(value, safe="")
        user = client.get(f"/api/v1/users/{encoded}", **auth)
        assert user.status_code == 200, (value, user.content)
        assert user.json() == {"latest": None, "history": []}  # known, not scored yet
        account = client.get(f"/api/v1/accounts/{encoded}", **auth)
        assert account.status_code == 200, (value, account.content)
        # The list filter takes the same ids.
        listed = client.get("/api/v1/users", {"account": value}, **auth)
        assert listed.status_code == 200, (value, listed.content)


@pytest.mark.django_db
def test_an_id_is_matched_exactly(client, tenant, keys):
    _ingest(client, keys["write"], ["org/42"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {keys['read']}"}
    assert client.get("/api/v1/users/org%2F42", **auth).status_code == 200
    # "/" unencoded reaches the same id (the path is decoded before resolving either way).
    assert client.get("/api/v1/users/org/42", **auth).status_code == 200
    for other in ("org", "org%2F42%2F", "org%2F4", "ORG%2F42", "org%2F42%20"):
        response = client.get(f"/api/v1/users/{other}", **auth)
        assert response.status_code == 404, other
        assert response.json()["code"] == "not_found"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/users/nobody",
        "/api/v1/users/",
        "/api/v1/users/%00",
        "/api/v1/users/" + "y" * 256,
        "/api/v1/accounts/nobody",
        "/api/v1/accounts/",
        "/api/v1/accounts/a%00b",
        "/api/v1/nothing-here",
        "/api/v1/users/u1/history",
        "/api/v1/",
        "/api/v1/tenant/",
    ],
)
def test_unknown_ids_and_paths_are_the_json_404(client, tenant, keys, path):
    response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {keys['read']}")
    assert response.status_code == 404, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()
    assert error["code"] == "not_found" and error["message"]


@pytest.mark.django_db
def test_a_detail_route_still_needs_a_read_key(client, tenant, keys):
    _ingest(client, keys["write"], ["org/42"])
    response = client.get("/api/v1/users/org%2F42")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"


@pytest.mark.django_db(transaction=True)
def test_ids_round_trip_over_real_http(live_server, tenant, keys):
    """The same through a real WSGI server, which decodes the path itself (as gunicorn does)."""
    ids = ["org/42", "100%", "what?x=1", "tag#1", "two words", "trailing/", "üñí/cödé ✓"]
    batch = [{"type": "track", "userId": v, "event": "Logged in", "messageId": str(uuid.uuid4())} for v in ids]
    request = urllib.request.Request(
        live_server.url + "/v1/batch",
        data=json.dumps({"batch": batch}).encode(),
        headers={"Content-Type": "application/json", "Authorization": _basic(keys["write"])},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    for value in ids + ["nobody/here"]:
        request = urllib.request.Request(
            f"{live_server.url}/api/v1/users/{quote(value, safe='')}",
            headers={"Authorization": f"Bearer {keys['read']}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, body = response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            status, body = exc.code, json.load(exc)
        if value == "nobody/here":
            assert status == 404 and body["code"] == "not_found"
        else:
            assert status == 200 and body == {"latest": None, "history": []}, value
