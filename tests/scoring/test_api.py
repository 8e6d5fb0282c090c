"""The scoring read API: read key, filters, pagination, one error shape, isolation, schema."""

from datetime import timedelta

import pytest

from accounts.models import ApiKeyKind
from accounts.services import api_key_create
from scoring import engine, services
from tests.helpers import assert_error

from .conftest import add_counts, make_account, make_model, make_users

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(tenant, acts):
    account = make_account(tenant, "acme", "Acme Corp")
    users = make_users(tenant, *[f"u{i}" for i in range(5)], account=account)
    make_users(tenant, "idle")
    today = tenant.today()
    add_counts(
        tenant,
        [
            (u, acts["Logged in"], today - timedelta(days=d), 1 + i)
            for i, u in enumerate(users.values())
            for d in range(5)
        ],
    )
    model = make_model(tenant, {acts["Logged in"]: 2}, daily_cap=4)
    services.scoring_model_publish(model=model, backfill_days=1)
    for d in range(3):
        engine.compute_day(model, today - timedelta(days=d))
    return {"model": model, "users": users, "account": account}


@pytest.fixture
def api(client, tenant):
    _, plaintext = api_key_create(tenant=tenant, kind=ApiKeyKind.READ, name="reader")
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {plaintext}"
    return client


def test_users_list_is_paginated_and_ordered(api, scored):
    data = api.get("/api/v1/users", {"page_size": 2}).json()
    assert data["count"] == 6 and len(data["results"]) == 2 and data["next"]
    first = data["results"][0]
    # u3 and u4 tie at the cap (4 a day); ties keep a stable order.
    assert {r["userId"] for r in data["results"]} == {"u3", "u4"}
    assert first["points"] == 40 and first["groupId"] == "acme" and first["tier"] == "high"
    assert set(first) >= {"points", "breadth", "active_days", "percentile", "tier", "version", "day"}
    page2 = api.get(data["next"]).json()
    assert [r["userId"] for r in page2["results"]] == ["u2", "u1"]


def test_users_filters(api, scored):
    assert {r["userId"] for r in api.get("/api/v1/users", {"tier": "dormant"}).json()["results"]} == {"idle"}
    assert api.get("/api/v1/users", {"account": "acme"}).json()["count"] == 5
    ordered = api.get("/api/v1/users", {"order": "points"}).json()["results"]
    assert ordered[0]["userId"] == "idle"


def test_users_bad_input_has_the_error_shape(api, scored):
    assert_error(api.get("/api/v1/users", {"tier": "legendary"}), 400, "invalid", field="tier")
    assert_error(api.get("/api/v1/users", {"order": "name"}), 400, "invalid", field="order")
    assert_error(api.get("/api/v1/users", {"account": "nope"}), 404, "not_found", "No account")
    assert_error(api.get("/api/v1/users", {"page": 2}), 400, "invalid", "cursor", field="page")
    assert_error(api.get("/api/v1/users", {"cursor": "garbage"}), 404, "not_found", field="cursor")


def test_user_detail_has_latest_and_history(api, scored):
    data = api.get("/api/v1/users/u4").json()
    assert data["latest"]["userId"] == "u4"
    assert data["latest"]["points"] == 2 * 4 * 5  # 5 a day capped at 4, 5 days, 2 points
    assert [p["day"] for p in data["history"]] == sorted(p["day"] for p in data["history"])
    assert len(data["history"]) == 3 and data["history"][-1]["version"] == 1


def test_accounts(api, scored):
    data = api.get("/api/v1/accounts").json()
    assert data["count"] == 1 and data["results"][0]["groupId"] == "acme"
    assert data["results"][0]["active_users"] == 5 and data["results"][0]["seats"] == 5
    detail = api.get("/api/v1/accounts/acme").json()
    assert detail["latest"]["name"] == "Acme Corp" and len(detail["history"]) == 3
    assert_error(api.get("/api/v1/accounts", {"tier": "x"}), 400, "invalid", field="tier")
    assert_error(api.get("/api/v1/accounts/nope"), 404, "not_found")


def test_product_and_model(api, scored):
    series = api.get("/api/v1/product").json()["series"]
    assert len(series) == 3 and series[-1]["active_users"] == 5
    assert_error(api.get("/api/v1/product", {"days": 0}), 400, "invalid", field="days")
    model = api.get("/api/v1/model").json()
    assert model["version"] == 1 and model["points"] == {"Logged in": 2} and model["daily_cap"] == 4
    assert model["tier_rule"] == {"method": "percentile", "high": 80, "medium": 40}


def test_model_404_before_publishing(api, tenant):
    assert_error(api.get("/api/v1/model"), 404, "not_found", "No scoring model")


def test_it_needs_a_read_key(client, tenant, scored):
    assert_error(client.get("/api/v1/users"), 401, "not_authenticated")
    _, write_key = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="w")
    assert_error(client.get("/api/v1/users", HTTP_AUTHORIZATION=f"Bearer {write_key}"), 403, "permission_denied")


def test_another_tenants_ids_are_404(client, other_tenant, tenant, scored):
    _, plaintext = api_key_create(tenant=other_tenant, kind=ApiKeyKind.READ, name="globex")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}
    assert_error(client.get("/api/v1/users/u1", **auth), 404, "not_found")
    assert_error(client.get("/api/v1/accounts/acme", **auth), 404, "not_found")
    assert client.get("/api/v1/users", **auth).json()["count"] == 0
    assert_error(client.get("/api/v1/model", **auth), 404, "not_found")
    assert client.get("/api/v1/product", **auth).json()["series"] == []


def test_wrong_method(api, scored):
    assert api.post("/api/v1/users").status_code == 405


def test_the_schema_lists_the_endpoints(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in (
        "/api/v1/users",
        "/api/v1/users/{user_id}",
        "/api/v1/accounts",
        "/api/v1/accounts/{group_id}",
        "/api/v1/product",
        "/api/v1/model",
    ):
        assert path in schema


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/users?tier=", "tier"),
        ("/api/v1/users?account=", "account"),
        ("/api/v1/users?order=", "order"),
        ("/api/v1/users?page_size=", "page_size"),
        ("/api/v1/users?tier=high&tier=", "tier"),
        ("/api/v1/accounts?tier=", "tier"),
        ("/api/v1/accounts?order=", "order"),
        ("/api/v1/accounts?page_size=", "page_size"),
        ("/api/v1/product?days=", "days"),
    ],
)
def test_an_empty_query_parameter_is_a_400_naming_it(api, scored, path, field):
    response = api.get(path)
    assert_error(response, 400, "invalid", "may not be empty", field=field)


def test_the_schema_documents_the_error_statuses(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    errors = {"400", "401", "403", "404", "429"}
    for path, item in schema["paths"].items():
        if path.startswith("/api/v1/"):
            responses = item["get"]["responses"]
            assert set(responses) == {"200"} | errors, path
            assert responses["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            assert "Retry-After" in responses["429"]["headers"], path
    # One error body for the read API and the tracking API.
    batch = schema["paths"]["/v1/batch"]["post"]["responses"]
    assert batch["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert schema["components"]["schemas"]["Error"]["required"] == ["code", "message", "field"]
    assert "SegmentError" not in schema["components"]["schemas"]
    ids = [op["operationId"] for item in schema["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert {"users_list", "users_retrieve", "accounts_list", "accounts_retrieve", "product_retrieve",
            "model_retrieve", "tenant_retrieve", "tracking_batch"} <= set(ids)  # fmt: skip
