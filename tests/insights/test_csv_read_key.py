"""The insight CSVs take a read key as well as a login, tenant-scoped, with the same ?bom=1 as the score exports."""

import pytest
from django.urls import reverse

from accounts.models import ApiKeyKind
from accounts.services import api_key_create
from tests.helpers import assert_error

CSVS = [
    ("insights:growth_csv", {"subject": "users", "period": "week"}),
    ("insights:transitions_csv", {}),
    ("insights:adoption_csv", {}),
    ("insights:segments_csv", {}),
    ("insights:outcomes_csv", {"subject": "accounts"}),
    # The demo's 90 days hold no 30-day-retention report rows yet: its header only.
    ("insights:truth_csv", {"horizon": "30"}),
]
MIN_LINES = {"insights:truth_csv": 1}


def _body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize("name,query", CSVS)
def test_a_read_key_gets_what_a_member_gets(client, scored_world, db, name, query):
    tenant = scored_world["tenant"]
    path = reverse(name, args=[tenant.slug])
    key = api_key_create(tenant=tenant, kind=ApiKeyKind.READ, name="warehouse")[1]
    by_key = client.get(path, query, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert by_key.status_code == 200, by_key.content[:200]
    assert by_key["Content-Type"].startswith("text/csv")
    body = _body(by_key)
    assert body.count(b"\n") >= MIN_LINES.get(name, 2) and not body.startswith(b"\xef\xbb\xbf")
    excel = _body(client.get(path, {**query, "bom": "1"}, HTTP_AUTHORIZATION=f"Bearer {key}"))
    assert excel == b"\xef\xbb\xbf" + body
    client.force_login(scored_world["viewer"])
    assert _body(client.get(path, query)) == body
    client.logout()
    assert client.get(path, query).status_code == 302  # no key, no login: the login page


@pytest.mark.parametrize("name,query", CSVS)
def test_a_wrong_or_foreign_key_reads_nothing(client, scored_world, db, name, query):
    tenant, other = scored_world["tenant"], scored_world["other_tenant"]
    path = reverse(name, args=[tenant.slug])
    assert_error(client.get(path, query, HTTP_AUTHORIZATION="Bearer rk_nope"), 401, "not_authenticated")
    foreign = api_key_create(tenant=other, kind=ApiKeyKind.READ, name="theirs")[1]
    assert_error(client.get(path, query, HTTP_AUTHORIZATION=f"Bearer {foreign}"), 404, "not_found")
    write = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="web")[1]
    assert client.get(path, query, HTTP_AUTHORIZATION=f"Bearer {write}").status_code == 401
    # The key's own workspace's CSV at its own URL is still readable with it.
    theirs = client.get(reverse(name, args=[other.slug]), query, HTTP_AUTHORIZATION=f"Bearer {foreign}")
    assert theirs.status_code == 200


def test_the_insight_pages_still_need_a_login(client, scored_world, db):
    tenant = scored_world["tenant"]
    key = api_key_create(tenant=tenant, kind=ApiKeyKind.READ, name="warehouse")[1]
    page = reverse("insights:growth", args=[tenant.slug])
    assert client.get(page, HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 302
    assert client.post(reverse("insights:growth_csv", args=[tenant.slug]),
                       HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 403
