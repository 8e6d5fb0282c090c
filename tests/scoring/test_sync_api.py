"""The read API for sync jobs: cursors stable under inserts, day / updated_since, unscored users, CSV by key."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from accounts.models import ApiKeyKind
from accounts.services import api_key_create
from events.models import EndUser
from scoring import engine, services
from tests.helpers import assert_error

from .conftest import add_counts, join, make_account, make_model, make_users

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tenant, acts):
    acme, globex = make_account(tenant, "acme"), make_account(tenant, "globex")
    users = make_users(tenant, *[f"u{i:02}" for i in range(23)], account=acme)
    join(globex, users["u00"], users["u01"])
    users["u00"].traits = {"email": "ann@acme.test", "plan": "pro"}
    users["u00"].save()
    today = tenant.today()
    # Several users tie on points: keyset pages must order ties by the end user.
    add_counts(tenant, [(u, acts["Logged in"], today - timedelta(days=d), 1 + i % 4)
                        for i, u in enumerate(users.values()) for d in range(3)])  # fmt: skip
    model = make_model(tenant, {acts["Logged in"]: 2})
    services.scoring_model_publish(model=model, backfill_days=1)
    for d in range(3):
        engine.compute_day(model, today - timedelta(days=d))
    return {"model": model, "users": users, "today": today, "acts": acts}


@pytest.fixture
def api(client, read_key):
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {read_key}"
    return client


def _all_pages(api, path, params, between=None):
    seen, url, pages = [], path, 0
    response = api.get(url, params)
    while True:
        body = response.json()
        assert response.status_code == 200, body
        seen += body["results"]
        pages += 1
        if not body["next"]:
            return seen, pages
        assert pages < 50, "the cursor does not move"
        if between:
            between(pages)
        response = api.get(body["next"])


@pytest.mark.parametrize("order", ["-points", "points", "percentile", "-active_days"])
def test_cursor_paging_over_inserts_loses_and_repeats_nothing(api, tenant, world, order):
    before = {r["userId"] for r in api.get("/api/v1/users", {"page_size": 500}).json()["results"]}
    assert len(before) == 23
    model, today, acts = world["model"], world["today"], world["acts"]

    def insert(page):
        # New end users, their activity, the same day recomputed (fresh snapshot row ids) and a
        # newer day scored: the listing neither shifts nor switches day.
        fresh = make_users(tenant, f"new{page}a", f"new{page}b")
        add_counts(tenant, [(u, acts["Logged in"], today, 9) for u in fresh.values()])
        engine.compute_day(model, today)
        engine.compute_day(model, today + timedelta(days=page))

    rows, pages = _all_pages(api, "/api/v1/users", {"page_size": 4, "order": order}, between=insert)
    ids = [r["userId"] for r in rows]
    assert pages >= 6
    assert len(ids) == len(set(ids)), "a row came twice"
    assert before <= set(ids), f"lost: {before - set(ids)}"
    assert {r["day"] for r in rows} == {today.isoformat()}


def test_unscored_users_come_after_the_scored_ones_when_asked(api, tenant, world):
    EndUser.objects.create(tenant=tenant, user_id="zed", traits={"email": "zed@new.test"})
    listed = api.get("/api/v1/users", {"page_size": 500}).json()
    assert "zed" not in {r["userId"] for r in listed["results"]}
    rows, _ = _all_pages(api, "/api/v1/users", {"page_size": 5, "include_unscored": "true"})
    assert len(rows) == 24 and rows[-1]["userId"] == "zed"
    assert rows[-1]["email"] == "zed@new.test"
    assert all(rows[-1][k] is None for k in ("points", "tier", "day", "version", "percentile"))
    # A tier filter names scored rows only.
    tiered = api.get("/api/v1/users", {"tier": "high", "include_unscored": "true", "page_size": 500}).json()
    assert "zed" not in {r["userId"] for r in tiered["results"]}


def test_user_rows_carry_traits_email_and_every_account(api, world):
    rows = {r["userId"]: r for r in api.get("/api/v1/users", {"page_size": 500}).json()["results"]}
    assert rows["u00"]["email"] == "ann@acme.test" and rows["u00"]["traits"]["plan"] == "pro"
    assert rows["u00"]["groupIds"] == ["acme", "globex"] and rows["u02"]["groupIds"] == ["acme"]
    members = api.get("/api/v1/users", {"account": "globex", "page_size": 500}).json()
    assert {r["userId"] for r in members["results"]} == {"u00", "u01"}
    account = api.get("/api/v1/accounts", {"page_size": 500}).json()["results"]
    assert {a["groupId"]: a["seats"] for a in account} == {"acme": 23, "globex": 2}
    assert set(account[0]) >= {"traits", "updated_at", "first_seen_at"}


def test_day_lists_an_older_day_and_an_unscored_day_is_a_404(api, world):
    yesterday = (world["today"] - timedelta(days=1)).isoformat()
    body = api.get("/api/v1/accounts", {"day": yesterday}).json()
    assert {r["day"] for r in body["results"]} == {yesterday}
    assert_error(api.get("/api/v1/users", {"day": "2001-01-01"}), 404, "not_found", "day")
    assert_error(api.get("/api/v1/users", {"day": "yesterday"}), 400, "invalid", field="day")


def test_updated_since_lists_changed_rows_only(api, tenant, world):
    today = world["today"]
    # Each user did the same on the last three days, so today's snapshot equals yesterday's
    # except for the window's extra day: all changed against two days ago's snapshot...
    since = timezone.now()
    changed = api.get("/api/v1/users", {"updated_since": since.isoformat(), "page_size": 500}).json()
    # ...compared with the day before `since`'s day (yesterday): points grew by one day.
    assert changed["count"] == 23
    # A recompute that changes nothing, then only u05's traits change: only u05 is listed.
    world["model"].refresh_from_db()
    later = timezone.now() + timedelta(days=1)
    engine.compute_day(world["model"], today + timedelta(days=1))
    engine.compute_day(world["model"], today + timedelta(days=2))
    assert_error(api.get("/api/v1/users", {"updated_since": "soon"}), 400, "invalid", field="updated_since")
    body = api.get("/api/v1/users", {"updated_since": (later + timedelta(days=1)).isoformat(), "day":
                                     (today + timedelta(days=2)).isoformat(), "page_size": 500}).json()  # fmt: skip
    # Two days after the last activity the window still holds it all: no snapshot changed
    # between +1 and +2 except percentiles, which stay equal too.
    assert body["count"] == 0
    u05 = world["users"]["u05"]
    u05.traits, u05.updated_at = {"plan": "enterprise"}, later + timedelta(days=2)
    u05.save()
    body = api.get("/api/v1/users", {"updated_since": (later + timedelta(days=1)).isoformat(), "day":
                                     (today + timedelta(days=2)).isoformat(), "page_size": 500}).json()  # fmt: skip
    assert [r["userId"] for r in body["results"]] == ["u05"]


def test_a_cursor_with_other_filters_is_refused(api, world):
    first = api.get("/api/v1/users", {"page_size": 2}).json()
    cursor = parse_qs(urlsplit(first["next"]).query)["cursor"][0]
    assert_error(api.get("/api/v1/users", {"page_size": 2, "tier": "high", "cursor": cursor}), 404, "not_found",
                 "other filters", field="cursor")  # fmt: skip


def test_histories_follow_one_rule(api, tenant, world):
    late = make_users(tenant, "late", first_seen_at=timezone.now() - timedelta(hours=1))["late"]
    join(make_account(tenant, "late-co"), late, at=timezone.now() - timedelta(hours=1))
    engine.compute_day(world["model"], world["today"])
    user = api.get("/api/v1/users/u03").json()
    account = api.get("/api/v1/accounts/acme").json()
    assert len(user["history"]) == len(account["history"]) == 3
    assert len(api.get("/api/v1/users/u03", {"days": 2}).json()["history"]) == 2
    # A user first seen today and its new account: one point each, from the day first seen.
    assert len(api.get("/api/v1/users/late").json()["history"]) == 1
    assert len(api.get("/api/v1/accounts/late-co").json()["history"]) == 1


# --- CSV exports with a read key --------------------------------------------------------------


def test_csv_exports_take_a_read_key_and_a_bom(client, tenant, world, read_key):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {read_key}"}
    for name in ("users", "accounts", "product"):
        path = f"/t/{tenant.slug}/scoring/{name}.csv"
        plain = client.get(path, **auth)
        assert plain.status_code == 200 and plain["Content-Type"].startswith("text/csv"), name
        body = b"".join(plain.streaming_content)
        assert not body.startswith(b"\xef\xbb\xbf")
        excel = b"".join(client.get(path, {"bom": "1"}, **auth).streaming_content)
        assert excel == b"\xef\xbb\xbf" + body, name
    assert client.get(f"/t/{tenant.slug}/scoring/users.csv", {"bom": "yes"}, **auth).status_code == 400
    # Without a key it is the login page, as before.
    assert client.get(f"/t/{tenant.slug}/scoring/users.csv").status_code == 302


def test_csv_with_a_bad_or_foreign_key(client, tenant, other_tenant, world):
    path = f"/t/{tenant.slug}/scoring/users.csv"
    assert_error(client.get(path, HTTP_AUTHORIZATION="Bearer rk_nope"), 401, "not_authenticated")
    foreign = api_key_create(tenant=other_tenant, kind=ApiKeyKind.READ, name="x")[1]
    assert_error(client.get(path, HTTP_AUTHORIZATION=f"Bearer {foreign}"), 404, "not_found")
    write = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="w")[1]
    assert client.get(path, HTTP_AUTHORIZATION=f"Bearer {write}").status_code == 401
    # Pages other than the exports still need a login.
    own = api_key_create(tenant=tenant, kind=ApiKeyKind.READ, name="y")[1]
    assert client.get(f"/t/{tenant.slug}/scoring/users/", HTTP_AUTHORIZATION=f"Bearer {own}").status_code == 302


def test_the_read_api_answers_429_with_retry_after(api, world, settings):
    settings.READ_API_RATE_LIMIT_PER_MINUTE = 2
    api.get("/api/v1/tenant")
    api.get("/api/v1/tenant")
    response = api.get("/api/v1/tenant")
    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) >= 1
