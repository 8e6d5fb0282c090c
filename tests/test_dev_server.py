"""`manage.py runserver` against PostgreSQL holds no connection after its requests end.

The development server answers each request on a new thread, and a persistent connection
(CONN_MAX_AGE) belongs to its thread: ingestion through runserver once used up the
server's 100 connections in about a minute (503s). Settings force CONN_MAX_AGE=0 under
runserver; this starts a real one and counts its connections in pg_stat_activity.
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.request import Request, urlopen

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _connections(app_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [app_name])
        return cursor.fetchone()[0]


def test_runserver_closes_its_connections_after_each_request(postgres, tmp_path):
    db = connection.settings_dict
    app_name = f"runserver-test-{uuid.uuid4().hex[:8]}"  # libpq's PGAPPNAME tags the server's connections
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CONN_MAX_AGE": "600",  # even asked for persistent connections, runserver keeps none
        "PGAPPNAME": app_name,
    }
    env.pop("REDIS_URL", None)
    log = tmp_path / "runserver.log"
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/login/"
        deadline = time.monotonic() + 60
        while True:
            try:
                urlopen(url, timeout=5).read()  # noqa: S310 - our own local server
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError(f"runserver did not answer:\n{log.read_text()[-4000:]}") from None
                time.sleep(0.3)

        def get(_):
            # A session cookie makes the page read the session table: every request queries the database.
            request = Request(url, headers={"Cookie": f"sessionid={uuid.uuid4().hex}"})
            with urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status

        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = list(pool.map(get, range(30)))
        assert statuses == [200] * 30
        # Each request's thread closed its connection when the response ended.
        deadline = time.monotonic() + 10
        while _connections(app_name) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _connections(app_name) == 0
    finally:
        server.terminate()
        server.wait(timeout=30)
