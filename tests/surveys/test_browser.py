"""Answering the survey on a phone-sized viewport, in Debian's chromium driven by Playwright."""

from pathlib import Path

import pytest
from django.db import connections

from surveys.models import SurveyResponse
from tests.conftest import _missing

from . import factories

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE = {"width": 390, "height": 844}


def _launch(playwright):
    if not Path(CHROMIUM).exists():
        # Skips with the reason on a bare machine, fails when REQUIRE_SERVICES=1 (CI).
        _missing("Debian's chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread, which trips Django's
    # async-safety check on the test's own (synchronous, safe) ORM calls. Set only
    # for this test: a process-wide setting would leak into `check --deploy`.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = _launch(playwright)
        yield browser
        browser.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_answering_on_a_phone(browser, live_server, tenant):
    try:
        _answer_on_a_phone(browser, live_server, tenant)
    finally:
        # The ORM calls ran while Playwright's event loop was live and leave a connection
        # that teardown doesn't close; PostgreSQL would then refuse to drop the test
        # database ("being accessed by other users"). Close it from this context.
        connections.close_all()


def _answer_on_a_phone(browser, live_server, tenant):
    survey = factories.survey(tenant)
    guest = factories.invitee(survey, "phone@partner.test")
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{live_server.url}/s/{guest.token()}/")

    # Fits the phone: nothing wider than the viewport.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert "An engaged user of Rocket does" in page.content()

    # Submit with a missing rating: the error is shown and what was typed stays.
    page.select_option("select[name=department]", "marketing")
    page.fill("textarea[name=answer]", "They share photos with friends every week.")
    page.get_by_role("group", name="Logged in").get_by_text("7", exact=True).click()
    page.get_by_role("group", name="Added photo").get_by_text("Not relevant").click()
    page.fill("input[name=proposal_name_0]", "Printed album")
    page.get_by_role("button", name="Send my answer").click()
    assert page.get_by_text("Pick a rating from 0 to 10").is_visible()
    assert page.input_value("textarea[name=answer]") == "They share photos with friends every week."
    assert page.input_value("input[name=proposal_name_0]") == "Printed album"
    assert not SurveyResponse.objects.unscoped().exists()

    page.get_by_role("group", name="Shared photo").get_by_text("10", exact=True).click()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "survey-answer-phone.png"), full_page=True)
    page.get_by_role("button", name="Send my answer").click()
    page.wait_for_url("**/thanks/")
    assert "Thank you" in page.content()

    response = SurveyResponse.objects.unscoped().get(invitee=guest)
    assert response.department == "marketing"
    ratings = dict(response.ratings.values_list("activity__name", "importance"))
    assert ratings == {"Logged in": 7, "Added photo": None, "Shared photo": 10}
    assert list(response.proposals.values_list("name", flat=True)) == ["Printed album"]
    # CSP: no violation on the page (inline style or script would be reported here).
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_response_rate_updates_live(browser, live_server, tenant, viewer, client):
    try:
        _watch_the_response_rate(browser, live_server, tenant, viewer, client)
    finally:
        connections.close_all()


def _watch_the_response_rate(browser, live_server, tenant, viewer, client):
    survey = factories.survey(tenant)
    member = factories.member_invitee(survey, viewer)
    client.force_login(viewer)
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if "Content Security" in message.text else None)
    page.goto(f"{live_server.url}/t/{tenant.slug}/surveys/{survey.public_id}/response-rate/")
    answered = page.locator('[data-total="answered"]')
    assert answered.text_content() == "0"
    factories.answer(survey, invitee=member)
    # The page polls every 5 seconds.
    expect = pytest.importorskip("playwright.sync_api").expect
    expect(answered).to_have_text("1", timeout=15_000)
    expect(page.locator('[data-total="rate"]')).to_have_text("100")
    expect(page.locator("[data-rows] tr").first).to_contain_text("Sales")
    assert not errors, errors
    context.close()
