"""Scoring pages: each works, checks the tenant (404) and the role (403), rejects bad input."""

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from scoring import engine, services
from scoring.models import ActivityWeight, ModelStatus, RunKind, ScoringModel, ScoringRun
from tests.helpers import chart_spec

from .conftest import add_counts, make_account, make_model, make_users

pytestmark = pytest.mark.django_db


def url(name, tenant, *args):
    return reverse(f"scoring:{name}", args=[tenant.slug, *args])


@pytest.fixture
def scored(tenant, acts):
    """A published model with three days of snapshots."""
    account = make_account(tenant, "acme", "Acme Corp")
    users = make_users(tenant, *[f"u{i}" for i in range(6)], account=account)
    today = tenant.today()
    add_counts(
        tenant,
        [
            (u, act, today - timedelta(days=d), 1 + i)
            for i, u in enumerate(users.values())
            for d in range(10)
            for act in (acts["Logged in"], acts["Shared photo"])
            if (i + d) % 3
        ],
    )
    model = make_model(tenant, {acts["Logged in"]: 1, acts["Shared photo"]: 10})
    services.scoring_model_publish(model=model, backfill_days=1)
    model.refresh_from_db()
    for d in range(3):
        engine.compute_day(model, today - timedelta(days=d))
    return {"model": model, "users": users, "account": account}


def login(client, user):
    client.force_login(user)
    return client


class TestOverview:
    def test_it_works(self, client, viewer, tenant, scored):
        r = login(client, viewer).get(url("overview", tenant))
        assert r.status_code == 200
        assert b"Product score" in r.content
        chart = chart_spec(r, "chart-product")
        assert chart["labels"] and len(chart["labels"]) == len(chart["series"][0]["values"])
        assert chart["series"][0]["values"][-1] == r.context["latest"].mean_points

    def test_it_works_without_a_model(self, client, viewer, tenant):
        r = login(client, viewer).get(url("overview", tenant))
        assert r.status_code == 200 and b"No scoring model is published yet" in r.content

    def test_the_chart_is_data_not_script(self, client, viewer, tenant, scored):
        r = login(client, viewer).get(url("overview", tenant))
        html = r.content.decode()
        # The spec is JSON (json_script); the only scripts are the two static files, so the CSP holds.
        assert '<script id="chart-product" type="application/json">' in html
        assert "<script>" not in html and "onclick" not in html
        assert "unsafe-inline" not in r["Content-Security-Policy"]

    def test_product_csv(self, client, viewer, tenant, scored):
        r = login(client, viewer).get(url("product_csv", tenant))
        body = b"".join(r.streaming_content).decode()
        assert body.splitlines()[0].startswith("day,version,total_points")
        assert len(body.splitlines()) == 4

    def test_it_checks_the_tenant(self, client, outsider, other_tenant, tenant, scored):
        assert login(client, outsider).get(url("overview", tenant)).status_code == 404

    def test_query_count_is_bounded(self, client, viewer, tenant, scored, django_assert_max_num_queries):
        login(client, viewer)
        with django_assert_max_num_queries(12):
            client.get(url("overview", tenant))


class TestModelEditor:
    def test_editor_creates_and_edits_a_draft(self, client, editor, tenant, acts):
        login(client, editor)
        r = client.post(url("models", tenant))
        draft = ScoringModel.objects.get(tenant=tenant)
        assert r.status_code == 302 and draft.status == ModelStatus.DRAFT
        form = {
            "name": "First",
            "window_days": 14,
            "daily_cap": 5,
            "half_life_days": "",
            "tier_method": "percentile",
            "tier_high": 75,
            "tier_medium": 30,
            "grace_days": 7,
            "account_rollup": "mean",
            f"points_{acts['Logged in'].public_id}": 2,
            f"points_{acts['Shared photo'].public_id}": 30,
        }
        r = client.post(url("edit_model", tenant, draft.public_id), form)
        assert r.status_code == 302
        draft.refresh_from_db()
        assert (draft.window_days, draft.daily_cap, draft.half_life_days, draft.account_rollup) == (14, 5, None, "mean")
        assert dict(draft.weights.values_list("activity__name", "points")) == {"Logged in": 2, "Shared photo": 30}

    def test_it_rejects_bad_input_with_a_message(self, client, editor, tenant, acts):
        login(client, editor)
        draft = services.scoring_model_create_draft(tenant=tenant)
        before = dict(draft.weights.values_list("activity_id", "points"))  # the starting model's
        form = {
            "window_days": 0,
            "tier_method": "percentile",
            "tier_high": 30,
            "tier_medium": 60,
            "grace_days": 7,
            "account_rollup": "sum",
            f"points_{acts['Logged in'].public_id}": 5000,
        }
        r = client.post(url("edit_model", tenant, draft.public_id), form)
        assert r.status_code == 400
        assert b"greater than or equal to 1" in r.content
        assert b"less than or equal to 1000" in r.content
        draft.refresh_from_db()
        assert draft.window_days == 30 and dict(draft.weights.values_list("activity_id", "points")) == before

    def test_viewer_reads_but_cannot_edit(self, client, viewer, tenant, acts):
        draft = services.scoring_model_create_draft(tenant=tenant)
        login(client, viewer)
        assert client.get(url("edit_model", tenant, draft.public_id)).status_code == 200
        assert client.post(url("edit_model", tenant, draft.public_id), {"window_days": 3}).status_code == 403
        assert client.post(url("models", tenant)).status_code == 403
        assert client.post(url("publish_model", tenant, draft.public_id)).status_code == 403
        assert ScoringModel.objects.filter(tenant=tenant).count() == 1

    def test_published_versions_are_frozen(self, client, editor, tenant, scored, acts):
        login(client, editor)
        model = scored["model"]
        r = client.post(
            url("edit_model", tenant, model.public_id),
            {
                "window_days": 3,
                "tier_method": "percentile",
                "tier_high": 80,
                "tier_medium": 40,
                "grace_days": 1,
                "account_rollup": "sum",
            },
        )
        assert r.status_code == 400 and b"frozen" in r.content
        model.refresh_from_db()
        assert model.window_days == 30

    def test_publish_queues_the_backfill(self, client, editor, tenant, acts):
        draft = make_model(tenant, {acts["Logged in"]: 1})
        login(client, editor)
        r = client.post(url("publish_model", tenant, draft.public_id))
        assert r.status_code == 302 and r["Location"] == url("runs", tenant)
        draft.refresh_from_db()
        assert draft.status == ModelStatus.PUBLISHED
        run = ScoringRun.objects.get(tenant=tenant)
        assert run.kind == RunKind.BACKFILL and run.days_total == 90

    def test_publish_without_points_is_refused(self, client, editor, tenant):
        draft = services.scoring_model_create_draft(tenant=tenant)
        login(client, editor)
        r = client.post(url("publish_model", tenant, draft.public_id), follow=True)
        assert b"at least one activity" in r.content
        draft.refresh_from_db()
        assert draft.status == ModelStatus.DRAFT

    def test_it_checks_the_tenant(self, client, outsider, other_tenant, tenant):
        draft = services.scoring_model_create_draft(tenant=tenant)
        login(client, outsider)
        # Even with the outsider's own tenant in the URL, tenant A's draft is not found.
        assert client.get(url("edit_model", other_tenant, draft.public_id)).status_code == 404
        assert client.post(url("publish_model", other_tenant, draft.public_id)).status_code == 404

    def test_wrong_method(self, client, editor, tenant):
        draft = services.scoring_model_create_draft(tenant=tenant)
        login(client, editor)
        assert client.get(url("publish_model", tenant, draft.public_id)).status_code == 405


class TestImportExport:
    def test_export_then_import_round_trips_exactly(self, client, editor, tenant, acts):
        model = make_model(
            tenant,
            {acts["Logged in"]: 1, acts["Invited friend"]: 50},
            daily_cap=4,
            half_life_days=10,
            tier_method="points",
            tier_high=100,
            tier_medium=20.5,
        )
        login(client, editor)
        exported = client.get(url("export_model", tenant, model.public_id)).content
        r = client.post(url("import_model", tenant), {"file": SimpleUploadedFile("m.json", exported)})
        assert r.status_code == 302
        imported = ScoringModel.objects.filter(tenant=tenant).order_by("-version").first()
        assert imported.is_draft and imported.version == model.version + 1
        assert client.get(url("export_model", tenant, imported.public_id)).content == exported

    def test_import_names_the_problem(self, client, editor, tenant):
        login(client, editor)
        bad = json.dumps({"format": "engagement-scoring-model/1", "colour": "blue"}).encode()
        r = client.post(url("import_model", tenant), {"file": SimpleUploadedFile("m.json", bad)})
        assert r.status_code == 400 and "Unknown key “colour”".encode() in r.content
        r = client.post(url("import_model", tenant), {"file": SimpleUploadedFile("m.json", b"{nope")})
        assert r.status_code == 400 and b"not valid JSON" in r.content
        assert not ScoringModel.objects.filter(tenant=tenant).exists()

    def test_import_command_publishes(self, tenant, tmp_path):
        from io import StringIO

        from django.core.management import call_command

        path = tmp_path / "model.json"
        path.write_text(
            json.dumps(
                {
                    "format": "engagement-scoring-model/1",
                    "name": "Code",
                    "window_days": 7,
                    "daily_cap": None,
                    "half_life_days": None,
                    "tier_rule": {"method": "percentile", "high": 80, "medium": 40},
                    "grace_days": 14,
                    "account_rollup": "seats",
                    "points": {"Brand new activity": 9},
                }
            )
        )
        out = StringIO()
        call_command("import_model", "--tenant", tenant.slug, str(path), "--publish", stdout=out)
        model = ScoringModel.objects.get(tenant=tenant)
        assert model.status == ModelStatus.PUBLISHED and model.account_rollup == "seats"
        weight = ActivityWeight.objects.unscoped().get(model=model)
        assert weight.activity.name == "Brand new activity" and not weight.activity.is_tracked
        assert "Published v1" in out.getvalue()


class TestPreview:
    def test_it_shows_the_draft_without_storing_it(self, client, viewer, tenant, scored, acts):
        from scoring.models import ProductScore, UserScore

        draft = services.scoring_model_create_draft(tenant=tenant)
        services.scoring_model_update(
            model=draft,
            points={acts["Logged in"].pk: 1, acts["Shared photo"].pk: 100},
            tier_method="points",
            tier_high=500,
            tier_medium=50,
        )
        login(client, viewer)
        r = client.get(url("preview_model", tenant, draft.public_id))
        assert r.status_code == 200
        assert b"Top 20 users" in r.content and b"Tier changes against published v1" in r.content
        assert not UserScore.objects.unscoped().filter(model=draft).exists()
        assert not ProductScore.objects.unscoped().filter(model=draft).exists()
        assert r.context["preview"].change_count > 0

    def test_it_checks_the_tenant(self, client, outsider, other_tenant, tenant, scored):
        login(client, outsider)
        assert client.get(url("preview_model", tenant, scored["model"].public_id)).status_code == 404
        assert client.get(url("preview_changes_csv", tenant, scored["model"].public_id)).status_code == 404

    def test_every_tier_change_downloads_as_csv(self, client, viewer, tenant, scored, acts, monkeypatch):
        import csv
        import io

        draft = services.scoring_model_create_draft(tenant=tenant)
        services.scoring_model_update(
            model=draft, points={acts["Logged in"].pk: 1, acts["Shared photo"].pk: 100},
            tier_method="points", tier_high=500, tier_medium=50,
        )  # fmt: skip
        login(client, viewer)
        page = client.get(url("preview_model", tenant, draft.public_id))
        csv_url = url("preview_changes_csv", tenant, draft.public_id)
        assert csv_url.encode() in page.content
        response = client.get(csv_url)
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert len(rows) == page.context["preview"].change_count > 0
        assert all(row["published_tier"] != row["draft_tier"] for row in rows)
        assert {row["user_id"] for row in rows} <= {f"u{i}" for i in range(6)}


class TestRuns:
    def test_it_works_and_reports_progress(self, client, viewer, tenant, scored):
        login(client, viewer)
        r = client.get(url("runs", tenant))
        assert r.status_code == 200 and b"<progress" in r.content and b"/static/django_htmx/htmx-2.min.js" in r.content
        run = ScoringRun.objects.filter(tenant=tenant).first()
        row_url = url("run_row", tenant, run.public_id)
        # A queued run's row polls its own fragment, which htmx swaps in place.
        assert f'hx-get="{row_url}" hx-trigger="every 2s"'.encode() in r.content
        data = client.get(url("run_status", tenant, run.public_id)).json()
        assert data["status"] == "queued" and data["progress"] == 0 and data["days_total"] == 1
        row = client.get(row_url)
        assert row.status_code == 200 and b"<html" not in row.content
        assert b'run-status">queued<' in row.content and b"0/1 days" in row.content and b"hx-trigger" in row.content
        run.day_rows, run.status = {run.first_day.isoformat(): 4}, "succeeded"
        run.save()
        row = client.get(row_url).content
        # Finished: the row says so and stops polling.
        assert b'run-status good">succeeded<' in row and b"1/1 days" in row and b"hx-trigger" not in row

    def test_admin_recomputes(self, client, admin_user, tenant, scored):
        login(client, admin_user)
        r = client.post(url("runs", tenant), {"days": 7})
        assert r.status_code == 302
        assert ScoringRun.objects.filter(tenant=tenant, kind=RunKind.RECOMPUTE, requested_by=admin_user).exists()

    def test_recompute_needs_an_admin(self, client, editor, tenant, scored):
        login(client, editor)
        assert client.post(url("runs", tenant), {"days": 7}).status_code == 403
        assert not ScoringRun.objects.unscoped().filter(kind=RunKind.RECOMPUTE).exists()

    def test_recompute_rejects_bad_input(self, client, admin_user, tenant, scored):
        login(client, admin_user)
        r = client.post(url("runs", tenant), {"days": 0})
        assert r.status_code == 400 and b"greater than or equal to 1" in r.content

    def test_recompute_without_a_model_says_so(self, client, admin_user, tenant):
        login(client, admin_user)
        r = client.post(url("runs", tenant), {"days": 3})
        assert r.status_code == 400 and b"Publish a scoring model first" in r.content

    def test_run_status_checks_the_tenant(self, client, outsider, other_tenant, tenant, scored):
        run = ScoringRun.objects.filter(tenant=tenant).first()
        login(client, outsider)
        assert client.get(url("run_status", other_tenant, run.public_id)).status_code == 404


class TestUsersAndAccounts:
    def test_users_table(self, client, viewer, tenant, scored):
        login(client, viewer)
        r = client.get(url("users", tenant), {"tier": "high", "order": "-points"})
        assert r.status_code == 200
        assert all(row.tier == "high" for row in r.context["page"])

    def test_users_filter_by_account_and_bad_input(self, client, viewer, tenant, scored):
        login(client, viewer)
        assert len(client.get(url("users", tenant), {"account": "acme"}).context["page"]) == 6
        r = client.get(url("users", tenant), {"account": "nope"})
        assert r.status_code == 400 and b"No account with this group id" in r.content
        r = client.get(url("users", tenant), {"tier": "legendary"})
        assert r.status_code == 400 and b"Select a valid choice" in r.content

    def test_users_csv(self, client, viewer, tenant, scored):
        login(client, viewer)
        r = client.get(url("users_csv", tenant), {"order": "-points"})
        lines = b"".join(r.streaming_content).decode().splitlines()
        assert lines[0].startswith("user_id,name,account,day,version,points")
        assert len(lines) == 7

    def test_accounts_table_and_csv(self, client, viewer, tenant, scored):
        login(client, viewer)
        r = client.get(url("accounts", tenant))
        assert r.status_code == 200 and b"Acme Corp" in r.content
        lines = b"".join(client.get(url("accounts_csv", tenant)).streaming_content).decode().splitlines()
        assert lines[1].startswith("acme,Acme Corp,")

    def test_user_explanation(self, client, viewer, tenant, scored):
        login(client, viewer)
        user = scored["users"]["u5"]
        r = client.get(url("user_detail", tenant, user.public_id))
        assert r.status_code == 200
        explanation = r.context["explanation"]
        assert explanation.points == r.context["snapshot"].points
        assert {a.activity for a in explanation.activities} == {"Logged in", "Shared photo"}
        assert b"What moved the score" in r.content
        assert chart_spec(r, "chart-history")["series"][0]["name"] == "Points"

    def test_account_explanation(self, client, viewer, tenant, scored):
        login(client, viewer)
        account = scored["account"]
        r = client.get(url("account_detail", tenant, account.public_id))
        assert r.status_code == 200
        assert r.context["explanation"].points == r.context["snapshot"].points  # roll-up is the sum
        assert chart_spec(r, "chart-history")["series"][0]["values"][-1] == r.context["snapshot"].points

    def test_they_check_the_tenant(self, client, outsider, other_tenant, tenant, scored):
        login(client, outsider)
        user, account = scored["users"]["u1"], scored["account"]
        assert client.get(url("user_detail", other_tenant, user.public_id)).status_code == 404
        assert client.get(url("account_detail", other_tenant, account.public_id)).status_code == 404
        assert client.get(url("users", tenant)).status_code == 404

    def test_hot_pages_have_bounded_queries(self, client, viewer, tenant, scored, django_assert_max_num_queries):
        login(client, viewer)
        user = scored["users"]["u1"]
        with django_assert_max_num_queries(12):
            client.get(url("users", tenant))
        with django_assert_max_num_queries(12):
            client.get(url("accounts", tenant))
        with django_assert_max_num_queries(16):
            client.get(url("user_detail", tenant, user.public_id))
        with django_assert_max_num_queries(17):
            client.get(url("account_detail", tenant, scored["account"].public_id))

    def test_formulas_page(self, client, viewer, tenant):
        r = login(client, viewer).get(url("formulas", tenant))
        assert r.status_code == 200 and b"points_a" in r.content
