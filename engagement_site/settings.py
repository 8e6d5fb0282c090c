"""Settings for engagement_site, read only from the environment (django-environ).

With nothing set this is the embedded default: SQLite in the repo folder, eager
Celery, local-memory cache, console email, DEBUG on. Setting DATABASE_URL and
REDIS_URL switches to PostgreSQL and Redis (broker and cache). DEBUG=False
demands SECRET_KEY and ALLOWED_HOSTS and turns on the secure-transport baseline.
"""

import sys
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF

from engagement_site.config_checks import parse, refuse_bad_settings

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is a convenience for development; the process environment wins.
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env", overwrite=False)

# Numbers read from the environment, by variable, for the checks at the end of this file.
_env_numbers: dict = {}


def _int(name, default):
    _env_numbers[name] = value = parse(name, env.str(name, default=None), default, int)
    return value


def _float(name, default):
    _env_numbers[name] = value = parse(name, env.str(name, default=None), default, float)
    return value


def _bool(name, default):
    return parse(name, env.str(name, default=None), default, bool)


DEBUG = _bool("DEBUG", default=True)

if DEBUG:
    SECRET_KEY = env("SECRET_KEY", default="insecure-dev-key-only-for-local-use-0123456789abcdef")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver", "[::1]"])
else:
    # No fallbacks in production: a missing value must stop the process.
    SECRET_KEY = env("SECRET_KEY")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")

# The public address clients send events to; shown in snippets on the pages and in emails.
# Required in production (checked at the end): a localhost default would go out in emails.
# Unset (the embedded default), links follow the address each request came in on and work
# without a request uses SITE_URL_FALLBACK, which `make run` sets to http://$(HOST):$(PORT)
# (core/site.py).
SITE_URL = env("SITE_URL", default="")
SITE_URL_FALLBACK = env("SITE_URL_FALLBACK", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "engagement_site.apps.PlatformAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "csp",
    "django_htmx",
    "axes",
    "accounts",
    "events",
    "scoring",
    "surveys",
    "insights",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before the tracking API's short cut: the settings endpoint hands out this address too.
    "core.site.SiteURLMiddleware",
    # /v1/ (the tracking API) stops here: see the middleware's docstring.
    "engagement_site.middleware.TrackingAPIMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Axes must come last: it inspects the outcome of authentication.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "engagement_site.urls"
WSGI_APPLICATION = "engagement_site.wsgi.application"
ASGI_APPLICATION = "engagement_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "accounts.context_processors.tenancy",
            ],
            # core is no app (it has no models of its own): its tag libraries are named here.
            "libraries": {"workspace_time": "core.templatetags.workspace_time"},
            # Number formats and the sidebar's place on every template, without a {% load %}.
            "builtins": ["core.templatetags.engage"],
        },
    },
]

# --- Database -----------------------------------------------------------------
# `manage.py runserver` (or `django-admin runserver`): the command is always the first argument.
RUNSERVER = len(sys.argv) > 1 and sys.argv[1] == "runserver"
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Persistent connections: a new connection per request made ingestion 2-3x slower.
    DATABASES["default"]["CONN_MAX_AGE"] = _int("CONN_MAX_AGE", default=60)
    if RUNSERVER:
        # The development server answers every request on a new thread and a persistent
        # connection belongs to its thread: with a max age each request left one open until
        # it expired, and ingestion used up PostgreSQL's max_connections in a minute (503s).
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = _int("DB_CONNECT_TIMEOUT", default=5)
    # Only the ingestion path prepares statements (Django's own queries are never prepared). Their
    # parameters are arrays of ids: a plan made for one batch's values can pick a sequential scan of
    # a small tenant (0.7 ms instead of 0.15 ms for 100 end users), the generic plan uses the index.
    DATABASES["default"]["OPTIONS"].setdefault("options", "-c plan_cache_mode=force_generic_plan")
    DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default=None)}
else:
    # SQLite: wait for the writer instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

# Row-level security, the tenant backstop in the database (accounts/rls.py, docs/security.md):
# application connections run as the role `engagement_app` with the request's or task's tenant
# set per transaction. Only PostgreSQL has it; 0 turns the role switch and the settings off
# (to measure what they cost). The owner login of DATABASE_URL must be a superuser or BYPASSRLS.
DATABASE_RLS = env.bool("DATABASE_RLS", default=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- Redis: Celery broker and cache -------------------------------------------
REDIS_URL = env("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "es",
            # Fail fast when Redis is unreachable: callers such as the ingestion
            # rate limiter fail open, which only helps if the call returns.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = _bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
# Tasks record their outcome in job rows (e.g. ScoringRun); results are not needed.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Unacked tasks are redelivered after the visibility timeout, so every time
# limit and countdown must stay below it or a long task would run twice.
BROKER_VISIBILITY_TIMEOUT = _int("CELERY_VISIBILITY_TIMEOUT", default=3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": BROKER_VISIBILITY_TIMEOUT}
CELERY_TASK_TIME_LIMIT = _int("CELERY_TASK_TIME_LIMIT", default=1800)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
# The longest retry countdown of our tasks (retry_backoff_max): below the visibility timeout too.
TASK_RETRY_BACKOFF_MAX = 600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# The queue tasks go to when none is named (beat's too); workers read it with `-Q`. Lets
# two deployments (or a test worker) share one Redis without taking each other's tasks.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default="celery")
CELERY_BEAT_SCHEDULE: dict = {}

# --- Scoring (scoring app) --------------------------------------------------------
# How often today's snapshots are refreshed for every tenant; the same sweep
# finalizes yesterday once a tenant's day has ended.
SCORING_REFRESH_MINUTES = _int("SCORING_REFRESH_MINUTES", default=60)
# The embedded default (tasks eager, no beat): `runserver` refreshes a workspace's scores itself,
# looking this often for new events that have been quiet for the settle time (0 = off).
SCORING_IN_PROCESS_REFRESH_SECONDS = _float("SCORING_IN_PROCESS_REFRESH_SECONDS", default=30)
SCORING_REFRESH_SETTLE_SECONDS = _float("SCORING_REFRESH_SETTLE_SECONDS", default=10)
# Days of history a newly published model version backfills.
SCORING_BACKFILL_DAYS = _int("SCORING_BACKFILL_DAYS", default=90)
# Days per Celery task when a run fans out (a group of chunks).
SCORING_CHUNK_DAYS = _int("SCORING_CHUNK_DAYS", default=10)
# A new workspace's default for "at risk: points fell by more than this share" (each workspace sets its own).
AT_RISK_DROP_SHARE = _float("AT_RISK_DROP_SHARE", default=0.3)
# Seconds the insight pages (growth, adoption, segments, outcomes) keep a result; 0 = always compute.
# A finished scoring run invalidates at once; new events show within this time.
INSIGHTS_CACHE_SECONDS = _int("INSIGHTS_CACHE_SECONDS", default=300)
# PostgreSQL work_mem for one day's scoring transaction.
SCORING_WORK_MEM_MB = _int("SCORING_WORK_MEM_MB", default=64)
# A range of days scored in one pass (engine.compute_days): its work_mem (the grid of end users x
# days sorts in memory) and the most days one transaction scores (longer chunks are cut).
SCORING_RANGE_WORK_MEM_MB = _int("SCORING_RANGE_WORK_MEM_MB", default=256)
SCORING_RANGE_DAYS = _int("SCORING_RANGE_DAYS", default=92)
CELERY_BEAT_SCHEDULE["scoring-refresh"] = {
    "task": "scoring.tasks.refresh_all_tenants",
    "schedule": SCORING_REFRESH_MINUTES * 60,
}
# A running run with no day recorded for this long is stalled (its worker most likely died
# with the message unacknowledged, which Redis only redelivers after the visibility timeout):
# the sweeper re-enqueues its missing days. Keep it above the longest one day takes plus the
# longest a chunk may wait in the queue. Fractions allowed (tests use seconds).
SCORING_STALL_MINUTES = _float("SCORING_STALL_MINUTES", default=15)
# Resumes of one run before the sweeper gives up and marks it failed.
SCORING_STALL_MAX_RESUMES = _int("SCORING_STALL_MAX_RESUMES", default=3)
CELERY_BEAT_SCHEDULE["scoring-resume-stalled"] = {
    "task": "scoring.tasks.resume_stalled_runs",
    # Three sweeps per threshold: a stalled run resumes within 4/3 of it.
    "schedule": max(1.0, SCORING_STALL_MINUTES * 20),
}

# --- Digests (alerts app) -----------------------------------------------------------
# Digests go out from this hour of the workspace's own day (weekly ones on this weekday, 0 = Monday);
# the beat task runs hourly and sends each member's digest once per workspace day.
DIGEST_HOUR = _int("DIGEST_HOUR", default=8)
DIGEST_WEEKDAY = _int("DIGEST_WEEKDAY", default=0)
CELERY_BEAT_SCHEDULE["alerts-digests"] = {"task": "alerts.tasks.send_digests", "schedule": 60 * 60}
# --- Alerts (alerts app, docs/alerts.md) ---------------------------------------------
# Lets webhook and Slack URLs point at loopback/private addresses and use plain http: development
# and tests only (refused with DEBUG=False). On in the embedded default (DEBUG) for the demo receiver.
ALERTS_ALLOW_LOCAL_TARGETS = _bool("ALERTS_ALLOW_LOCAL_TARGETS", default=DEBUG)
if ALERTS_ALLOW_LOCAL_TARGETS and not DEBUG:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("ALERTS_ALLOW_LOCAL_TARGETS is for development and tests only (DEBUG=True).")
ALERTS_CONNECT_TIMEOUT = _float("ALERTS_CONNECT_TIMEOUT", default=3)
ALERTS_READ_TIMEOUT = _float("ALERTS_READ_TIMEOUT", default=5)
ALERTS_RESPONSE_LIMIT = 1024  # bytes of a target's answer kept in the delivery log
# Seconds before each retry of a 5xx/timeout: 1 min ... 4 h, about 8.5 hours in all.
ALERTS_RETRY_DELAYS = [60, 300, 900, 1800, 3600, 7200, 14400]
# An endpoint whose every delivery failed for this long is disabled and its owner emailed.
ALERTS_DISABLE_AFTER_HOURS = _float("ALERTS_DISABLE_AFTER_HOURS", default=24)
# A delivery claimed this long ago and still "sending" belongs to a dead worker: retried.
ALERTS_CLAIM_TIMEOUT = 300
# Only days this recent are evaluated after a run (a 90-day backfill must not alert on history).
ALERTS_EVALUATE_RECENT_DAYS = _int("ALERTS_EVALUATE_RECENT_DAYS", default=2)
CELERY_BEAT_SCHEDULE["alerts-deliver-due"] = {"task": "alerts.tasks.deliver_due", "schedule": 60}

# --- Auth -----------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:home"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24
INVITATION_TTL = timedelta(days=7)

# Login throttling (django-axes): lock a username+IP pair after repeated failures.
# With Redis the attempts live in the shared cache; the embedded default keeps
# them in the database, which every local process shares too.
AXES_FAILURE_LIMIT = _int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=_int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "accounts.security.axes_username"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "accounts/lockout.html"
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler" if REDIS_URL else "axes.handlers.database.AxesDatabaseHandler"
AXES_IPWARE_PROXY_COUNT = _int("NUM_PROXIES", default=0) or None

# --- Email ----------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="engagement_site <noreply@localhost>")

# --- I18N / static -------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# analytics.js (Segment's analytics-next standalone build), served by events/cdn.py: installed by
# `make install` (npm ci, pinned in package-lock.json), never committed.
ANALYTICS_NEXT_DIST = env(
    "ANALYTICS_NEXT_DIST", default=str(BASE_DIR / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd")
)
# Serve from the app folders when collectstatic has not run (dev, tests); production runs it.
WHITENOISE_USE_FINDERS = True

# --- API ------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "accounts.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "engagement_site API",
    "DESCRIPTION": (
        "Segment-compatible ingestion and the engagement read API.\n\n"
        "Behind gunicorn (the production shape), a request line over 4,094 bytes (method, path "
        "and query string; gunicorn's `limit_request_line`) is answered 414 URI Too Long and a header "
        "over 8,190 bytes 431, by gunicorn itself before the app: a short text/html body, not JSON, "
        "and without CORS headers. The longest id the API stores (255 characters, up to 12 bytes "
        "each percent-encoded) fits in a read API path well within that limit."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The Segment tracking endpoints are plain Django views (no DRF on the hot
    # path): this hook describes them in the schema.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "events.openapi.add_tracking_api",
        "alerts.openapi.add_webhook_event",
    ],
}
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Requests per second per write key on the ingestion API (0 = unlimited); 429 + Retry-After above.
INGEST_RATE_LIMIT_PER_SECOND = _int("INGEST_RATE_LIMIT_PER_SECOND", default=1000)
# Requests per minute per read key on the read API (0 = unlimited); 429 + Retry-After above.
READ_API_RATE_LIMIT_PER_MINUTE = _int("READ_API_RATE_LIMIT_PER_MINUTE", default=600)
# Tracking requests read write keys from a per-process cache (accounts/key_cache.py):
# the longest a revoked key keeps working when the shared cache (Redis) is down.
API_KEY_CACHE_SECONDS = _int("API_KEY_CACHE_SECONDS", default=5)
# Uploaded files (CSV backfills under imports/, deleted once imported) go through Django's storage
# API: web and workers share no disk. The default is a folder (MEDIA_ROOT); an S3-compatible bucket
# is configuration only: MEDIA_STORAGE_BACKEND=storages.backends.s3.S3Storage (pip django-storages[s3])
# and MEDIA_STORAGE_OPTIONS='{"bucket_name": "...", "endpoint_url": "https://..."}'.
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var")
MEDIA_URL = "media/"  # never served: uploads are private, read back by the workers only
STORAGES = {
    "default": {
        "BACKEND": env("MEDIA_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"),
        # No "location" for the file system: it follows MEDIA_ROOT (and tests' overrides of it).
        "OPTIONS": env.json("MEDIA_STORAGE_OPTIONS", default={}),
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CSV_IMPORT_MAX_BYTES = _int("CSV_IMPORT_MAX_BYTES", default=1024 * 1024 * 1024)

# --- The event table (events/partitions.py, docs/ingestion.md "Partitions and retention") ---
# On PostgreSQL events_event is partitioned by month of its tenant day (set when migrating; 0 keeps
# the plain table, the benchmark's baseline). Beat creates this many months ahead of the current one.
EVENTS_PARTITIONED = _bool("EVENTS_PARTITIONED", default=True)
EVENTS_PARTITION_MONTHS_AHEAD = _int("EVENTS_PARTITION_MONTHS_AHEAD", default=2)
# Raw events older than this many whole months are dropped (0 = kept forever); a workspace may keep
# fewer (Tenant.events_retention_months). The rollup, scores and insights keep the history.
EVENTS_RETENTION_MONTHS = _int("EVENTS_RETENTION_MONTHS", default=0)
CELERY_BEAT_SCHEDULE["events-partitions"] = {
    "task": "events.maintain_partitions",
    "schedule": 6 * 3600,
}

# Answers per IP per share link per hour on a survey's public link (0 = unlimited); 429 above.
SURVEY_SHARE_LINK_LIMIT_PER_HOUR = _int("SURVEY_SHARE_LINK_LIMIT_PER_HOUR", default=20)

# --- Security baseline ----------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Never redirect the tracking API to HTTPS: clients replay a redirected POST
# as a GET and the events are lost. (Its clients send HTTPS by default.)
SECURE_REDIRECT_EXEMPT = [r"^v1/"]
if not DEBUG:
    SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = _int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Strict CSP: only our own scripts and styles, inline script only with the nonce.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Tests set this to turn a missing PostgreSQL/Redis into a failure, not a skip.
REQUIRE_SERVICES = _bool("REQUIRE_SERVICES", default=False)

# Last: refuse to start (every process: manage.py, gunicorn, Celery) with inconsistent values.
refuse_bad_settings(globals(), allow_unsafe=_bool("UNSAFE_SETTINGS_OK", default=False))
