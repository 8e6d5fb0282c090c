"""`make run PORT=…` on a port that is not 8000: the links a newcomer copies carry that port.

A real `manage.py runserver` on a free port, started as the Makefile starts it (no SITE_URL,
SITE_URL_FALLBACK from HOST and PORT, eager Celery, console email), against the test database
(PostgreSQL: the server is another process and must see the test's rows). The setup snippet, a
survey share link and an invitation email (printed by the console backend) all name that port.
"""

import os
import re
import socket
import subprocess
import sys
import time
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, Request, build_opener

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import Role
from tests.surveys import factories

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(postgres, tmp_path):
    db = connection.settings_dict
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "SITE_URL": "",
        "SITE_URL_FALLBACK": f"http://127.0.0.1:{port}",  # what the Makefile exports for PORT
        "EMAIL_URL": "consolemail://",
    }
    env.pop("REDIS_URL", None)  # the embedded default: tasks run in the server's process
    log = tmp_path / "runserver.log"
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    opener = build_opener(HTTPCookieProcessor(CookieJar()))
    deadline = time.monotonic() + 60
    while True:
        try:
            opener.open(base + "/login/", timeout=5).read()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError(f"runserver did not answer:\n{log.read_text()[-4000:]}") from None
            time.sleep(0.3)
    try:
        yield base, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_links_carry_the_port_of_a_real_server(server, tenant, owner):
    base, log = server
    port = base.rsplit(":", 1)[1]
    assert port != "8000"
    # A logged-in session made here, used by the browser-like client below.
    client = Client()
    client.force_login(owner)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    jar = CookieJar()
    opener = build_opener(HTTPCookieProcessor(jar))
    opener.addheaders = [("Cookie", f"{settings.SESSION_COOKIE_NAME}={session}")]

    def get(path: str) -> str:
        with opener.open(base + path, timeout=30) as response:
            return response.read().decode()

    setup = get(reverse("events:setup", args=[tenant.slug]))
    assert f"{base}/v1/track" in setup and "127.0.0.1:8000" not in setup

    survey = factories.survey(tenant)
    members_path = reverse("accounts:members", args=[tenant.slug])
    page = get(members_path)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    csrf_cookie = next(c.value for c in jar if c.name == settings.CSRF_COOKIE_NAME)
    cookies = f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={csrf_cookie}"

    def post(path: str, data: dict) -> None:
        body = urlencode({"csrfmiddlewaretoken": token, **data}).encode()
        request = Request(base + path, data=body, headers={"Cookie": cookies, "Referer": base + path})
        with build_opener().open(request, timeout=30) as response:
            assert response.status == 200, response.status

    post(members_path, {"email": "newcomer@example.com", "role": Role.VIEWER, "department": "other"})
    share_path = reverse("surveys:create_share_link", args=[tenant.slug, survey.public_id])
    post(share_path, {})
    detail = get(reverse("surveys:detail", args=[tenant.slug, survey.public_id]))
    assert f"{base}/s/" in detail

    # The invitation email, printed by the console backend of the server's process.
    deadline = time.monotonic() + 10
    while f"{base}/invite/" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    text = log.read_text()
    assert "newcomer@example.com" in text and f"{base}/invite/" in text
    assert "127.0.0.1:8000" not in text
