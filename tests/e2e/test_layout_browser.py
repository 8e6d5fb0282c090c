"""The main pages at a desktop (1280 px) and a phone (390 px) width: no console error (the favicon
included: it is linked, so nothing 404s), nothing wider than the window, a sidebar whose links each
stay on one line, every chart drawn at a readable size; a screenshot of every page (and of each chart
on its own) in test-artifacts/ for people to look at."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections
from django.urls import reverse

from accounts.demo import DEMO_EMAIL, DEMO_PASSWORD, DEMO_SLUG
from accounts.models import Tenant
from tests.e2e.test_insights_browser import ARTIFACTS, browser, demo_ids, eager_celery  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"desktop": 1280, "phone": 390}

MAIN_PAGES = [
    ("dashboard", "tenant_home", ()),
    ("users", "scoring:users", ()),
    ("user", "scoring:user_detail", ("end_user_id",)),
    ("accounts", "scoring:accounts", ()),
    ("account", "scoring:account_detail", ("account_id",)),
    ("growth", "insights:growth", ()),
    ("transitions", "insights:transitions", ()),
    ("moved", "insights:transition_members", (), "?tier_from=medium&tier_to=high"),
    ("adoption", "insights:adoption", ()),
    ("segments", "insights:segments", ()),
    ("outcomes", "insights:outcomes", ()),
    ("truth", "insights:truth", ()),
    ("scoring", "scoring:overview", ()),
    ("models", "scoring:models", ()),
    ("runs", "scoring:runs", ()),
    ("events", "events:debugger", ()),
    ("catalog", "events:catalog", ()),
    ("imports", "events:imports", ()),
    ("setup", "events:setup", ()),
    ("surveys", "surveys:list", ()),
    ("survey", "surveys:detail", ("survey_id",)),
    ("survey-results", "surveys:results", ("survey_id",)),
    ("members", "accounts:members", ()),
    ("api-keys", "accounts:api_keys", ()),
    ("settings", "accounts:tenant_settings", ()),
]

# Every link of the sidebar is one line high, and the phone's top bar is one row.
LAYOUT = """() => {
  const doc = document.documentElement;
  const links = [...document.querySelectorAll('.side-nav a')].filter(a => a.offsetParent !== null);
  const wrapped = links.filter(a => a.getClientRects().length > 1 || a.scrollWidth > a.clientWidth + 1
                                     || a.getBoundingClientRect().height > 44).map(a => a.textContent.trim());
  const head = document.querySelector('.sidebar-head');
  const bar = document.querySelector('.sidebar .brand');
  return {overflow: doc.scrollWidth - doc.clientWidth, wrapped,
          barHeight: bar ? bar.getBoundingClientRect().height : 0, links: links.length,
          favicon: !!document.querySelector('link[rel=icon]'),
          // Every chart drew (or said it has nothing to draw) at a readable size inside its card.
          charts: [...document.querySelectorAll('canvas[data-chart]')].map(c => ({
            id: c.dataset.chart, drawn: c.parentElement.classList.contains('drawn'),
            height: c.getBoundingClientRect().height,
            inside: c.getBoundingClientRect().right <= c.closest('main').getBoundingClientRect().right + 1}))};
}"""


def _watch(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    return errors


def test_main_pages_at_desktop_and_phone_width(browser, live_server, eager_celery):  # noqa: F811
    try:
        _walk(browser, live_server)
    finally:
        connections.close_all()  # see test_insights_browser.test_onboarding_as_a_new_user


def _walk(browser, live_server):  # noqa: F811
    call_command("seed_demo", "--users", "80", stdout=StringIO())
    tenant = Tenant.objects.get(slug=DEMO_SLUG)
    ids = demo_ids(tenant)
    ARTIFACTS.mkdir(exist_ok=True)
    problems = []
    for device, width in WIDTHS.items():
        context = browser.new_context(viewport={"width": width, "height": 900}, is_mobile=device == "phone")
        page = context.new_page()
        errors = _watch(page)
        page.goto(f"{live_server.url}/login/")
        page.screenshot(path=str(ARTIFACTS / f"layout-{device}-login.png"), full_page=True)
        page.fill("input[name=username]", DEMO_EMAIL)
        page.fill("input[name=password]", DEMO_PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_load_state()
        if device == "phone":  # the menu folds away; open it so its links are measured too
            assert page.locator(".side-nav").is_hidden()
            page.click("label.nav-toggle-label")
            assert page.locator(".side-nav").is_visible()
            page.screenshot(path=str(ARTIFACTS / "layout-phone-menu.png"))
        for name, route, params, *query in MAIN_PAGES:
            path = reverse(route, kwargs={"tenant_slug": tenant.slug, **{p: ids[p] for p in params}})
            path += "".join(query)
            response = page.goto(live_server.url + path, wait_until="load")
            assert response.status == 200, f"{path}: {response.status}"
            page.wait_for_timeout(150)  # charts draw after the deferred scripts run
            if device == "phone":
                page.click("label.nav-toggle-label")
            layout = page.evaluate(LAYOUT)
            if layout["overflow"] > 0:
                problems.append(f"{device} {path}: {layout['overflow']} px wider than the window")
            if layout["wrapped"]:
                problems.append(f"{device} {path}: nav links wrap: {layout['wrapped']}")
            for chart in layout["charts"]:
                if not chart["drawn"] or chart["height"] < 180 or not chart["inside"]:
                    problems.append(f"{device} {path}: chart {chart}")
            if layout["links"] < 8 or not layout["favicon"]:
                problems.append(f"{device} {path}: sidebar has {layout['links']} links, favicon {layout['favicon']}")
            if device == "phone":
                if layout["barHeight"] > 60:
                    problems.append(f"{device} {path}: the top bar is {layout['barHeight']} px high")
                page.click("label.nav-toggle-label")
            page.screenshot(path=str(ARTIFACTS / f"layout-{device}-{name}.png"), full_page=True)
            for chart in layout["charts"]:  # each chart on its own, at the size it is read
                page.locator(f"figure:has(canvas[data-chart='{chart['id']}'])").screenshot(
                    path=str(ARTIFACTS / f"chart-{device}-{name}-{chart['id']}.png"))
        # A chart is drawn, and its hover shows a formatted value.
        page.goto(f"{live_server.url}/t/{tenant.slug}/", wait_until="load")
        canvas = page.locator("canvas[data-chart=chart-product]")
        canvas.wait_for()
        assert canvas.bounding_box()["height"] >= 200
        context.close()
        assert errors == [], errors
    assert problems == [], "\n".join(problems)
