"""Every CSV the site writes is formula-safe (OWASP CSV injection).

The write key is public, so a visitor of a customer's site chooses user ids,
traits, account names and event names. The sweep asks the resolver for every
CSV URL, fills the world with hostile values and opens each export as a
spreadsheet would: no text cell may start with = + - @, a tab or a CR.
"""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.urls import reverse

from accounts.models import Role
from core.csv_export import csv_rows, safe_cell
from events.models import Activity
from scoring import services as scoring_services
from tests.insights.helpers import group, identify, send, track
from tests.isolation_ids import extra_ids
from tests.test_tenant_isolation import url_for, walk

HOSTILE_USER = '=HYPERLINK("http://evil.example","x")'
HOSTILE_EVENT = "+cmd|' /C calc'!A0"
HOSTILE_ACCOUNT = "@SUM(1+1)*cmd"
HOSTILE_TRAIT = "-2+3+cmd|' /C calc'!A0"
TAB_TRAIT = "\tlooks-empty"
FORMULA = re.compile(r"^[=+\-@\t\r]")
NUMBER = re.compile(r"^-?\d+(\.\d+)?(e-?\d+)?$")


def csv_routes():
    routes = [(name, p) for route, name, p in walk(__import__("django.urls").urls.get_resolver().url_patterns)
              if route.endswith(".csv")]
    return routes


def test_the_sweep_finds_every_export():
    names = {name for name, _ in csv_routes()}
    assert {"scoring:users_csv", "scoring:accounts_csv", "scoring:preview_changes_csv", "insights:adoption_csv",
            "insights:segments_csv", "surveys:results_csv"} <= names


def test_safe_cell_escapes_text_only():
    assert [safe_cell(v) for v in ["=1", "+1", "-1", "@a", "\tx", "\rx", "a=1", -3, -2.5, None, ""]] == [
        "'=1", "'+1", "'-1", "'@a", "'\tx", "'\rx", "a=1", -3, -2.5, "", ""]
    assert "".join(csv_rows(["-h"], [["=x", -1]])) == "'-h\r\n'=x,-1\r\n"


@pytest.fixture
def hostile_world(tenant, owner, django_capture_on_commit_callbacks):
    from engagement_site.celery import app

    today = tenant.today()
    raws = []
    for back in range(1, 40):
        day = today - timedelta(days=back)
        raws.append(track(HOSTILE_USER, HOSTILE_EVENT, day, group_id=HOSTILE_ACCOUNT))
        raws.append(track("plain-user", "Logged in", day))
    raws += [identify(HOSTILE_USER, today - timedelta(days=30), email=HOSTILE_TRAIT, plan=HOSTILE_TRAIT,
                      name=TAB_TRAIT),
             group(HOSTILE_USER, HOSTILE_ACCOUNT, today - timedelta(days=30), name=HOSTILE_ACCOUNT, plan=HOSTILE_TRAIT)]
    send(tenant, raws)
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        model = scoring_services.scoring_model_create_draft(tenant=tenant)
        points = {a.pk: 10 for a in Activity.objects.for_tenant(tenant)}
        scoring_services.scoring_model_update(model=model, points=points)
        with django_capture_on_commit_callbacks(execute=True):
            scoring_services.scoring_model_publish(model=model, published_by=owner, backfill_days=40)
    finally:
        app.conf.task_always_eager = eager
    # A draft for the preview's tier changes, with the hostile event weighted differently.
    draft = scoring_services.scoring_model_create_draft(tenant=tenant)
    scoring_services.scoring_model_update(model=draft, points={a.pk: 50 for a in Activity.objects.for_tenant(tenant)})
    ids = extra_ids(tenant)
    ids["model_id"] = draft.public_id
    return ids


QUERIES = {
    "insights:segments_csv": ["", "?dimension=plan", "?subject=accounts&dimension=plan"],
    "insights:outcomes_csv": ["", "?subject=accounts"],
    "insights:growth_csv": ["", "?subject=accounts"],
    "insights:adoption_csv": ["", "?subject=accounts"],
    # Every cell of the matrix, so the hostile user and account are in one of them.
    "insights:transition_members_csv": [f"?subject={subject}&tier_from={a}&tier_to={b}"
                                        for subject in ("users", "accounts")
                                        for a in ("high", "medium", "low", "new", "dormant", "not%20seen%20yet")
                                        for b in ("high", "medium", "low", "new", "dormant")],
}


def test_every_csv_export_is_formula_safe(client, tenant, owner, hostile_world):
    client.force_login(owner)
    seen_hostile = set()
    for name, pattern in csv_routes():
        for query in QUERIES.get(name, [""]):
            url = url_for(name, pattern, tenant, hostile_world) + query
            response = client.get(url)
            assert response.status_code == 200, f"{url} gave {response.status_code}"
            assert response["Content-Type"].startswith("text/csv")
            text = response.getvalue().decode()
            for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
                for cell in row:
                    assert not (FORMULA.match(cell) and not NUMBER.match(cell)), f"{url} line {line}: {cell!r}"
                    if cell.startswith("'") and any(h in cell for h in (HOSTILE_USER, HOSTILE_EVENT,
                                                                         HOSTILE_ACCOUNT, HOSTILE_TRAIT)):
                        seen_hostile.add(name)
    # The hostile values really reached the exports that list them, escaped.
    assert {"scoring:users_csv", "scoring:accounts_csv", "insights:adoption_csv",
            "insights:segments_csv", "insights:transition_members_csv"} <= seen_hostile, seen_hostile


def test_a_viewer_reads_the_escaped_users_csv(client, tenant, viewer, hostile_world):
    client.force_login(viewer)
    text = client.get(reverse("scoring:users_csv", args=[tenant.slug])).getvalue().decode()
    row = next(r for r in csv.DictReader(io.StringIO(text)) if HOSTILE_USER in r["user_id"])
    assert row["user_id"] == "'" + HOSTILE_USER
    assert Role.VIEWER  # viewers may export: the escape protects the reader, not the writer
