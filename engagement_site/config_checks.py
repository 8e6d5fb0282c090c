"""Startup validation of settings read from the environment.

settings.py calls `refuse_bad_settings(globals())` last, so every process that loads
the settings (manage.py check/runserver/migrate, gunicorn, the Celery worker and beat)
refuses to start with one message naming every bad value, instead of starting and
failing later (every task with SoftTimeLimitExceeded, tasks run twice, emails with
a localhost link). A Django system check would not stop gunicorn or Celery: neither
acts on check results.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on", "y", "t"}
FALSE = {"0", "false", "no", "off", "n", "f"}

# Celery's soft time limit comes this many seconds before the hard one (settings.py).
SOFT_LIMIT_MARGIN = 60


def parse(name: str, raw: str | None, default: Any, cast: Callable[[str], Any]) -> Any:
    """`raw` (an environment value) as `cast` (int, float or bool); unset or empty gives `default`.

    django-environ reports a bad number as "invalid literal for int()" without the variable's
    name, and reads any unknown word as False for a boolean ("DEBUG=Flase" is production).
    """
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip()
    if cast is bool:
        if value.lower() in TRUE:
            return True
        if value.lower() in FALSE:
            return False
        raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use True or False.")
    try:
        return cast(value)
    except ValueError:
        kind = "a whole number" if cast is int else "a number"
        raise ImproperlyConfigured(f"{name}={raw!r} is not {kind}.") from None


# (setting, smallest allowed value, what it is): the environment variable has the same name
# unless the settings table in README says otherwise.
MINIMUMS = [
    ("CELERY_VISIBILITY_TIMEOUT", 1, "seconds"),
    ("SCORING_REFRESH_MINUTES", 1, "minutes"),
    ("SCORING_BACKFILL_DAYS", 1, "days"),
    ("SCORING_CHUNK_DAYS", 1, "days"),
    ("SCORING_WORK_MEM_MB", 1, "MB"),
    ("SCORING_STALL_MAX_RESUMES", 0, "resumes"),
    ("CSV_IMPORT_MAX_BYTES", 1, "bytes"),
    ("INSIGHTS_CACHE_SECONDS", 0, "seconds"),
    ("API_KEY_CACHE_SECONDS", 0, "seconds"),
    ("INGEST_RATE_LIMIT_PER_SECOND", 0, "requests per second"),
    ("SURVEY_SHARE_LINK_LIMIT_PER_HOUR", 0, "answers per hour"),
    ("AXES_FAILURE_LIMIT", 1, "failed log-ins"),
    ("AXES_COOLOFF_MINUTES", 1, "minutes"),
    ("NUM_PROXIES", 0, "proxies"),
    ("CONN_MAX_AGE", 0, "seconds"),
    ("DB_CONNECT_TIMEOUT", 1, "seconds"),
]


def problems(s: dict[str, Any]) -> list[str]:
    """Every inconsistency in a settings namespace (settings.py's globals), as sentences."""
    found = []
    for name, minimum, unit in MINIMUMS:
        value = s.get("_env_numbers", {}).get(name)
        if value is not None and value < minimum:
            found.append(f"{name}={value} must be at least {minimum} ({unit}).")

    visibility = s["BROKER_VISIBILITY_TIMEOUT"]
    limit = s["CELERY_TASK_TIME_LIMIT"]
    if limit <= SOFT_LIMIT_MARGIN:
        found.append(
            f"CELERY_TASK_TIME_LIMIT={limit} must be more than {SOFT_LIMIT_MARGIN} seconds: the soft limit "
            f"comes {SOFT_LIMIT_MARGIN} s earlier ({limit - SOFT_LIMIT_MARGIN} s), so every task would fail "
            "with SoftTimeLimitExceeded."
        )
    if limit >= visibility:
        found.append(
            f"CELERY_TASK_TIME_LIMIT={limit} must be below CELERY_VISIBILITY_TIMEOUT={visibility}: Redis "
            "hands a task still running after the visibility timeout to another worker, so it would run twice."
        )
    backoff = s["TASK_RETRY_BACKOFF_MAX"]
    if backoff >= visibility:
        found.append(
            f"CELERY_VISIBILITY_TIMEOUT={visibility} must be more than the longest retry countdown "
            f"({backoff} s): a task waiting longer than the visibility timeout is delivered again and again."
        )
    stall = s["SCORING_STALL_MINUTES"]
    if stall <= 0:
        found.append(f"SCORING_STALL_MINUTES={stall:g} must be more than 0.")
    elif stall * 60 >= visibility:
        found.append(
            f"SCORING_STALL_MINUTES={stall:g} must be shorter than CELERY_VISIBILITY_TIMEOUT={visibility} s, "
            "or the stall sweeper never resumes a run before the broker redelivers it."
        )
    share = s["AT_RISK_DROP_SHARE"]
    if not 0 < share <= 1:
        found.append(f"AT_RISK_DROP_SHARE={share:g} must be a share above 0 and at most 1 (e.g. 0.3).")

    site_url = s["SITE_URL"]
    if not s["DEBUG"] and not site_url:
        found.append(
            "SITE_URL is required when DEBUG=False: it is the address in invitation and password-reset "
            "emails and in the tracking snippets (e.g. https://engage.example.com)."
        )
    elif site_url:
        parts = urlsplit(site_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            found.append(f"SITE_URL={site_url!r} must be an absolute http(s) address, e.g. https://engage.example.com.")
    return found


def refuse_bad_settings(s: dict[str, Any], *, allow_unsafe: bool = False) -> None:
    """Raise on any problem. `allow_unsafe` (UNSAFE_SETTINGS_OK=1, honoured only with DEBUG) turns
    the refusal into a warning on stderr: for a test that needs a bad value on purpose, such as a
    3 s visibility timeout to watch Redis redeliver a task."""
    found = problems(s)
    if not found:
        return
    message = "engagement_site will not start with these settings:\n" + "\n".join(f"  - {p}" for p in found)
    if allow_unsafe and s["DEBUG"]:
        print(f"UNSAFE_SETTINGS_OK=1, starting anyway. {message}", file=sys.stderr)
        return
    raise ImproperlyConfigured(message)
