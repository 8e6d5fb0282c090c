"""Benchmark the score-truth functions (insights/truth.py) at scale on PostgreSQL.

    .venv/bin/python bench/backtest.py [--users 100000] [--keep] [--reuse] [--database-url URL] [--db-name NAME]

Creates (and drops at the end unless --keep) a database `engagement_truth_scale`
(or --db-name) on the server of --database-url / DATABASE_URL, migrates it and
loads with COPY a synthetic tenant: --users end users in users/20 accounts,
20 activities, 150 days of rollup rows ending yesterday in the tenant's time
zone, with churn planted loosely (users stop at random days, sooner when they
are less engaged or skip the valuable activities; a few busy users with many
log-ins leave fastest), so there are stayers and leavers.

Only the rollup (`events_dailyactivitycount`), the end users, accounts and
activities are loaded, no `events_event` rows: insights.truth reads the rollup
and the score snapshots, and the engine reads the rollup, the end users and the
accounts. A model like bench/score.py's is published, and the engine's
`compute_day` stores its snapshots on the 6 days `backtest` reads (not a 90-day
backfill). Then, each in its own process (its peak RSS is its own), with the
database already warm:

- baseline: one `engine.compute_day` of the published model for yesterday
  (median of 3 after a warm-up), the unit of scoring cost every figure is divided by;
- load_history, fit_weights(horizon=60), backtest(published, horizon=60) on its 6
  stored days, backtest_points of a draft (6 days computed by the engine and rolled
  back), retention_by_activity, score_truth(horizon=60) and score_truth with the
  page's default horizon; each call is timed once, as a page would make it (every
  one but retention_by_activity runs its own load_history).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.score import django_setup, peak_mb, tenant_rows  # noqa: E402 - needs ROOT on the path

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/engagement"
DEFAULT_DB = "engagement_truth_scale"
SLUG = "truth-scale"
TIME_ZONE = "America/Los_Angeles"  # not UTC: "yesterday" must be the tenant's
DAYS, ACTIVITIES, USERS_PER_ACCOUNT = 150, 20, 20
WINDOW, CAP, HALF_LIFE, HORIZON = 30, 10, 14, 60
VALUABLE = slice(6, 11)  # the activities that go with staying
COPY_CHUNK = 1_000_000


def db_url(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(db_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the synthetic tenant -----------------------------------------------------------------------


def synth(users: int, seed: int = 11):
    """Rollup rows (user index, activity index, day offset, count), in day order, and each user's start day."""
    import numpy as np

    rng = np.random.default_rng(seed)
    engagement = rng.lognormal(0, 0.7, users)
    active_p = np.clip(0.22 * engagement, 0.02, 0.9)  # chance of any activity on a day
    # 70 % were there before the history starts; the others join over it.
    start = np.where(rng.random(users) < 0.7, 0, rng.integers(0, DAYS - 14, users))
    base = 0.4 / np.arange(1, ACTIVITIES + 1) ** 0.8  # chance of each activity on an active day
    affinity = np.minimum(rng.lognormal(0, 0.6, (users, ACTIVITIES)) * base, 0.95)
    valuable = affinity[:, VALUABLE].sum(axis=1) / base[VALUABLE].sum()
    busy = rng.random(users) < 0.05
    hazard = 0.006 * engagement**-0.7 * valuable**-1.0 * np.where(busy, 3.0, 1.0)
    stop = np.minimum(start + np.ceil(rng.exponential(1 / hazard)), DAYS)  # exclusive; DAYS = still there
    per_time = np.r_[2.0, np.full(ACTIVITIES - 1, 0.6)]  # extra times a day: log-ins are frequent
    parts = []
    days = np.arange(DAYS)
    for lo in range(0, users, 10_000):
        hi = min(users, lo + 10_000)
        alive = (days >= start[lo:hi, None]) & (days < stop[lo:hi, None])
        uu, dd = np.nonzero(alive & (rng.random((hi - lo, DAYS), dtype=np.float32) < active_p[lo:hi, None]))
        k, aa = np.nonzero(rng.random((len(uu), ACTIVITIES), dtype=np.float32) < affinity[lo + uu])
        u = lo + uu[k]
        count = 1 + rng.poisson(per_time[aa] * np.sqrt(engagement[u]))
        count += np.where(busy[u] & (aa == 0), rng.poisson(12, len(u)), 0)
        parts.append((u.astype(np.int32), aa.astype(np.int16), dd[k].astype(np.int16), count.astype(np.int32)))
    user, activity, day, count = (np.concatenate(c) for c in zip(*parts, strict=True))
    order = np.argsort(day, kind="stable")  # day order, as ingestion writes the rollup
    return user[order], activity[order], day[order], count[order], start, int((stop < DAYS).sum())


def copy_rows(raw, sql: str, lines) -> None:
    with raw.cursor().copy(sql) as copy:
        for line in lines:
            copy.write(line)


def load(users: int) -> dict:
    import numpy as np
    import pandas as pd
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from accounts.models import Tenant
    from events.models import Activity
    from scoring import engine, services
    from scoring.models import ModelStatus, ScoringModel

    started = time.perf_counter()
    tenant = Tenant.objects.create(name="Truth scale", slug=SLUG, product_name="Truth", time_zone=TIME_ZONE)
    yesterday = tenant.today() - timedelta(days=1)
    first = yesterday - timedelta(days=DAYS - 1)
    activities = [
        Activity.objects.create(tenant=tenant, name=f"Activity {i:02d}", first_seen_at=datetime(2025, 1, 1, tzinfo=UTC))
        for i in range(ACTIVITIES)
    ]
    user, activity, day, count, start, leavers = synth(users)
    n_accounts = max(1, users // USERS_PER_ACCOUNT)
    # A user is first seen on their first day (tenant time), or long before the history when they were there.
    seen = [
        (datetime.combine(first + timedelta(days=int(s)), datetime.min.time(), tzinfo=tenant.tzinfo)
         if s else datetime(2025, 1, 1, tzinfo=tenant.tzinfo)).isoformat()
        for s in start
    ]
    with connection.cursor() as cursor:
        # The synthetic rows are consistent by construction: skip the FK triggers while loading.
        cursor.execute("SET session_replication_role = replica")
        raw = cursor.connection
        copy_rows(raw, "COPY events_customeraccount (tenant_id, public_id, group_id, name, traits, first_seen_at, "
                       "updated_at) FROM STDIN",
                  (f"{tenant.pk}\t{uuid.uuid4()}\tg{i}\tAccount {i}\t{{}}\t2025-01-01\t2025-01-01\n"
                   for i in range(n_accounts)))
        account_ids = [r[0] for r in tenant_rows(cursor, "events_customeraccount", tenant)]
        copy_rows(raw, "COPY events_enduser (tenant_id, public_id, user_id, traits, account_id, first_seen_at, "
                       "updated_at) FROM STDIN",
                  (f"{tenant.pk}\t{uuid.uuid4()}\tu{i}\t{{}}\t{account_ids[i % n_accounts]}\t{seen[i]}\t{seen[i]}\n"
                   for i in range(users)))
        user_ids = np.array([r[0] for r in tenant_rows(cursor, "events_enduser", tenant)], dtype=np.int64)
        activity_ids = np.array([a.pk for a in activities], dtype=np.int64)
        day_text = np.array([(first + timedelta(days=d)).isoformat() for d in range(DAYS)], dtype=object)

        def chunks():
            # pandas writes the text rows in C: a Python f-string per row took most of the load.
            for lo in range(0, len(user), COPY_CHUNK):
                sl = slice(lo, lo + COPY_CHUNK)
                frame = pd.DataFrame({"t": tenant.pk, "u": user_ids[user[sl]], "a": activity_ids[activity[sl]],
                                      "d": day_text[day[sl]], "c": count[sl]})
                yield frame.to_csv(sep="\t", header=False, index=False)

        copy_rows(raw, 'COPY events_dailyactivitycount (tenant_id, end_user_id, activity_id, day, "count") FROM STDIN',
                  chunks())
        cursor.execute("SET session_replication_role = DEFAULT")
    with connection.cursor() as cursor:
        # Autovacuum is off on this machine: without VACUUM the first step to read the fresh rows
        # would pay for their hint bits and find no visibility map.
        cursor.execute("VACUUM ANALYZE")
    load_seconds = time.perf_counter() - started
    # Points like bench/score.py: cheap frequent activities, valuable rare ones.
    draft = services.scoring_model_create_draft(tenant=tenant)
    services.scoring_model_update(model=draft, points={a.pk: 1 + 5 * i for i, a in enumerate(activities)},
                                  window_days=WINDOW, daily_cap=CAP, half_life_days=HALF_LIFE)
    # Published by hand: scoring_model_publish would run a 90-day backfill (eager Celery here).
    ScoringModel.objects.for_tenant(draft.tenant_id).filter(pk=draft.pk).update(
        status=ModelStatus.PUBLISHED, published_at=timezone.now()
    )
    model = published()
    days = backtest_days(tenant)
    t = time.perf_counter()
    for d in days:
        engine.compute_day(model, d)
    stored_seconds = time.perf_counter() - t
    return {"load_seconds": round(load_seconds, 1), "stored_days": [d.isoformat() for d in days],
            "stored_seconds": round(stored_seconds, 1), "planted_leavers": leavers}


# --- the steps ----------------------------------------------------------------------------------


def tenant():
    from accounts.models import Tenant

    return Tenant.objects.get(slug=SLUG)


def published():
    from scoring.selectors import published_model

    return published_model(tenant())


def history_span(t):
    """An empty History with the real first and last day: enough for truth.snapshot_days."""
    import numpy as np
    from django.db import connection

    from accounts.scoping import tenant_sql
    from insights import truth

    where, params = tenant_sql(t)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MIN(day) FROM events_dailyactivitycount WHERE {where}", params)  # noqa: S608
        first = cursor.fetchone()[0]
    empty = np.empty(0)
    return truth.History(first, t.today() - timedelta(days=1), empty, empty, empty, empty, empty, empty, [], empty)


def backtest_days(t) -> list[date]:
    from insights import truth

    return truth.default_days(history_span(t), WINDOW, HORIZON)


def step_baseline() -> tuple[dict, dict]:
    from scoring import engine

    model = published()
    day = model.tenant.today() - timedelta(days=1)
    engine.compute_day(model, day)  # warm-up
    times = []
    for _ in range(3):
        t = time.perf_counter()
        result = engine.compute_day(model, day)
        times.append(time.perf_counter() - t)
    # The timing wrapper measures the warm-up too; the median is what the table uses.
    return {"median": statistics.median(times), "all": [round(x, 3) for x in times]}, {"rows": result.rows}


def step_load_history() -> tuple[object, dict]:
    from insights import truth

    t = tenant()
    return described(lambda: truth.load_history(t), lambda h: {"rows": len(h.user), "users": len(h.users),
                                                          "days": h.days})


def step_fit_weights():
    from insights import truth

    t = tenant()
    return described(lambda: truth.fit_weights(t, horizon=HORIZON), lambda f: {
        "eval_auc": f.eval_auc, "train_auc": f.train_auc, "cap": f.daily_cap, "half_life": f.half_life_days,
        "stayed": f.readiness.stayed, "left": f.readiness.left, "candidates": len(f.candidates),
        "train_days": len(f.train_days), "eval_days": len(f.eval_days)})


def _bt(bt) -> dict:
    return {"days": len(bt.days), "mean_auc": bt.mean_auc, "in_order": bt.in_order, "verdict": bt.verdict.level,
            "users_per_day": round(statistics.mean(d.users for d in bt.days)) if bt.days else 0}


def step_backtest():
    from insights import truth

    model = published()
    return described(lambda: truth.backtest(model, horizon=HORIZON), _bt)


def step_backtest_points():
    from insights import truth

    model = published()
    # A draft that weighs every activity alike (volume), scored on the same 6 days and rolled back.
    points = dict.fromkeys(model.weights.values_list("activity_id", flat=True), 10)
    return described(lambda: truth.backtest_points(model.tenant, points, settings_from=model, horizon=HORIZON), _bt)


def step_retention():
    from insights import truth

    t = tenant()
    day = backtest_days(t)[-1]  # the day score_truth uses: its last held-out day
    return described(lambda: truth.retention_by_activity(t, day=day, horizon=HORIZON, window=WINDOW),
                 lambda r: {"day": r.day.isoformat(), "population": r.population.n if r.population else 0,
                            "rows": len(r.rows)})


def _report(r) -> dict:
    return {"horizon": r.horizon, "fit_eval_auc": r.fit.eval_auc,
            "columns": {name: bt.mean_auc for name, bt in r.columns}, "ready": r.readiness.ok}


def step_score_truth():
    from insights import truth

    t = tenant()
    return described(lambda: truth.score_truth(t, horizon=HORIZON), _report)


def step_score_truth_default():
    from insights import truth

    t = tenant()
    return described(lambda: truth.score_truth(t), _report)


def step_count() -> tuple[dict, dict]:
    from django.db import connection

    from accounts.scoping import tenant_sql

    counts = {}
    with connection.cursor() as cursor:
        for table in ("events_enduser", "events_customeraccount", "events_activity", "events_event",
                      "events_dailyactivitycount", "scoring_userscore"):
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
        cursor.execute("SELECT COUNT(DISTINCT end_user_id) FROM events_dailyactivitycount")
        counts["users_with_rows"] = cursor.fetchone()[0]
        t = tenant()
        last = t.today() - timedelta(days=1)
        where, params = tenant_sql(t)
        cursor.execute(f"SELECT COUNT(*) FROM events_dailyactivitycount WHERE {where} AND day > %s",  # noqa: S608
                       [*params, last - timedelta(days=WINDOW)])
        counts["rollup_rows_in_one_window"] = cursor.fetchone()[0]
    return {"median": 0.0}, counts


def described(call, describe) -> tuple[dict, dict]:
    result = call()
    return {}, describe(result) if result is not None else {}


STEPS = {
    "baseline": step_baseline,
    "load_history": step_load_history,
    "fit_weights": step_fit_weights,
    "backtest": step_backtest,
    "backtest_points": step_backtest_points,
    "retention_by_activity": step_retention,
    "score_truth": step_score_truth,
    "score_truth_default": step_score_truth_default,
    "count": step_count,
}
LABELS = {
    "baseline": "baseline: engine.compute_day, published, yesterday (median of 3)",
    "load_history": "load_history (150 days)",
    "fit_weights": f"fit_weights(horizon={HORIZON})",
    "backtest": f"backtest(published, horizon={HORIZON}), 6 stored days",
    "backtest_points": "backtest_points(draft), 6 days by the engine, rolled back",
    "retention_by_activity": "retention_by_activity (one query)",
    "score_truth": f"score_truth(horizon={HORIZON})",
    "score_truth_default": "score_truth() (page default horizon)",
}


def run_step(name: str) -> dict:
    """In the child: time the step's call, with CPU time and memory around it."""
    load_1 = os.getloadavg()[0]
    rss_before = rss_mb()
    cpu = cpu_seconds()
    t = time.perf_counter()
    extra, info = STEPS[name]()
    seconds = time.perf_counter() - t
    return {"seconds": extra.get("median", seconds), "wall_seconds": seconds, "cpu_seconds": cpu_seconds() - cpu,
            "rss_before_mb": rss_before, "peak_mb": peak_mb(), "load_1min": load_1, "info": info, **extra}


def child(step: str, url: str, users: int) -> dict:
    args = [sys.executable, __file__, "--step", step, "--users", str(users)]
    out = subprocess.run(args, env={**os.environ, "BENCH_DATABASE_URL": url}, check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_URL,
                        help="a PostgreSQL server; its database name is replaced by --db-name")
    parser.add_argument("--db-name", default=DEFAULT_DB)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--reuse", action="store_true", help="time a database kept by --keep (skip loading)")
    parser.add_argument("--only", help="comma-separated steps to time (default: all)")
    parser.add_argument("--step", choices=[*STEPS, "load"], help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.step:
        django_setup(os.environ["BENCH_DATABASE_URL"])
        if opts.step == "load":
            print(json.dumps(load(opts.users)))
        else:
            print(json.dumps(run_step(opts.step)))
        return
    if not opts.database_url.startswith("postgres"):
        sys.exit("--database-url / DATABASE_URL must be a PostgreSQL server (postgres://user@host:5432/db).")
    url = db_url(opts.database_url, opts.db_name)
    steps = opts.only.split(",") if opts.only else list(LABELS)
    load_start = os.getloadavg()
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}  load average {' '.join(f'{x:.2f}' for x in load_start)}",
          flush=True)
    if not opts.reuse:
        admin(opts.database_url, f"DROP DATABASE IF EXISTS {opts.db_name}")
        admin(opts.database_url, f"CREATE DATABASE {opts.db_name}")
    results = {}
    try:
        if opts.reuse:
            loaded = {}
        else:
            print(f"Loading {opts.users:,} end users into {opts.db_name} ...", flush=True)
            loaded = child("load", url, opts.users)
            print(f"  loaded in {loaded['load_seconds']} s; published model's snapshots on "
                  f"{', '.join(loaded['stored_days'])} in {loaded['stored_seconds']} s", flush=True)
        counts = child("count", url, opts.users)["info"]
        for step in ["baseline", *[s for s in steps if s != "baseline"]]:
            results[step] = child(step, url, opts.users)
            r = results[step]
            print(f"  {step}: {r['seconds']:.2f} s, peak {r['peak_mb']:.0f} MB  {json.dumps(r['info'])}", flush=True)
    finally:
        if not opts.keep:
            admin(opts.database_url, f"DROP DATABASE IF EXISTS {opts.db_name}")
    load_end = os.getloadavg()
    base = results["baseline"]["seconds"]
    print()
    print(f"{opts.users:,} end users, {counts['events_customeraccount']:,} accounts, "
          f"{counts['events_activity']} activities; {counts['events_dailyactivitycount']:,} rollup rows over "
          f"{DAYS} days ({counts['rollup_rows_in_one_window']:,} in the last {WINDOW}-day window; "
          f"{counts['users_with_rows']:,} users with rows); {counts['events_event']} events (not loaded: "
          f"insights.truth and the engine read only the rollup); {counts['scoring_userscore']:,} stored user "
          "snapshots")
    if loaded:
        print(f"planted: {loaded['planted_leavers']:,} users stop before the end of the history")
    rows = [("", "seconds", "x baseline", "client CPU s", "RSS before / peak MB", "load 1 min")]
    for step, r in results.items():
        rows.append((LABELS[step], f"{r['seconds']:.2f}", f"{r['seconds'] / base:.1f}", f"{r['cpu_seconds']:.1f}",
                     f"{r['rss_before_mb']:.0f} / {r['peak_mb']:.0f}", f"{r['load_1min']:.2f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(row, widths,
                                                                                            strict=True))))
    print(f"load average: start {' '.join(f'{x:.2f}' for x in load_start)}, "
          f"end {' '.join(f'{x:.2f}' for x in load_end)}")
    print(json.dumps({"users": opts.users, "counts": counts, "load": loaded, "results": results,
                      "loadavg": [load_start, load_end]}))


if __name__ == "__main__":
    main()
