"""Each insight page: it works, it checks the tenant, its queries are bounded, and a new tenant sees an empty state."""

import csv
import io

import pytest
from django.urls import reverse

from accounts.models import ApiKeyKind
from accounts.services import api_key_create
from events.models import CustomerAccount, EndUser

pytestmark = pytest.mark.django_db

PAGES = [
    ("tenant_home", {}),
    ("insights:onboarding", {}),
    ("insights:growth", {}),
    ("insights:growth", {"subject": "accounts", "period": "month"}),
    ("insights:transitions", {}),
    ("insights:transitions", {"subject": "accounts"}),
    ("insights:transition_members", {"tier_from": "medium", "tier_to": "high"}),
    ("insights:transition_members", {"subject": "accounts", "tier_from": "not seen yet", "tier_to": "new"}),
    ("insights:adoption", {}),
    ("insights:adoption", {"window": "7"}),
    ("insights:segments", {}),
    ("insights:segments", {"subject": "accounts", "dimension": "cohort"}),
    ("insights:outcomes", {}),
    ("insights:outcomes", {"subject": "accounts"}),
]
FILES = [
    ("insights:growth_csv", {}, "text/csv"),
    ("insights:transitions_csv", {}, "text/csv"),
    ("insights:transition_members_csv", {"tier_from": "high", "tier_to": "high"}, "text/csv"),
    ("insights:adoption_csv", {}, "text/csv"),
    ("insights:segments_csv", {}, "text/csv"),
    ("insights:outcomes_csv", {"subject": "accounts"}, "text/csv"),
    ("insights:onboarding_status", {}, "application/json"),
]
# Queries per page, including the session, the user and the membership lookups (the outcomes page
# reads its headline's stored row, insights/verdicts.py: it never runs the backtest; the dashboard's
# two movers and the accounts at risk each check once that the day's snapshots carry their stored columns).
MAX_QUERIES = 19


def url(name, tenant, **query):
    base = reverse(name, args=[tenant.slug])
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


@pytest.mark.parametrize("name,query", PAGES)
def test_it_works_with_bounded_queries(client, scored_tenant, scored_viewer, name, query,
                                       django_assert_max_num_queries):
    client.force_login(scored_viewer)
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(url(name, scored_tenant, **query))
    assert response.status_code == 200
    # A chart drawn by static/js/charts.js from its spec (json_script), no image to load.
    assert b"data-chart=" in response.content or name in (
        "insights:onboarding", "insights:transitions", "insights:transition_members")
    assert b"<table" in response.content or name == "insights:onboarding"


@pytest.mark.parametrize("name,query,content_type", FILES)
def test_charts_and_csv(client, scored_tenant, scored_viewer, name, query, content_type,
                        django_assert_max_num_queries):
    client.force_login(scored_viewer)
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(url(name, scored_tenant, **query))
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert len(response.getvalue()) > 10


def test_dashboard_shows_the_context(client, scored_tenant, scored_viewer):
    client.force_login(scored_viewer)
    response = client.get(reverse("tenant_home", args=[scored_tenant.slug]))
    text = response.content.decode()
    for heading in ("Product score over time", "Active and engaged users", "Tiers today and 30 days earlier",
                    "Biggest risers and fallers", "Accounts at risk", "Power users", "Last scoring run"):
        assert heading in text
    assert "Succeeded" in text
    assert "style=" not in text  # the CSP forbids inline styles


@pytest.mark.parametrize("name,query", PAGES + [(n, q) for n, q, _ in FILES])
def test_it_checks_the_tenant(client, scored_tenant, outsider, other_tenant, name, query):
    client.force_login(outsider)
    assert client.get(url(name, scored_tenant, **query)).status_code == 404


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# What a new workspace's member reads on each page instead of numbers.
EMPTY_STATE = {
    "tenant_home": "No engagement scores yet.",
    "insights:onboarding": "Get started",
    "insights:growth": "Nothing to count yet: no events in these",
    "insights:transitions": "No scores yet.",
    "insights:transition_members": "No scores yet.",
    "insights:adoption": "No activities in the catalog yet.",
    "insights:segments": "No scores yet.",
    "insights:outcomes": "No scores yet.",
}


@pytest.mark.parametrize("name,query", PAGES + [(n, q) for n, q, _ in FILES])
def test_a_new_tenant_sees_an_empty_state(client, tenant, owner, name, query, django_assert_max_num_queries):
    client.force_login(owner)
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(url(name, tenant, **query))
    assert response.status_code == 200
    body = (b"".join(response.streaming_content) if response.streaming else response.content).decode()
    kind = response["Content-Type"].split(";")[0]
    if kind == "text/html":
        assert EMPTY_STATE[name] in body
    elif kind == "text/csv":
        # The header, and rows (if any, e.g. one per week) that count nothing.
        rows = list(csv.DictReader(io.StringIO(body)))
        assert body.splitlines()[0]
        counts = [v for row in rows for k, v in row.items() if k not in ("window_days", "points") and _number(v)]
        assert all(float(v) == 0 for v in counts), rows
    else:
        assert response.json()["complete"] is False and not any(response.json()["steps"].values())


def test_dashboard_of_a_new_tenant_shows_the_checklist(client, tenant, owner):
    client.force_login(owner)
    text = client.get(reverse("tenant_home", args=[tenant.slug])).content.decode()
    assert "Get started" in text and "No engagement scores yet" in text
    assert "Next step:" in text


@pytest.mark.parametrize("name", ["insights:growth", "insights:adoption", "insights:segments", "insights:outcomes",
                                  "insights:transitions", "insights:transition_members"])
def test_it_rejects_bad_input(client, tenant, owner, name):
    client.force_login(owner)
    bad = {"insights:growth": "period=decade", "insights:adoption": "window=3",
           "insights:segments": "dimension=nope", "insights:outcomes": "day=yesterday",
           "insights:transitions": "day_from=2026-02-01&day_to=2026-01-01",
           "insights:transition_members": "tier_from=gold&tier_to=high"}[name]
    response = client.get(reverse(name, args=[tenant.slug]) + "?" + bad)
    assert response.status_code == 400
    assert b'role="alert"' in response.content


def test_csv_rejects_bad_input(client, tenant, owner):
    client.force_login(owner)
    response = client.get(url("insights:growth_csv", tenant, period="decade"))
    assert response.status_code == 400 and b"period" in response.content


@pytest.mark.parametrize("name", ["insights:growth", "insights:adoption", "tenant_home"])
def test_it_rejects_the_wrong_method(client, tenant, owner, name):
    client.force_login(owner)
    assert client.post(reverse(name, args=[tenant.slug])).status_code == 405


def test_dashboard_links_users_and_accounts(client, scored_tenant, scored_viewer):
    client.force_login(scored_viewer)
    text = client.get(reverse("tenant_home", args=[scored_tenant.slug])).content.decode()
    some_user = EndUser.objects.filter(tenant=scored_tenant).first()
    assert "/scoring/users/" in text and "/scoring/accounts/" in text
    assert some_user is not None and CustomerAccount.objects.filter(tenant=scored_tenant).exists()


def test_checklist_hides_and_reopens(client, tenant, owner):
    client.force_login(owner)
    home = reverse("tenant_home", args=[tenant.slug])
    assert "Get started" in client.get(home).content.decode()
    response = client.post(url("insights:onboarding", tenant), {"action": "hide"})
    assert response.status_code == 302 and response["Location"] == home
    text = client.get(home).content.decode()
    assert "Get started" not in text and "Show the setup checklist" in text
    client.post(url("insights:onboarding", tenant), {"action": "show"})
    assert "Get started" in client.get(home).content.decode()


def test_complete_checklist_hides_itself_and_can_be_reopened(client, scored_tenant, scored_owner):
    api_key_create(tenant=scored_tenant, kind=ApiKeyKind.WRITE, name="web")
    from tests.surveys import factories

    factories.answer(factories.survey(scored_tenant))
    client.force_login(scored_owner)
    home = reverse("tenant_home", args=[scored_tenant.slug])
    assert "Get started" not in client.get(home).content.decode()
    client.post(url("insights:onboarding", scored_tenant), {"action": "show"})
    text = client.get(home).content.decode()
    assert "Get started" in text and "All set" in text


def test_an_insight_view_without_a_hook_is_refused_when_urls_load():
    from insights.views.base import InsightView

    class PageOnly(InsightView):
        def context(self, request, form, data):
            return {}

    assert len(PageOnly.views("page")) == 1
    with pytest.raises(TypeError, match="PageOnly serves 'csv' but does not define csv()"):
        PageOnly.views("page", "csv")


def test_a_matrix_cell_opens_the_people_who_made_that_move(client, scored_tenant, scored_viewer):
    import html
    import re

    client.force_login(scored_viewer)
    page = client.get(url("insights:transitions", scored_tenant)).content.decode()
    cells = re.findall(r'<a href="([^"]*/transitions/moved/\?[^"]*)" title="List the ([\d,]+) who', page)
    assert cells, "no cell links to its people"
    table = client.get(url("insights:transitions", scored_tenant)).context["table"]
    assert len(cells) == sum(1 for row in table for n in row["cells"] if n)  # every non-empty cell, no other
    link, count = cells[0]
    response = client.get(html.unescape(link))
    assert response.status_code == 200
    result = response.context["result"]
    assert result.total == int(count.replace(",", "")) == len(result.rows) or result.more
    csv_link = re.search(r'href="([^"]*/transitions/moved\.csv\?[^"]*)"', response.content.decode()).group(1)
    body = b"".join(client.get(html.unescape(csv_link)).streaming_content).decode()
    assert len(body.splitlines()) == 1 + result.total
