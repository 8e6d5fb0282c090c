"""Score truth in a real browser: the verdict, then draft -> backtest -> compare -> publish."""

import pytest

from accounts.models import Membership, Role
from scoring import services as scoring_services
from scoring.models import ModelStatus, ScoringModel
from tests.e2e.test_insights_browser import ARTIFACTS, _log_in, _watch, browser, eager_celery  # noqa: F401
from tests.insights.test_truth import planted, world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_draft_backtest_compare_publish(browser, live_server, eager_celery, tenant, owner, editor):  # noqa: F811
    _, acts, _ = world(tenant, planted(users=120), history_days=150)
    # The published version counts log-ins only: volume, the trap.
    v1 = scoring_services.scoring_model_create_draft(tenant=tenant)
    scoring_services.scoring_model_update(model=v1, points={acts["Logged in"].pk: 10})
    scoring_services.scoring_model_publish(model=v1, backfill_days=10)
    Membership.objects.filter(tenant=tenant, user=editor).update(role=Role.EDITOR)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = _watch(page)
    _log_in(page, live_server.url, editor.email)
    page.goto(f"{live_server.url}/t/{tenant.slug}/insights/truth/")
    verdict = page.locator("p.verdict").inner_text()
    # Log-ins: busy users log in the most and leave, so the published score ranks them first.
    assert verdict.startswith("Not predictive") and "below a coin" in verdict, verdict
    assert page.locator("table.truth-columns th", has_text="Fitted on outcomes").count() == 1
    fitted_row = page.locator("tr", has=page.locator("td", has_text="Exported report")).first
    assert int(fitted_row.locator("td.num strong").inner_text()) == 100
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "score-truth.png"), full_page=True)

    page.fill("input[name=survey_share]", "0")
    page.click("text=Create a draft from this fit and backtest it")
    page.wait_for_load_state()
    assert "/insights/truth/backtest/" in page.url
    draft = ScoringModel.objects.get(tenant=tenant, status=ModelStatus.DRAFT)
    assert draft.name.startswith("Fitted on outcomes")
    headers = page.locator("table.truth-columns thead th").all_inner_texts()
    assert any("draft" in h.lower() for h in headers) and any(h.lower().startswith("published v1") for h in headers)
    assert page.locator("p.verdict").inner_text().startswith("Predictive")
    page.screenshot(path=str(ARTIFACTS / "backtest.png"), full_page=True)

    page.click(f"text=Publish {draft}")
    page.wait_for_load_state()
    assert "/scoring/runs/" in page.url
    draft.refresh_from_db()
    assert draft.status == ModelStatus.PUBLISHED
    assert errors == []
