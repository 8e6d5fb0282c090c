"""analytics.js served by us, in a real browser: Segment's standard snippet on a customer's page,
`analytics._cdn` pointed at the live server, and nothing loaded from Segment's CDN.

The customer's page is served from another origin (a second local server) than ours, as on a real
site: the loader, its code-split bundles and the settings come from the live server, cross-origin.
"""

import html
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from django.db import connections
from django.urls import reverse

from accounts.models import ApiKeyKind
from accounts.services import api_key_create
from events.models import EndUser, Event
from tests.conftest import client_for, node_package
from tests.e2e.test_insights_browser import _watch, browser  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class CustomerSite:
    """A customer's web page at its own origin: the given HTML at every path."""

    def __init__(self, page_html: str):
        body = page_html.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _setup_page_snippet(client, owner, tenant, key: str, key_prefix: str) -> str:
    """The standard snippet exactly as the setup page shows it, with the real key for its placeholder."""
    content = client_for(client, owner).get(reverse("events:setup", args=[tenant.slug])).content.decode()
    code = re.search(r'<pre id="snippet-js-snippet"><code>(.*?)</code></pre>', content, re.S).group(1)
    return html.unescape(code).replace(f"{key_prefix}_...", key)


def _wait_for(condition, seconds=15.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_the_standard_snippet_loads_everything_from_us(browser, live_server, settings, client, tenant, owner):  # noqa: F811
    node_package("@segment/analytics-next", "1.84.3")
    settings.SITE_URL = live_server.url  # the setup page's snippet names the live server
    api_key, key = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="Web")
    snippet = _setup_page_snippet(client, owner, tenant, key, api_key.prefix)
    assert f'analytics._cdn = "{live_server.url}";' in snippet and "cdn.segment.com" not in snippet
    site = CustomerSite(f"""<!doctype html><html><head><title>Acme pricing</title>
{snippet}
</head><body>
<a id="pricing" href="#plans">See the plans</a>
<h2 id="plans">Plans</h2>
<script>analytics.trackLink(document.getElementById("pricing"), "Clicked pricing", {{"plan": "pro"}});</script>
</body></html>""")
    hosts = set()
    try:
        page = browser.new_page()
        errors = _watch(page)
        page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
        # A link from an email: identify u1 with a trait and track the email's event (the queryString bundle).
        page.goto(f"{site.url}/pricing?ajs_uid=u1&ajs_event=Opened%20email&ajs_trait_plan=pro")
        page.wait_for_function("window.analytics && window.analytics.initialized === true", timeout=15000)
        assert _wait_for(lambda: EndUser.objects.for_tenant(tenant).filter(user_id="u1", traits__plan="pro").exists())
        user = EndUser.objects.for_tenant(tenant).get(user_id="u1")
        assert _wait_for(lambda: Event.objects.for_tenant(tenant).filter(
            end_user=user, activity__name="Opened email").exists())
        # trackLink (the auto-track bundle) on a click stores a track with its properties.
        page.click("#pricing")
        assert _wait_for(lambda: Event.objects.for_tenant(tenant).filter(activity__name="Clicked pricing").exists())
        clicked = Event.objects.for_tenant(tenant).get(activity__name="Clicked pricing")
        assert clicked.end_user_id == user.id and clicked.payload["properties"]["plan"] == "pro"
        assert clicked.payload["context"]["library"]["name"] == "analytics.js"
        assert Event.objects.for_tenant(tenant).filter(type="identify", end_user=user).count() == 1
        assert Event.objects.for_tenant(tenant).filter(type="page").exists()  # the snippet's analytics.page()
        page.close()
    finally:
        site.close()
        connections.close_all()
    # No ChunkLoadError or other console error, and nothing asked of any host but ours and the customer's.
    assert errors == []
    assert hosts == {urlsplit(live_server.url).netloc, urlsplit(site.url).netloc}
