"""Benchmark the scoring engine on PostgreSQL against a hand-written query and pandas.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/engagement .venv/bin/python bench/score.py [--events 1000000]

Creates (and drops at the end) a separate database `engagement_bench` on the
same server, migrates it, and loads a synthetic tenant with COPY: 10,000 end
users, 500 accounts, 20 activities, N events over 90 days, plus their daily
rollup. Then, in separate processes so each peak memory is its own:

- score: one day's snapshots for all users and accounts (engine.compute_day, and
  engine.compute_days for that one day), then a 90-day backfill through the
  `score` command's code path twice, each on a clean slate: the per-day engine
  (SCORING_RANGE_DAYS=1, a transaction per day: the baseline) and the range
  engine (engine.compute_days over ranges of SCORING_RANGE_DAYS days);
- floor: one hand-written SQL query computing the same day's points straight
  from the events;
- pandas: load the window's events from PostgreSQL (COPY, the fastest route)
  and group-by in pandas.

Prints one table with the times, ratios and peak RSS. Use --keep to keep the
database, --events 3000000 for the larger run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = os.environ.get("BENCH_DB", "engagement_bench")  # on a shared server, your own name
USERS, ACCOUNTS, ACTIVITIES, DAYS = 10_000, 500, 20, 90
WINDOW, CAP, HALF_LIFE = 30, 10, 14
TODAY = date(2026, 6, 30)
BACKFILL_DAYS = [DAYS]


def bench_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{BENCH_DB}"))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def django_setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)  # eager Celery: the benchmark runs everything in process
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engagement_site.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def tenant_rows(cursor, table: str, tenant, columns: str = "id") -> list[tuple]:
    """`columns` of the tenant's rows of `table` in id order (the ids a COPY just gave them)."""
    from accounts.scoping import tenant_sql

    where, params = tenant_sql(tenant)
    cursor.execute(f"SELECT {columns} FROM {table} WHERE {where} ORDER BY id", params)  # noqa: S608 - constants
    return cursor.fetchall()


# --- load -------------------------------------------------------------------------------


def create_database(url: str) -> None:
    import psycopg

    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def drop_database(url: str) -> None:
    import psycopg

    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")


def load(url: str, events: int) -> dict:
    import numpy as np
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from accounts.models import Tenant
    from accounts.scoping import tenant_sql
    from events.models import Activity
    from scoring import services
    from scoring.models import ModelStatus, ScoringModel

    started = time.perf_counter()
    tenant = Tenant.objects.create(name="Bench", slug="bench", product_name="Bench", time_zone="UTC")
    activities = [Activity.objects.create(tenant=tenant, name=f"Activity {i:02d}") for i in range(ACTIVITIES)]
    rng = np.random.default_rng(7)
    with connection.cursor() as cursor:
        # The synthetic rows are consistent by construction: skip the FK triggers while loading.
        cursor.execute("SET session_replication_role = replica")
        raw = cursor.connection
        with raw.cursor().copy(
            "COPY events_customeraccount (tenant_id, public_id, group_id, name, traits, trait_times, first_seen_at, "
            "updated_at) "
            "FROM STDIN"
        ) as copy:
            for i in range(ACCOUNTS):
                copy.write(f"{tenant.pk}\t{uuid4()}\tg{i}\tAccount {i}\t{{}}\t{{}}\t2026-01-01\t2026-01-01\n")
        account_ids = [r[0] for r in tenant_rows(cursor, "events_customeraccount", tenant)]
        with raw.cursor().copy(
            "COPY events_enduser (tenant_id, public_id, user_id, traits, trait_times, account_id, first_seen_at, "
            "updated_at) "
            "FROM STDIN"
        ) as copy:
            for i in range(USERS):
                copy.write(
                    f"{tenant.pk}\t{uuid4()}\tu{i}\t{{}}\t{{}}\t{account_ids[i % ACCOUNTS]}\t2026-01-01\t2026-01-01\n"
                )
        # Each end user is a member of its account from the start (as events.0008 migrated them).
        cursor.execute(
            """INSERT INTO events_accountmembership (tenant_id, end_user_id, account_id, started_at)
            SELECT tenant_id, id, account_id, first_seen_at FROM events_enduser WHERE tenant_id = %s""",
            [tenant.pk],
        )
        user_rows = tenant_rows(cursor, "events_enduser", tenant, "id, account_id")
    user_ids = np.array([r[0] for r in user_rows])
    user_account = np.array([r[1] for r in user_rows])
    activity_ids = np.array([a.pk for a in activities])
    # Skewed like real products: a few heavy users, frequent cheap activities, rare valuable ones.
    user_weight = rng.lognormal(0, 1.0, USERS)
    user_weight /= user_weight.sum()
    activity_weight = 1.0 / np.arange(1, ACTIVITIES + 1) ** 1.1
    activity_weight /= activity_weight.sum()
    chunk = 250_000
    loaded = 0
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        raw = cursor.connection
        with raw.cursor().copy(
            "COPY events_event (tenant_id, message_id, type, end_user_id, activity_id, account_id, timestamp, "
            "received_at, day, payload) FROM STDIN"
        ) as copy:
            while loaded < events:
                n = min(chunk, events - loaded)
                u = rng.choice(USERS, n, p=user_weight)
                a = rng.choice(ACTIVITIES, n, p=activity_weight)
                d = rng.integers(0, DAYS, n)
                s = rng.integers(0, 86400, n)
                buf = io.StringIO()
                for k in range(n):
                    day = TODAY - timedelta(days=int(d[k]))
                    sec = int(s[k])
                    ts = f"{day} {sec // 3600:02d}:{sec % 3600 // 60:02d}:{sec % 60:02d}+00"
                    buf.write(
                        f"{tenant.pk}\tb{loaded + k}\ttrack\t{user_ids[u[k]]}\t{activity_ids[a[k]]}\t"
                        f"{user_account[u[k]]}\t{ts}\t{ts}\t{day}\t{{}}\n"
                    )
                copy.write(buf.getvalue())
                loaded += n
        # In day order, as ingestion writes the rollup (events arrive roughly in time order).
        where, params = tenant_sql(tenant)
        cursor.execute(
            f"""INSERT INTO events_dailyactivitycount (tenant_id, end_user_id, activity_id, day, "count")
            SELECT tenant_id, end_user_id, activity_id, day, COUNT(*) FROM events_event
            WHERE {where} GROUP BY tenant_id, end_user_id, activity_id, day
            ORDER BY day""",  # noqa: S608 - constants
            params,
        )
        rollup_rows = cursor.rowcount
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("ANALYZE")
    # Points like a real model: cheap frequent activities, valuable rare ones.
    draft = services.scoring_model_create_draft(tenant=tenant)
    services.scoring_model_update(
        model=draft,
        points={a.pk: 1 + 5 * i for i, a in enumerate(activities)},
        window_days=WINDOW,
        daily_cap=CAP,
        half_life_days=HALF_LIFE,
    )
    ScoringModel.objects.for_tenant(draft.tenant_id).filter(pk=draft.pk).update(status=ModelStatus.PUBLISHED)
    return {"events": loaded, "rollup_rows": rollup_rows, "load_seconds": round(time.perf_counter() - started, 1)}


def uuid4() -> str:
    import uuid

    return str(uuid.uuid4())


# --- the three contenders ------------------------------------------------------------------


def _model():
    from accounts.models import Tenant
    from scoring.models import ModelStatus, ScoringModel

    tenant = Tenant.objects.get(slug="bench")
    return ScoringModel.objects.select_related("tenant").get(tenant=tenant, status=ModelStatus.PUBLISHED)


def _truncate_snapshots() -> None:
    """A clean slate: earlier snapshots would make a backfill's deletes (and its unique checks) do work."""
    from django.db import connection

    with _owner(), connection.cursor() as cursor:
        for table in ("scoring_userscore", "scoring_accountscore", "scoring_productscore", "scoring_scoringrun"):
            cursor.execute(f"TRUNCATE {table} CASCADE")
        # A backfill writes ~1 GB of WAL: flush the previous one's now, not during the next one.
        cursor.execute("CHECKPOINT")


@contextlib.contextmanager
def _owner():
    """TRUNCATE is the owner's (row-level security: the application role may not)."""
    try:
        from accounts import rls
    except ImportError:  # code from before row-level security
        yield
        return
    with rls.owner_session():
        yield


def _backfill(model, range_days: int) -> tuple[float, int]:
    """The `score` command's code path (run_in_foreground) over BACKFILL_DAYS, on a clean slate,
    with ranges of `range_days` days per transaction (1: the per-day engine, a day per transaction)."""
    from django.conf import settings

    from scoring import services
    from scoring.models import RunKind

    _truncate_snapshots()
    previous, settings.SCORING_RANGE_DAYS = settings.SCORING_RANGE_DAYS, range_days
    try:
        run = services.run_create(
            model=model, kind=RunKind.COMMAND, first_day=TODAY - timedelta(days=BACKFILL_DAYS[0] - 1), last_day=TODAY
        )
        t = time.perf_counter()
        run = services.run_in_foreground(run)
        return time.perf_counter() - t, run.rows_written
    finally:
        settings.SCORING_RANGE_DAYS = previous


def score(url: str, repeat: int) -> dict:
    from django.conf import settings

    from scoring import engine

    model = _model()
    engine.compute_day(model, TODAY)  # warm the caches like the other contenders
    one_day, one_day_range = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        result = engine.compute_day(model, TODAY)
        one_day.append(time.perf_counter() - t)
        t = time.perf_counter()
        engine.compute_days(model, [TODAY])
        one_day_range.append(time.perf_counter() - t)
    # The baseline first: the per-day engine, a transaction per day (what the backfill ran before the
    # range engine), then the range engine (ranges of SCORING_RANGE_DAYS days); each on a clean slate.
    per_day, per_day_rows = _backfill(model, 1)
    backfill, rows = _backfill(model, settings.SCORING_RANGE_DAYS)
    return {
        "one_day_seconds": statistics.median(one_day),
        "one_day_range_seconds": statistics.median(one_day_range),
        "one_day_rows": result.rows,
        "backfill_seconds": backfill,
        "backfill_rows": rows,
        "backfill_per_day_seconds": per_day,
        "backfill_per_day_rows": per_day_rows,
        "range_days": settings.SCORING_RANGE_DAYS,
        "peak_mb": peak_mb(),
    }


FLOOR_SQL = """
SELECT e.end_user_id, SUM(w.points * LEAST(e.c, %(cap)s) * power(0.5, (%(day)s::date - e.day) / %(hl)s::float))
FROM (
    SELECT end_user_id, activity_id, day, COUNT(*) AS c FROM events_event
    WHERE tenant_id = %(tenant)s AND day BETWEEN %(first)s AND %(day)s
    GROUP BY end_user_id, activity_id, day
) e JOIN scoring_activityweight w ON w.activity_id = e.activity_id AND w.model_id = %(model)s
GROUP BY e.end_user_id
"""


def floor(url: str, repeat: int) -> dict:
    from django.db import connection

    model = _model()
    params = {
        "cap": CAP,
        "day": TODAY,
        "hl": HALF_LIFE,
        "tenant": model.tenant_id,
        "model": model.pk,
        "first": TODAY - timedelta(days=WINDOW - 1),
    }
    times = []
    with connection.cursor() as cursor:
        if repeat > 1:
            cursor.execute(FLOOR_SQL, params)
            cursor.fetchall()
        for _ in range(repeat):
            t = time.perf_counter()
            cursor.execute(FLOOR_SQL, params)
            rows = cursor.fetchall()
            times.append(time.perf_counter() - t)
    return {"floor_seconds": statistics.median(times), "floor_users": len(rows), "peak_mb": peak_mb()}


def pandas_baseline(url: str, repeat: int) -> dict:
    import pandas as pd
    from django.db import connection

    from accounts.scoping import tenant_sql

    model = _model()
    weights = pd.Series(dict(model.weights.values_list("activity_id", "points")), name="points")
    first = TODAY - timedelta(days=WINDOW - 1)
    where, params = tenant_sql(model.tenant_id)
    query = (
        "COPY (SELECT end_user_id, activity_id, day FROM events_event "  # noqa: S608 - constants
        f"WHERE {where} AND day BETWEEN %s AND %s) TO STDOUT WITH CSV"
    )
    params += [first, TODAY]
    loads, groups = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        buf = io.BytesIO()
        with connection.cursor() as cursor, cursor.connection.cursor().copy(query, params) as copy:
            for block in copy:
                buf.write(block)
        buf.seek(0)
        df = pd.read_csv(buf, names=["end_user_id", "activity_id", "day"], parse_dates=["day"])
        loaded = time.perf_counter()
        counts = df.groupby(["end_user_id", "activity_id", "day"]).size().clip(upper=CAP).rename("c").reset_index()
        age = (pd.Timestamp(TODAY) - counts["day"]).dt.days
        counts["pts"] = counts["c"] * counts["activity_id"].map(weights) * 0.5 ** (age / HALF_LIFE)
        points = counts.groupby("end_user_id")["pts"].sum()
        done = time.perf_counter()
        loads.append(loaded - t)
        groups.append(done - loaded)
    return {
        "pandas_load_seconds": statistics.median(loads),
        "pandas_groupby_seconds": statistics.median(groups),
        "pandas_seconds": statistics.median(a + b for a, b in zip(loads, groups, strict=True)),
        "pandas_users": len(points),
        "peak_mb": peak_mb(),
    }


def count(url: str, repeat: int) -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM events_event")
        events = cursor.fetchone()[0]
        cursor.execute("SELECT COUNT(*) FROM events_dailyactivitycount")
        rollup_rows = cursor.fetchone()[0]
    # A clean slate for the engine: earlier runs' snapshots would make its deletes do work.
    _truncate_snapshots()
    return {"events": events, "rollup_rows": rollup_rows, "load_seconds": 0}


def compare(url: str, repeat: int) -> dict:
    """Engine, floor and pandas in turn, `repeat` rounds: the machine's load hits all three alike."""
    from scoring import engine

    model = _model()
    engine.compute_day(model, TODAY)
    times: dict[str, list[float]] = {"engine": [], "floor": [], "pandas": []}
    for _ in range(repeat):
        t = time.perf_counter()
        engine.compute_day(model, TODAY)
        times["engine"].append(time.perf_counter() - t)
        times["floor"].append(floor(url, 1)["floor_seconds"])
        times["pandas"].append(pandas_baseline(url, 1)["pandas_seconds"])
    return {f"{name}_seconds": statistics.median(values) for name, values in times.items()} | {
        f"{name}_all": [round(v, 3) for v in values] for name, values in times.items()
    }


@contextlib.contextmanager
def _scope(step: str):
    """Row-level security (accounts/rls.py): the loader is platform code (COPY, replica mode) and runs as
    the owner; every other step runs as the application does, in the bench tenant."""
    try:
        from accounts import rls
    except ImportError:  # code from before row-level security
        yield
        return
    if step == "load":
        with rls.owner_session():
            yield
        return
    from accounts.models import Tenant

    with rls.session_tenant(Tenant.objects.get(slug="bench")):
        yield


STEPS = {"compare": compare, "count": count, "load": load, "score": score, "floor": floor, "pandas": pandas_baseline}


def child(step: str, url: str, events: int, repeat: int) -> dict:
    """Run one step in a fresh process; its peak memory is its own."""
    args = [
        sys.executable,
        __file__,
        "--step",
        step,
        "--events",
        str(events),
        "--repeat",
        str(repeat),
        "--backfill-days",
        str(BACKFILL_DAYS[0]),
    ]
    env = {**os.environ, "BENCH_DATABASE_URL": url}
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backfill-days", type=int, default=DAYS, help="days the backfill computes (90)")
    parser.add_argument("--keep", action="store_true", help="keep the engagement_bench database")
    parser.add_argument("--reuse", action="store_true", help="reuse a database kept by --keep (skip loading)")
    parser.add_argument("--step", choices=list(STEPS), help=argparse.SUPPRESS)
    opts = parser.parse_args()
    BACKFILL_DAYS[0] = opts.backfill_days
    if opts.step:
        url = os.environ["BENCH_DATABASE_URL"]
        django_setup(url)
        fn = STEPS[opts.step]
        with _scope(opts.step):
            result = fn(url, opts.events) if opts.step == "load" else fn(url, opts.repeat)
        print(json.dumps(result))
        return
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        sys.exit(
            "Set DATABASE_URL to a PostgreSQL server (postgres://user@host:5432/db); the benchmark "
            f"creates and drops its own database {BENCH_DB} there."
        )
    url = bench_url(base)
    load_start = os.getloadavg()[0]
    if not opts.reuse:
        create_database(base)
    try:
        if opts.reuse:
            loaded = child("count", url, opts.events, opts.repeat)
        else:
            print(f"Loading {opts.events:,} events into {BENCH_DB} ...", flush=True)
            loaded = child("load", url, opts.events, opts.repeat)
        print(
            f"  {loaded['events']:,} events, {loaded['rollup_rows']:,} rollup rows in {loaded['load_seconds']} s",
            flush=True,
        )
        scored = child("score", url, opts.events, 1)
        floor_ = child("floor", url, opts.events, 1)
        pandas_ = child("pandas", url, opts.events, 1)
        compared = child("compare", url, opts.events, opts.repeat)
    finally:
        if not opts.keep:
            drop_database(base)
    one, fl, pd_ = compared["engine_seconds"], compared["floor_seconds"], compared["pandas_seconds"]
    rows = [
        ("events", f"{loaded['events']:,}"),
        ("rollup rows", f"{loaded['rollup_rows']:,}"),
        (
            "engine: one day, users + accounts + product (median)",
            f"{one * 1000:.0f} ms ({scored['one_day_rows']:,} rows)",
        ),
        (
            "range engine: one day (compute_days, median; a lone day runs compute_day)",
            f"{scored['one_day_range_seconds'] * 1000:.0f} ms",
        ),
        (
            f"baseline: backfill {BACKFILL_DAYS[0]} days, per-day engine (a transaction per day)",
            f"{scored['backfill_per_day_seconds']:.1f} s ({scored['backfill_per_day_rows']:,} rows)",
        ),
        (
            f"engine: backfill {BACKFILL_DAYS[0]} days, range engine (ranges of {scored['range_days']} days)",
            f"{scored['backfill_seconds']:.1f} s ({scored['backfill_rows']:,} rows)",
        ),
        (
            "ratio backfill range / per-day (target: <= 10 s at 1M, <= 25 s at 3M)",
            f"{scored['backfill_seconds'] / scored['backfill_per_day_seconds']:.2f}",
        ),
        ("hand-written SQL from events, points only (floor)", f"{fl * 1000:.0f} ms ({floor_['floor_users']:,} users)"),
        ("pandas: load window from PostgreSQL (COPY)", f"{pandas_['pandas_load_seconds'] * 1000:.0f} ms"),
        ("pandas: group-by", f"{pandas_['pandas_groupby_seconds'] * 1000:.0f} ms"),
        ("pandas end to end", f"{pd_ * 1000:.0f} ms"),
        ("(engine, floor and pandas timed in turn, median of --repeat rounds)", ""),
        ("ratio engine / floor (target <= 2)", f"{one / fl:.2f}"),
        ("ratio pandas / engine (target > 1)", f"{pd_ / one:.2f}"),
        ("peak RSS of the scoring process (target < 300 MB)", f"{scored['peak_mb']:.0f} MB"),
        ("peak RSS of the pandas process", f"{pandas_['peak_mb']:.0f} MB"),
        ("load average (1 min) at start -> end", f"{load_start:.2f} -> {os.getloadavg()[0]:.2f}"),
    ]
    width = max(len(k) for k, _ in rows)
    print()
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print(json.dumps({"load": loaded, "score": scored, "floor": floor_, "pandas": pandas_, "compare": compared}))


if __name__ == "__main__":
    main()
