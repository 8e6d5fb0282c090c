"""Alerts in a real browser: add an endpoint, create a rule, test it against last week, see its deliveries."""

import pytest

from alerts import services
from tests.alerts.conftest import Receiver, falling_accounts
from tests.e2e.test_insights_browser import ARTIFACTS, _log_in, _watch, browser, eager_celery  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_test_and_follow_a_rule(browser, live_server, eager_celery, settings, tenant, editor):  # noqa: F811
    settings.ALERTS_ALLOW_LOCAL_TARGETS = True
    falling_accounts(tenant)
    receiver = Receiver()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = _watch(page)
        _log_in(page, live_server.url, editor.email)
        base = f"{live_server.url}/t/{tenant.slug}/alerts/"

        # An endpoint: its secret is shown once.
        page.goto(base)
        page.click("text=Webhook endpoints")
        page.fill("input[name=name]", "CRM")
        page.fill("input[name=url]", receiver.url)
        page.click("#endpoint-form button[type=submit]")
        secret = page.locator("#new-secret").inner_text().strip()
        assert secret.startswith("whsec_")
        page.reload()
        assert secret not in page.content()

        # A rule: an account's tier dropped to low -> the webhook.
        page.goto(base)
        page.click("text=New rule")
        page.fill("input[name=name]", "Dropped to low")
        page.select_option("select[name=subject]", "accounts")
        page.select_option("select[name=trigger]", "tier_changed")
        page.select_option("select[name=tier_from]", "higher")
        page.select_option("select[name=tier_to]", "low")
        page.select_option("select[name=webhook]", label="CRM")
        page.click("#rule-form button[type=submit]")
        page.wait_for_load_state()
        assert "Rule “Dropped to low” saved." in page.content()
        assert "tier dropped to low" in page.locator("dl.facts").inner_text()

        # Test it against last week: Falling Co, and nothing sent.
        page.click("text=Test: which would it have fired for last week?")
        assert page.locator("#test-summary").inner_text() == "1 alert on 1 day."
        assert "Falling Co" in page.locator("#test-hits").inner_text()
        assert receiver.requests == []
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "alerts-rule-test.png"), full_page=True)

        # The scoring job's evaluation fires it; the endpoint's log shows the delivery; Replay sends it again.
        services.evaluate_days(tenant, [tenant.today()])
        assert len(receiver.requests) == 1
        page.goto(base)
        assert "Falling Co" in page.locator("#firings").inner_text()
        page.click("text=Webhook endpoints")
        page.click("#endpoints >> text=CRM")
        log = page.locator("#delivery-log")
        assert "Dropped to low: Falling Co" in log.inner_text() and "200" in log.inner_text()
        page.click("#delivery-log button:has-text('Replay')")
        page.wait_for_load_state()
        assert page.locator("#delivery-log tbody tr").count() == 2
        assert "(replay)" in page.locator("#delivery-log").inner_text()
        assert len(receiver.requests) == 2
        page.screenshot(path=str(ARTIFACTS / "alerts-delivery-log.png"), full_page=True)
        assert errors == []
    finally:
        receiver.close()
