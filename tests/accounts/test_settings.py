"""Settings read from the environment, the Celery configuration and the security headers.

The settings tests start `manage.py` in a subprocess with a controlled environment,
because settings are read once per process. None of them needs a running service.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)

# Variables the settings read; each test sets the ones it is about.
SETTINGS_VARIABLES = {
    "DATABASE_URL",
    "REDIS_URL",
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CELERY_TASK_ALWAYS_EAGER",
    "EMAIL_URL",
    "SECURE_SSL_REDIRECT",
    "CELERY_VISIBILITY_TIMEOUT",
    "CELERY_TASK_TIME_LIMIT",
    "TEST_DATABASE_NAME",
    "SITE_URL",
    "CONN_MAX_AGE",
    "SCORING_STALL_MINUTES",
    "SCORING_CHUNK_DAYS",
    "AT_RISK_DROP_SHARE",
    "CELERY_QUEUE",
    "UNSAFE_SETTINGS_OK",
}


def manage(*args, **env_overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    env["DJANGO_SETTINGS_MODULE"] = "engagement_site.settings"
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


PRINT_SETTINGS = """
import json
from django.conf import settings as s
print(json.dumps({
    "engine": s.DATABASES["default"]["ENGINE"],
    "cache": s.CACHES["default"]["BACKEND"],
    "cache_location": s.CACHES["default"].get("LOCATION"),
    "broker": s.CELERY_BROKER_URL,
    "eager": s.CELERY_TASK_ALWAYS_EAGER,
    "email": s.EMAIL_BACKEND,
    "debug": s.DEBUG,
    "axes_handler": s.AXES_HANDLER,
}))
"""


def read_settings(**env) -> dict:
    result = manage("shell", "-c", PRINT_SETTINGS, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def random_secret_key() -> str:
    return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789!@#%^*(-_=+)") for _ in range(50))


def test_the_deploy_check_passes_in_production_mode():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="False",
        SECRET_KEY=random_secret_key(),
        ALLOWED_HOSTS="example.com",
        SITE_URL="https://example.com",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# --- Settings that would break silently refuse to start ------------------------------

PRODUCTION = {"DEBUG": "False", "SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "example.com", "SITE_URL": "https://example.com"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CELERY_TASK_TIME_LIMIT": "60"}, "CELERY_TASK_TIME_LIMIT=60 must be more than 60 seconds"),
        ({"CELERY_TASK_TIME_LIMIT": "45"}, "every task would fail with SoftTimeLimitExceeded"),
        (
            {"CELERY_VISIBILITY_TIMEOUT": "1200"},
            "CELERY_TASK_TIME_LIMIT=1800 must be below CELERY_VISIBILITY_TIMEOUT=1200",
        ),
        (
            {"CELERY_VISIBILITY_TIMEOUT": "500", "CELERY_TASK_TIME_LIMIT": "300", "SCORING_STALL_MINUTES": "5"},
            "must be more than the longest retry countdown (600 s)",
        ),
        ({"SCORING_STALL_MINUTES": "60"}, "SCORING_STALL_MINUTES=60 must be shorter than CELERY_VISIBILITY_TIMEOUT"),
        ({"SCORING_STALL_MINUTES": "0"}, "SCORING_STALL_MINUTES=0 must be more than 0"),
        ({"SCORING_CHUNK_DAYS": "0"}, "SCORING_CHUNK_DAYS=0 must be at least 1"),
        ({"AT_RISK_DROP_SHARE": "30"}, "AT_RISK_DROP_SHARE=30 must be a share above 0 and at most 1"),
        ({"SITE_URL": "engage.example.com"}, "must be an absolute http(s) address"),
        ({**PRODUCTION, "SITE_URL": ""}, "SITE_URL is required when DEBUG=False"),
        ({"CELERY_TASK_TIME_LIMIT": "30m"}, "CELERY_TASK_TIME_LIMIT='30m' is not a whole number"),
        ({"DEBUG": "Flase"}, "DEBUG='Flase' is not a boolean"),
        (
            {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x", "CONN_MAX_AGE": "-5"},
            "CONN_MAX_AGE=-5 must be at least 0",
        ),
    ],
)
def test_bad_settings_stop_manage_py_with_a_clear_message(env, message):
    result = manage("check", **env)

    assert result.returncode != 0
    assert message in result.stderr
    assert "ImproperlyConfigured: engagement_site will not start" in result.stderr or "is not a" in result.stderr


def test_unsafe_settings_ok_lets_a_development_process_start_but_never_production():
    development = manage("check", CELERY_VISIBILITY_TIMEOUT="3", UNSAFE_SETTINGS_OK="1")
    assert development.returncode == 0, development.stderr
    assert "UNSAFE_SETTINGS_OK=1, starting anyway" in development.stderr
    assert "CELERY_TASK_TIME_LIMIT=1800 must be below CELERY_VISIBILITY_TIMEOUT=3" in development.stderr

    production = manage("check", CELERY_VISIBILITY_TIMEOUT="3", UNSAFE_SETTINGS_OK="1", **PRODUCTION)
    assert production.returncode != 0
    assert "must be below CELERY_VISIBILITY_TIMEOUT=3" in production.stderr


def test_bad_settings_stop_the_celery_worker_and_the_web_server():
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    env.update(CELERY_TASK_TIME_LIMIT="60", DJANGO_SETTINGS_MODULE="engagement_site.settings")
    worker = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "engagement_site", "worker", "--pool=solo"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert worker.returncode != 0
    assert "CELERY_TASK_TIME_LIMIT=60 must be more than 60 seconds" in worker.stderr + worker.stdout
    web = subprocess.run(
        [sys.executable, "-c", "import engagement_site.wsgi"],  # what gunicorn imports
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert web.returncode != 0
    assert "CELERY_TASK_TIME_LIMIT=60 must be more than 60 seconds" in web.stderr


# --- Connections under the development server ------------------------------------------

PRINT_CONN_MAX_AGE = """
import sys
sys.argv = {argv!r}
import django
django.setup()
from django.conf import settings
print(settings.DATABASES["default"]["CONN_MAX_AGE"])
"""


@pytest.mark.parametrize(
    ("argv", "expected"),
    [(["manage.py", "runserver", "0:8000"], "0"), (["manage.py", "migrate"], "60"), (["gunicorn"], "60")],
)
def test_the_development_server_keeps_no_connection_per_thread(argv, expected):
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    env.update(DJANGO_SETTINGS_MODULE="engagement_site.settings", DATABASE_URL="postgres://postgres@127.0.0.1:5432/x")
    result = subprocess.run(
        [sys.executable, "-c", PRINT_CONN_MAX_AGE.format(argv=argv)],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_production_mode_demands_a_secret_key():
    result = manage("check", DEBUG="False", ALLOWED_HOSTS="example.com")

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_mode_demands_allowed_hosts():
    result = manage("check", DEBUG="False", SECRET_KEY=random_secret_key())

    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr


def test_the_embedded_default():
    values = read_settings()

    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert values["eager"] is True
    assert values["broker"] == "memory://"
    assert values["email"] == "django.core.mail.backends.console.EmailBackend"
    assert values["debug"] is True
    assert values["axes_handler"] == "axes.handlers.database.AxesDatabaseHandler"


def test_postgres_and_redis_from_the_environment():
    redis = "redis://127.0.0.1:6379/0"

    values = read_settings(DATABASE_URL="postgres://postgres@127.0.0.1:5432/x", REDIS_URL=redis)

    assert values["engine"] == "django.db.backends.postgresql"
    assert values["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert values["cache_location"] == redis
    assert values["broker"] == redis
    assert values["eager"] is False
    assert values["axes_handler"] == "axes.handlers.cache.AxesCacheHandler"


# --- Celery ---------------------------------------------------------------------


def test_celery_is_configured_for_safe_delivery():
    from engagement_site.celery import app

    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    # An unacked task is redelivered after the visibility timeout: every limit must stay below it.
    visibility = conf.broker_transport_options["visibility_timeout"]
    assert conf.task_time_limit < visibility
    assert conf.task_soft_time_limit < conf.task_time_limit


# --- Security headers -------------------------------------------------------------


def csp_directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@pytest.mark.parametrize("path", ["/", "/login/", "/signup/"])
def test_pages_carry_a_strict_csp(client, db, path):
    directives = csp_directives(client.get(path))

    assert directives["script-src"][0] == "'self'"
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-eval'" not in directives["script-src"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]


def test_tenant_pages_carry_a_strict_csp(owner_client, tenant):
    directives = csp_directives(owner_client.get(f"/t/{tenant.slug}/"))

    assert directives["script-src"][0] == "'self'"
    assert directives["object-src"] == ["'none'"]


@pytest.mark.urls("tests.accounts.csp_urls")
def test_an_inline_script_runs_only_with_the_nonce(client, db):
    response = client.get("/inline-script/")

    directives = csp_directives(response)
    assert directives["script-src"][:1] == ["'self'"]
    nonces = [v for v in directives["script-src"] if v.startswith("'nonce-")]
    assert len(nonces) == 1
    nonce = nonces[0][len("'nonce-") : -1]
    assert f'<script nonce="{nonce}">' in response.content.decode()
    # A new nonce on every response.
    assert client.get("/inline-script/")["Content-Security-Policy"] != response["Content-Security-Policy"]


def test_the_tracking_api_answers_json_without_a_csp(client, db):
    """A policy is for documents a browser renders; /v1/ answers SDKs (and skips its cost per request)."""
    response = client.options("/v1/batch", HTTP_ORIGIN="https://shop.example.com")

    assert response.status_code == 200
    assert "Content-Security-Policy" not in response
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in client.get("/v1nope/")  # only the /v1/ prefix


def test_the_tracking_api_skips_the_page_middleware(client, db):
    """/v1/ goes from SecurityMiddleware straight to its view: no session, no CSRF cookie, no frame header."""
    client.cookies["sessionid"] = "not-a-session"
    response = client.post("/v1/batch", data="{", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert not response.cookies
    assert "X-Frame-Options" not in response
    assert response.wsgi_request.resolver_match.url_name == "track"
    assert not hasattr(response.wsgi_request, "session")
    page = client.get("/login/")
    assert page["X-Frame-Options"] == "DENY"
    assert hasattr(page.wsgi_request, "session")


def test_the_tracking_api_keeps_the_host_check_and_content_length(client, db, settings):
    settings.ALLOWED_HOSTS = ["ingest.example.com"]

    refused = client.post("/v1/batch", data="{}", content_type="application/json", HTTP_HOST="evil.example")
    assert refused.status_code == 400  # DisallowedHost, as on every other path
    response = client.options("/v1/batch", HTTP_HOST="ingest.example.com")
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(response.content))


def test_any_v1_path_answers_json(client, db):
    for path in ("/v1/nope", "/v1/a%0Ab", "/v1/batch%0A"):
        response = client.post(path, data="{}", content_type="application/json")
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
        assert response["Access-Control-Allow-Origin"] == "*"


def test_pages_carry_the_other_security_headers(client, db):
    response = client.get("/login/")

    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
