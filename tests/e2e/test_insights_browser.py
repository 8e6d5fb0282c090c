"""End to end in a real browser: Debian's chromium driven by Playwright (no `playwright install`).

(a) a new user walks the onboarding: sign up -> write key -> events from the official
    Python client -> the checklist ticks live -> a team survey answered on a phone through its
    share link -> weights proposed from it, published through the pages -> scores; all 5 steps done;
(b) every page of the demo tenant (`seed_demo`), with its real objects, opens without an error status
    or a browser console error (CSP violations are console errors);
(c) screenshots of the dashboard, a user page and growth accounting in test-artifacts/.
"""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.demo import DEMO_EMAIL, DEMO_PASSWORD, DEMO_SLUG
from accounts.models import Membership, Role, Tenant
from events.models import EndUser
from surveys.models import SurveyShareLink
from tests.conftest import PASSWORD, _missing

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TENANT_PREFIX = "t/<slug:tenant_slug>/"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are synchronous
    # and safe. Set per test, not for the module: a process-wide value leaks into `check --deploy`
    # (tests/accounts/test_settings.py), which rightly warns about it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not Path(CHROMIUM).exists():
        # Skips with the reason on a bare machine; fails when REQUIRE_SERVICES=1 (CI).
        _missing("Debian's chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()
    # ORM calls made while Playwright's loop was live leave connections that teardown doesn't
    # close; PostgreSQL would then refuse to drop the test database.
    connections.close_all()


@pytest.fixture
def eager_celery(settings):
    """The e2e run has no worker: publishing computes its backfill in process, as in the embedded default."""
    from engagement_site.celery import app

    previous = app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


def _watch(page) -> list[str]:
    errors: list[str] = []

    def on_console(message):
        # The favicon counts too: every page links static/img/favicon.svg, so nothing asks for a missing one.
        if message.type == "error":
            errors.append(f"{page.url}: {message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    return errors


def _log_in(page, base, email):
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state()


# --- (a) Onboarding ----------------------------------------------------------------------------------


def test_onboarding_as_a_new_user(browser, live_server, eager_celery):
    try:
        _walk_onboarding(browser, live_server)
    finally:
        # ORM connections opened while Playwright's loop is live belong to this context: close them
        # here, or PostgreSQL refuses to drop the test database at the end of the run.
        connections.close_all()


def _walk_onboarding(browser, live_server):
    from segment.analytics import request as segment_request
    from segment.analytics.client import Client

    base = live_server.url
    page = browser.new_page()
    errors = _watch(page)
    page.goto(f"{base}/signup/")
    page.fill("input[name=full_name]", "Nora New")
    page.fill("input[name=email]", "nora@newco.test")
    page.fill("input[name=company_name]", "NewCo")
    page.fill("input[name=product_name]", "Rocket")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/t/newco/")
    checklist = page.locator("#checklist")
    assert "0 of 5 done" in checklist.inner_text()
    assert "No engagement scores yet" in page.content()

    # A write key, read from the page that shows it once.
    page.goto(f"{base}/t/newco/settings/api-keys/")
    page.fill("input[name=name]", "Backend")
    page.check("input[name=kind][value=write]")
    page.click("main form button[type=submit]:has-text('Create key')")
    key = page.locator("#new-key").inner_text().strip()
    assert key.startswith("wk_")

    # Back home: the key step is done; events sent now tick "first event" without a reload.
    page.goto(f"{base}/t/newco/")
    assert page.locator('[data-step="write_key"]').get_attribute("class").split() == ["step", "done"]
    assert "todo" in page.locator('[data-step="first_event"]').get_attribute("class")
    client = Client(write_key=key, host=base, sync_mode=True, max_retries=0)
    try:
        client.identify("ana", {"email": "ana@example.com", "plan": "paid"})
        client.group("ana", "acct-1", {"name": "Acme Photo", "plan": "paid", "mrr": 120})
        for _ in range(3):
            client.track("ana", "Logged in")
        client.track("ana", "Shared photo")
        client.track("ben", "Logged in")
        client.flush()
    finally:
        segment_request._session.close()
    page.wait_for_selector('[data-step="first_event"].done', timeout=15_000)

    # Step one of the method: the team survey, answered by a teammate through the share link.
    page.goto(f"{base}/t/newco/surveys/new/")
    page.fill("input[name=title]", "What does an engaged Rocket user do?")
    page.click("main button[type=submit]:has-text('Create survey')")
    page.wait_for_load_state()
    survey_url = page.url
    page.click("button:has-text('Create a share link')")
    share_url = page.locator("#share-url").inner_text().strip()
    teammate = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    answer = teammate.new_page()
    teammate_errors = _watch(answer)
    assert share_url.startswith("http") and "/s/" in share_url  # links are built on SITE_URL
    answer.goto(base + "/s/" + share_url.split("/s/", 1)[1])
    answer.select_option("select[name=department]", "sales")
    answer.fill("textarea[name=answer]", "They share photos and log in every week.")
    answer.get_by_role("group", name="Logged in").get_by_text("3", exact=True).click()
    answer.get_by_role("group", name="Shared photo").get_by_text("9", exact=True).click()
    answer.get_by_role("button", name="Send my answer").click()
    answer.wait_for_url("**/thanks/")
    teammate.close()
    assert teammate_errors == []

    # Weights from the survey's proposal, published through the pages; the backfill computes scores.
    page.goto(survey_url.rstrip("/") + "/weights/")
    page.click("button:has-text('Create draft scoring model from this proposal')")
    page.wait_for_load_state()
    page.goto(f"{base}/t/newco/scoring/models/")
    page.click("a:has-text('v1')")
    page.wait_for_load_state()
    assert "From survey" in page.content()
    page.click("button:has-text('Publish v1')")
    page.wait_for_load_state()

    page.goto(f"{base}/t/newco/")
    # Every step done: the checklist steps aside for the scores, and can be shown again.
    assert page.locator("#checklist").count() == 0
    assert "Show the setup checklist" in page.content()
    assert "Product score over time" in page.content()
    page.goto(f"{base}/t/newco/onboarding/")
    for step in ("survey", "write_key", "first_event", "published", "scores"):
        assert page.locator(f'[data-step="{step}"]').get_attribute("class").split() == ["step", "done"], step
    page.goto(f"{base}/t/newco/scoring/users/")
    assert "ana" in page.content()
    assert errors == []


# --- (b) + (c) Every page of a demo-like tenant -----------------------------------------------------------


def _walk(patterns, prefix="", namespace=""):
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from _walk(p.url_patterns, route, ns)
        elif isinstance(p, URLPattern) and p.name:
            yield route, f"{namespace}{p.name}", p


def demo_ids(tenant) -> dict:
    """Real objects of the demo tenant, by the URL parameter names that take them."""
    from accounts.services import api_key_create, invitation_create
    from events.models import Activity
    from scoring.models import ModelStatus, ScoringModel, ScoringRun
    from surveys.models import ProposedActivity, Survey, SurveyInvitee
    from tests.events.pages_helpers import events_isolation_ids

    owner = Membership.objects.get(tenant=tenant, user__email=DEMO_EMAIL).user
    invitation, _ = invitation_create(
        tenant=tenant, email="new.teammate@e2e.test", role=Role.VIEWER, department="other", invited_by=owner
    )
    key, _ = api_key_create(tenant=tenant, kind="write", name="e2e")
    end_user = EndUser.objects.for_tenant(tenant).get(user_id="user-0001")
    survey = Survey.objects.for_tenant(tenant).get()
    from tests.alerts.isolation import alerts_isolation_ids

    return {
        **alerts_isolation_ids(tenant),
        "member_id": Membership.objects.filter(tenant=tenant, role=Role.VIEWER).first().public_id,
        "invitation_id": invitation.public_id,
        "key_id": key.public_id,
        "survey_id": survey.public_id,
        "invitee_id": SurveyInvitee.objects.unscoped().filter(survey=survey).first().public_id,
        "proposal_id": ProposedActivity.objects.unscoped().filter(response__survey=survey).first().public_id,
        "activity_id": Activity.objects.for_tenant(tenant).get(name="Shared photo").public_id,
        "import_id": events_isolation_ids(tenant)["import_id"],
        "model_id": ScoringModel.objects.get(tenant=tenant, status=ModelStatus.PUBLISHED).public_id,
        "run_id": ScoringRun.objects.for_tenant(tenant).first().public_id,
        "end_user_id": end_user.public_id,
        "account_id": end_user.account.public_id,
    }


# Routes that answer only with a query (the two tiers of a transition cell): the one a matrix cell links to.
QUERIES = {
    "insights:transition_members": "?tier_from=medium&tier_to=high",
    "insights:transition_members_csv": "?tier_from=medium&tier_to=high",
}


def tenant_urls(tenant, ids) -> list[str]:
    """Every named route under /t/<slug>/, with the demo's own objects for its ids."""
    urls = []
    for route, name, pattern in _walk(get_resolver().url_patterns):
        if route.startswith(TENANT_PREFIX):
            kwargs = {param: ids[param] for param in pattern.pattern.converters if param != "tenant_slug"}
            urls.append(reverse(name, kwargs={"tenant_slug": tenant.slug, **kwargs}) + QUERIES.get(name, ""))
    return sorted(set(urls))


def _open(page, base, path, errors):
    """Fetch every URL; render the HTML ones in the page and let their images and scripts load.

    A POST-only route answers 405 to GET; any other 4xx or 5xx fails (a page of the demo that
    answers 404 or 400 is as broken for its reader as a 500).
    """
    response = page.request.get(base + path)
    assert response.status < 400 or response.status == 405, f"GET {path} gave {response.status}"
    if response.status == 405 or "text/html" not in response.headers.get("content-type", ""):
        return response.status
    before = len(errors)
    navigation = page.goto(base + path, wait_until="load")
    assert navigation.status < 400, f"GET {path} gave {navigation.status}"
    page.wait_for_timeout(100)
    for image in page.locator("img").all():
        assert image.evaluate("img => img.complete && img.naturalWidth > 0"), f"{path}: broken image"
    assert len(errors) == before, f"console errors on {path}: {errors[before:]}"
    return navigation.status


def test_every_page_of_the_demo_tenant(browser, live_server, eager_celery):
    try:
        _open_every_page(browser, live_server)
    finally:
        connections.close_all()  # see test_onboarding_as_a_new_user


def _open_every_page(browser, live_server):
    # The demo `make run` loads, with its first 80 end users (same code path, a fraction of the time).
    call_command("seed_demo", "--users", "80", stdout=StringIO())
    tenant = Tenant.objects.get(slug=DEMO_SLUG)
    ids = demo_ids(tenant)
    share_link = SurveyShareLink.objects.unscoped().filter(survey__public_id=ids["survey_id"]).first()

    base = live_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = _watch(page)
    # Public pages first, as a visitor.
    public = ["/", "/login/", "/signup/", "/password-reset/", "/api/docs/"]
    for path in public:
        _open(page, base, path, errors)
    if share_link is not None:  # the demo survey is closed: its link says so (410 Gone), cleanly
        before = len(errors)
        closed = page.goto(f"{base}/s/{share_link.token()}/", wait_until="load")
        assert closed.status == 410 and "closed" in page.content().lower()
        # The browser reports the 410 itself as a failed resource; anything else is the page's fault.
        assert all("status of 410" in error for error in errors[before:]), errors[before:]
        del errors[before:]
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", DEMO_EMAIL)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    paths = tenant_urls(tenant, ids)
    assert f"/t/{tenant.slug}/" in paths and len(paths) > 40
    opened = {path: _open(page, base, path, errors) for path in paths}
    assert sum(status == 200 for status in opened.values()) > 30
    assert errors == []

    # (c) Screenshots for people to look at.
    ARTIFACTS.mkdir(exist_ok=True)
    shots = {
        "insights-dashboard.png": f"/t/{tenant.slug}/",
        "insights-user.png": reverse("scoring:user_detail", args=[tenant.slug, ids["end_user_id"]]),
        "insights-growth.png": reverse("insights:growth", args=[tenant.slug]),
    }
    for filename, path in shots.items():
        page.goto(base + path, wait_until="load")
        page.screenshot(path=str(ARTIFACTS / filename), full_page=True)
        assert (ARTIFACTS / filename).stat().st_size > 10_000
    assert errors == []
