"""Server time of the dashboard, insight, users and accounts pages: p50/p95 per page on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/engagement .venv/bin/python bench/pages.py [--requests 20]

Creates (and drops at the end) a database `engagement_bench_pages` (or
--database) on the same server, migrates it, then builds two tenants:

- demo: the demo events (`events.demo`: 2,000 end users, 150 accounts, ~120k
  events over 90 days through the ingestion path), then `manage.py seed_demo`
  (its survey, the demo model published and scored);
- synthetic: 100,000 end users in 5,000 accounts, 20 activities, ~2M rollup rows
  over 90 days loaded with COPY, and score snapshots written set-based on the
  server, one statement per day (every day of the last 15, then every Sunday back
  to 90 days: the days the pages read — latest, 7 and 14 days back, the ends of
  weeks and months, 30 and 60 days back snap to a Sunday), with account and
  product rows aggregated from them.

With --keep the database stays; --reuse then times its tenants again without
building them (after migrating it, so a new index is measured too).

Each page is requested through Django's test client in process (no network),
a streamed CSV read to its end,
once to warm up and then --requests times; the table gives p50/p95 in ms and the
number of SQL queries. With --write each tenant's table goes into
docs/benchmarks.md under "Pages" (replacing only this script's earlier output).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "engagement_bench_pages"
USERS, ACCOUNTS, ACTIVITIES, DAYS = 100_000, 5_000, 20, 90
DOC = ROOT / "docs" / "benchmarks.md"
MARK = "<!-- bench/pages.py:{part}:{edge} -->"

PAGES = [
    ("dashboard", "tenant_home", ""),
    ("growth, users weekly", "insights:growth", ""),
    ("growth, accounts monthly", "insights:growth", "subject=accounts&period=month"),
    ("tier transitions", "insights:transitions", ""),
    ("feature adoption (30 d)", "insights:adoption", ""),
    ("segments by plan", "insights:segments", "dimension=plan"),
    ("outcomes, users", "insights:outcomes", ""),
    ("outcomes, accounts", "insights:outcomes", "subject=accounts"),
    ("onboarding status JSON", "insights:onboarding_status", ""),
    ("users list", "scoring:users", ""),
    ("users list, page 20", "scoring:users", "page=20"),
    ("users by change over 7 d", "scoring:users", "order=-change_7"),
    ("users by last seen", "scoring:users", "order=-last_seen"),
    ("users on plan free", "scoring:users", "plan=free"),
    ("users searched", "scoring:users", "q=12"),
    ("users CSV (all)", "scoring:users_csv", ""),
    ("accounts list", "scoring:accounts", ""),
    ("accounts by change over 30 d", "scoring:accounts", "order=-change_30"),
    ("user detail (top user)", "scoring:user_detail", "", "top_user"),
    ("account detail (top account)", "scoring:account_detail", "", "top_account"),
    ("model preview (a draft)", "scoring:preview_model", "", "draft"),
]


def _subject_id(tenant, which: str):
    """The public id of the end user or account with the most points on the latest scored day,
    or of a draft: the published version with its most valued activity's points halved."""
    from scoring import selectors, services
    from scoring.models import ScoringModel

    if which == "draft":
        draft = ScoringModel.objects.for_tenant(tenant).filter(status="draft").first()
        if draft is None:
            draft = services.scoring_model_create_draft(tenant=tenant)
            points = dict(draft.weights.values_list("activity_id", "points"))
            top = max(points, key=points.get)
            services.scoring_model_update(model=draft, points={**points, top: max(1, points[top] // 2)})
        return draft.public_id
    rows = selectors.user_list(tenant) if which == "top_user" else selectors.account_list(tenant)
    return rows[0:1][0].public_id


def bench_url(url: str, name: str = BENCH_DB) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def admin_connect(url: str):
    import psycopg

    return psycopg.connect(urlunsplit(urlsplit(url)._replace(path="/postgres")), autocommit=True)


def django_setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)  # eager Celery: publishing computes in process
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engagement_site.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- Tenants ---------------------------------------------------------------------------------------


def build_demo():
    from django.core.management import call_command
    from django.db import connection

    from accounts.demo import DEMO_EMAIL, seed_demo_tenant
    from accounts.models import Membership, User
    from events.demo import seed_demo_events

    started = time.perf_counter()
    # The demo's events first (through the ingestion path), then the command adds its survey and scores.
    tenant, _ = seed_demo_tenant()
    seed_demo_events(tenant)
    call_command("seed_demo", stdout=io.StringIO())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would after a bulk load
    user = User.objects.get(email=DEMO_EMAIL)
    tenant = Membership.objects.unscoped().filter(user=user).select_related("tenant").first().tenant
    return tenant, user, time.perf_counter() - started


def reuse_demo():
    """The demo tenant of a database kept with --keep (build time unknown: 0)."""
    from accounts.demo import DEMO_EMAIL
    from accounts.models import Membership

    membership = Membership.objects.unscoped().filter(user__email=DEMO_EMAIL).select_related("tenant", "user").first()
    if membership is None:
        sys.exit("--reuse: no demo tenant in this database; build it once with --keep.")
    return membership.tenant, membership.user, 0.0


def reuse_synthetic():
    from accounts.models import Membership
    from events.models import DailyActivityCount
    from scoring.models import ProductScore

    membership = Membership.objects.unscoped().filter(tenant__slug="synthetic").select_related("tenant", "user").first()
    if membership is None:
        sys.exit("--reuse: no synthetic tenant in this database; build it once with --keep.")
    tenant = membership.tenant
    info = {"rollup_rows": DailyActivityCount.objects.filter(tenant=tenant).count(),
            "snapshot_days": ProductScore.objects.filter(tenant=tenant).count()}
    from insights.models import AggregatedDay

    if not AggregatedDay.objects.filter(tenant=tenant, day=tenant.today()).exists():
        info.update(_aggregates(tenant))  # a database kept before the aggregates, or built on an earlier day
    return tenant, membership.user, 0.0, info


def _copy(cursor, sql: str, lines) -> None:
    with cursor.connection.cursor().copy(sql) as copy:
        buf = []
        for line in lines:
            buf.append(line)
            if len(buf) >= 50_000:
                copy.write("".join(buf))
                buf = []
        if buf:
            copy.write("".join(buf))


def build_synthetic():
    """100k end users: COPY the catalog, users and rollup; snapshots INSERT ... SELECT on the server."""
    import numpy as np
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Membership, Role, Tenant, User
    from bench.score import tenant_rows
    from events.models import Activity
    from scoring.models import ActivityWeight, ModelStatus, ScoringModel

    started = time.perf_counter()
    rng = np.random.default_rng(11)
    tenant = Tenant.objects.create(name="Synthetic", slug="synthetic", product_name="Big", time_zone="UTC")
    user = User.objects.create_user(email="bench@synthetic.test", password="bench-password-2026")
    Membership.objects.create(tenant=tenant, user=user, role=Role.VIEWER)
    today = tenant.today()
    first_seen = today - timedelta(days=DAYS + 30)
    seen = timezone.now() - timedelta(days=DAYS)
    activities = [Activity.objects.create(tenant=tenant, name=f"Activity {i:02d}", first_seen_at=seen)
                  for i in range(ACTIVITIES)]
    model = ScoringModel.objects.create(tenant=tenant, version=1, status=ModelStatus.PUBLISHED,
                                        published_at=timezone.now(), name="Synthetic")
    ActivityWeight.objects.bulk_create(ActivityWeight(tenant=tenant, model=model, activity=a, points=1 + 3 * i)
                                       for i, a in enumerate(activities[:-2]))  # two activities left unweighted
    plans = np.array(["free", "team", "business"])
    with connection.cursor() as cursor:
        _copy(cursor, "COPY events_customeraccount (tenant_id, public_id, group_id, name, traits, trait_times, "
              "first_seen_at, updated_at) FROM STDIN",
              (f"{tenant.pk}\t{uuid.uuid4()}\tacct-{i}\tAccount {i}\t"
               f'{{"plan": "{plans[i % 3]}", "mrr": {0 if i % 3 == 0 else 50 * (i % 3)}}}\t{{}}\t{first_seen}\t'
               f"{first_seen}\n"
               for i in range(ACCOUNTS)))
        account_ids = [r[0] for r in tenant_rows(cursor, "events_customeraccount", tenant)]
        signup = rng.integers(0, DAYS + 30, USERS)
        _copy(cursor, "COPY events_enduser (tenant_id, public_id, user_id, traits, trait_times, account_id, "
              "first_seen_at, updated_at) FROM STDIN",
              (f"{tenant.pk}\t{uuid.uuid4()}\tu{i}\t"
               f'{{"plan": "{plans[i % 3]}", "role": "{["admin", "member", "guest"][i % 7 % 3]}"}}\t{{}}\t'
               f"{account_ids[i % ACCOUNTS]}\t{first_seen + timedelta(days=int(signup[i]))}\t{first_seen}\n"
               for i in range(USERS)))
        # Each end user is a member of its account (the roll-up and the account filter read memberships).
        cursor.execute(
            """INSERT INTO events_accountmembership (tenant_id, end_user_id, account_id, started_at)
            SELECT tenant_id, id, account_id, first_seen_at FROM events_enduser WHERE tenant_id = %s""",
            [tenant.pk],
        )
        user_ids = np.array([r[0] for r in tenant_rows(cursor, "events_enduser", tenant)])
        # Activity: a propensity per user (a few heavy users), some churn, some start late.
        propensity = np.clip(rng.beta(0.6, 3.0, USERS), 0, 0.95)
        stop = np.where(rng.random(USERS) < 0.2, rng.integers(10, DAYS, USERS), DAYS)
        begin = np.where(rng.random(USERS) < 0.1, rng.integers(0, DAYS, USERS), 0)
        activity_ids = np.array([a.pk for a in activities])
        act_weight = 1.0 / np.arange(1, ACTIVITIES + 1) ** 1.2
        act_weight /= act_weight.sum()
        rows = 0

        def rollup_lines():
            nonlocal rows
            prefix = f"{tenant.pk}\t"
            for d in range(DAYS):
                day = today - timedelta(days=DAYS - 1 - d)
                active = np.nonzero((rng.random(USERS) < propensity) & (d < stop) & (d >= begin))[0]
                first = rng.choice(ACTIVITIES, len(active), p=act_weight)
                # Half of the active users also do a second, different activity that day.
                second = (first + 1 + rng.integers(0, ACTIVITIES - 1, len(active))) % ACTIVITIES
                both = rng.random(len(active)) < 0.5
                for who, acts in ((active, first), (active[both], second[both])):
                    counts = 1 + rng.poisson(1.0, len(who))
                    rows += len(who)
                    # Plain ints: formatting numpy scalars is several times slower.
                    for u, a, c in zip(user_ids[who].tolist(), activity_ids[acts].tolist(), counts.tolist(),
                                       strict=True):
                        yield f"{prefix}{u}\t{a}\t{day}\t{c}\n"

        _copy(cursor, 'COPY events_dailyactivitycount (tenant_id, end_user_id, activity_id, day, "count") FROM STDIN',
              rollup_lines())
        loaded = time.perf_counter() - started
        days = [today - timedelta(days=i) for i in range(15)]
        days += [d for d in (today - timedelta(days=i) for i in range(15, DAYS)) if d.weekday() == 6]
        _snapshots(cursor, tenant, model, days, propensity, stop, begin, user_ids)
        cursor.execute("ANALYZE")
    info = {"rollup_rows": rows, "load_s": loaded, "snapshot_days": len(days)}
    info.update(_aggregates(tenant))
    return tenant, user, time.perf_counter() - started, info


def _aggregates(tenant) -> dict:
    """The insight aggregates the scoring job would have written (the snapshots above bypass the engine):
    every day since the first rollup day at once, then today alone (what an hourly refresh adds)."""
    from django.db import connection

    from insights.aggregates import aggregate_days, aggregates_backfill
    from scoring.selectors import published_model

    started = time.perf_counter()
    days = aggregates_backfill(tenant)
    backfill = time.perf_counter() - started
    started = time.perf_counter()
    aggregate_days(published_model(tenant), [tenant.today()])
    one_day = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"aggregates: {days} days in {backfill:.1f} s (chunks of a month); today alone {one_day:.2f} s", flush=True)
    return {"aggregate_days": days, "aggregates_s": round(backfill, 1), "aggregate_today_s": round(one_day, 2)}


def _verdict(tenant) -> dict:
    """The Outcomes headline the task after a scoring run stores (insights/verdicts.py; the snapshots
    above bypass runs): its cost is the job's, the page reads the row."""
    from insights import verdicts

    started = time.perf_counter()
    verdicts.refresh(tenant)
    seconds = time.perf_counter() - started
    print(f"published verdict (the task after a run): {seconds:.1f} s", flush=True)
    return {"verdict_s": round(seconds, 1)}


def _snapshots(cursor, tenant, model, days, propensity, stop, begin, user_ids) -> None:
    """User snapshots from a per-user level (propensity) with drift and churn, then accounts and product."""
    cursor.execute("CREATE TEMP TABLE bench_level (end_user_id bigint, level float, stop int, begin int)")
    _copy(cursor, "COPY bench_level FROM STDIN",
          (f"{u}\t{p * 300:.3f}\t{s}\t{b}\n" for u, p, s, b in zip(user_ids, propensity, stop, begin, strict=True)))
    today = days[0]
    cursor.execute("CREATE TEMP TABLE bench_day (day date, idx int)")
    _copy(cursor, "COPY bench_day FROM STDIN", (f"{d}\t{DAYS - 1 - (today - d).days}\n" for d in days))
    cursor.execute("SET work_mem = '128MB'")
    for day in days:  # one day per statement: each window sort fits in memory
        cursor.execute(
            """INSERT INTO scoring_userscore (tenant_id, model_id, day, end_user_id, points, breadth, active_days,
                   percentile, tier)
            WITH p AS (
                SELECT d.day, l.end_user_id,
                       CASE WHEN d.idx >= l.stop + 30 OR d.idx < l.begin THEN 0
                            ELSE ROUND(CAST(l.level * (0.7 + 0.6 * random()) AS NUMERIC), 1) END AS points
                FROM bench_level l JOIN bench_day d ON d.day = %s
            ),
            r AS (
                SELECT day, end_user_id, points,
                       CASE WHEN points > 0 THEN ROUND(CAST(100.0 * CUME_DIST() OVER (
                           PARTITION BY day, points > 0 ORDER BY points) AS NUMERIC), 2) END AS pct
                FROM p
            )
            SELECT %s, %s, day, end_user_id, points, CASE WHEN points > 0 THEN 1 + end_user_id %% 6 ELSE 0 END,
                   CASE WHEN points > 0 THEN 1 + end_user_id %% 20 ELSE 0 END, pct,
                   CASE WHEN points = 0 THEN 'dormant' WHEN pct >= 80 THEN 'high' WHEN pct >= 40 THEN 'medium'
                        ELSE 'low' END
            FROM r""",
            [day, tenant.pk, model.pk],
        )
    from accounts.scoping import tenant_sql

    seats, seat_params = tenant_sql(tenant, "s")
    cursor.execute(
        f"""INSERT INTO scoring_accountscore (tenant_id, model_id, day, account_id, points, active_users, seats,
               percentile, tier)
        WITH a AS (
            SELECT s.day, e.account_id, SUM(s.points) AS points, SUM(CASE WHEN s.points > 0 THEN 1 ELSE 0 END) AS act,
                   COUNT(*) AS seats
            FROM scoring_userscore s JOIN events_enduser e ON e.id = s.end_user_id
            WHERE {seats} AND s.model_id = %s GROUP BY s.day, e.account_id
        ),
        r AS (
            SELECT *, CASE WHEN act > 0 THEN ROUND(CAST(100.0 * CUME_DIST() OVER (
                PARTITION BY day, act > 0 ORDER BY points) AS NUMERIC), 2) END AS pct FROM a
        )
        SELECT %s, %s, day, account_id, points, act, seats, pct,
               CASE WHEN act = 0 THEN 'dormant' WHEN pct >= 80 THEN 'high' WHEN pct >= 40 THEN 'medium'
                    ELSE 'low' END
        FROM r""",  # noqa: S608 - constants
        [*seat_params, model.pk, tenant.pk, model.pk],
    )
    where, params = tenant_sql(tenant)
    cursor.execute(
        f"""INSERT INTO scoring_productscore (tenant_id, model_id, day, total_points, mean_points, median_points,
               active_users, engaged_users, high_users, medium_users, low_users, new_users, dormant_users)
        SELECT %s, %s, day, SUM(points), COALESCE(AVG(NULLIF(points, 0)), 0),
               COALESCE(PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY NULLIF(points, 0)), 0),
               SUM(CASE WHEN points > 0 THEN 1 ELSE 0 END), SUM(CASE WHEN tier IN ('high', 'medium') THEN 1 ELSE 0 END),
               SUM(CASE WHEN tier = 'high' THEN 1 ELSE 0 END), SUM(CASE WHEN tier = 'medium' THEN 1 ELSE 0 END),
               SUM(CASE WHEN tier = 'low' THEN 1 ELSE 0 END), 0, SUM(CASE WHEN tier = 'dormant' THEN 1 ELSE 0 END)
        FROM scoring_userscore WHERE {where} AND model_id = %s GROUP BY day""",  # noqa: S608 - constants
        [tenant.pk, model.pk, *params, model.pk],
    )
    _list_columns(cursor, tenant, model, today)


def _list_columns(cursor, tenant, model, day) -> None:
    """The columns the engine stores for the lists (scoring.0005), on the latest day (the one the lists
    read): the change against the subject's snapshot on or before 7 and 30 days earlier, the last day seen."""
    for table, column in (("scoring_userscore", "end_user_id"), ("scoring_accountscore", "account_id")):
        for back in (7, 30):
            cursor.execute(
                f"""UPDATE {table} s SET change_{back} = s.points - COALESCE((
                    SELECT b.points FROM {table} b WHERE b.model_id = s.model_id AND b.{column} = s.{column}
                      AND b.day <= s.day - {back} ORDER BY b.day DESC LIMIT 1), 0)
                WHERE s.tenant_id = %s AND s.model_id = %s AND s.day = %s""",
                [tenant.pk, model.pk, day],
            )
    cursor.execute(
        """UPDATE scoring_userscore s SET last_seen = r.last_seen FROM (
            SELECT end_user_id, MAX(day) AS last_seen FROM events_dailyactivitycount WHERE tenant_id = %s
            GROUP BY end_user_id) r
        WHERE r.end_user_id = s.end_user_id AND s.tenant_id = %s AND s.day = %s""",
        [tenant.pk, tenant.pk, day],
    )
    cursor.execute(
        """UPDATE scoring_accountscore s SET last_seen = r.last_seen FROM (
            SELECT e.account_id, MAX(u.last_seen) AS last_seen FROM scoring_userscore u
            JOIN events_enduser e ON e.id = u.end_user_id WHERE u.tenant_id = %s AND u.model_id = %s
              AND u.day = %s GROUP BY e.account_id) r
        WHERE r.account_id = s.account_id AND s.tenant_id = %s AND s.day = %s""",
        [tenant.pk, model.pk, day, tenant.pk, day],
    )


# --- Timing --------------------------------------------------------------------------------------------


class _Counter:
    """A database execute wrapper counting the statements of a request."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)

    def __len__(self):
        return self.count


def _get(client, url: str):
    """GET `url`; a streamed response (the CSV exports) is read to its end, which is where its time goes."""
    response = client.get(url)
    if response.streaming:
        for _ in response.streaming_content:
            pass
    return response


def time_pages(tenant, user, requests: int, match: str = "", cached: bool = False) -> list[dict]:
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    settings.DEBUG = False
    # Off by default: every request computes, as the first view after a scoring run does.
    settings.INSIGHTS_CACHE_SECONDS = 300 if cached else 0
    client = Client()
    client.force_login(user)
    results = []
    for label, name, query, *subject in PAGES:
        if match and match not in label:
            continue
        args = [tenant.slug, *(_subject_id(tenant, which) for which in subject)]
        url = reverse(name, args=args) + (f"?{query}" if query else "")
        response = _get(client, url)
        assert response.status_code == 200, f"{url}: {response.status_code}"
        queries = _Counter()
        with connection.execute_wrapper(queries):
            _get(client, url)
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            response = _get(client, url)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        samples.sort()
        p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
        results.append({"page": label, "p50": statistics.median(samples), "p95": p95, "queries": len(queries)})
    return results


def table(title: str, rows: list[dict]) -> str:
    lines = [f"**{title}**", "", "| page | p50 ms | p95 ms | SQL queries |", "|---|---:|---:|---:|"]
    lines += [f"| {r['page']} | {r['p50']:.0f} | {r['p95']:.0f} | {r['queries']} |" for r in rows]
    return "\n".join(lines)


def write_doc(part: str, text: str) -> None:
    """Put `text` in this script's block `part` of docs/benchmarks.md, under "## Pages"; other text is kept."""
    DOC.parent.mkdir(exist_ok=True)
    current = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    start, end = MARK.format(part=part, edge="start"), MARK.format(part=part, edge="end")
    block = f"{start}\n{text}\n{end}"
    if start in current and end in current:
        before, rest = current.split(start, 1)
        current = before + block + rest.split(end, 1)[1]
    else:
        if "\n## Pages\n" not in current:
            current = current.rstrip("\n") + "\n\n## Pages\n"
        current = current.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(current)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page (after one warm-up)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--database", default=BENCH_DB,
                        help=f"name of the benchmark database (created and dropped; default {BENCH_DB})")
    parser.add_argument("--reuse", action="store_true",
                        help="time the tenants of a database kept with --keep instead of building them again")
    parser.add_argument("--only", choices=["demo", "synthetic"], help="build and time one tenant only")
    parser.add_argument("--write", action="store_true", help="write the results into docs/benchmarks.md")
    parser.add_argument("--match", default="", help="time only the pages whose label contains this text")
    parser.add_argument("--cached", action="store_true",
                        help="insight cache on (300 s): repeat views; by default every request computes")
    opts = parser.parse_args()
    if opts.write and opts.match:
        sys.exit("--write replaces whole tables: leave out --match.")
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL server (postgres://user@host:5432/db).")
    name = opts.database
    if not name.replace("_", "").isalnum():
        sys.exit("--database: letters, digits and '_' only.")
    url = bench_url(base, name)
    if not opts.reuse:
        with admin_connect(base) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
    out = {}
    try:
        django_setup(url)
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        if opts.only in (None, "demo"):
            demo, demo_user, demo_build = reuse_demo() if opts.reuse else build_demo()
            built = "reused" if opts.reuse else f"built in {demo_build:.0f} s"
            print(f"demo tenant {built}", flush=True)
            out["demo"] = table(
                f"Demo tenant (2,000 end users, 150 accounts, ~170k events; {built}; insight cache "
                f"{'on' if opts.cached else 'off'})",
                time_pages(demo, demo_user, opts.requests, opts.match, opts.cached))
            print(out["demo"], flush=True)
        if opts.only in (None, "synthetic"):
            big, big_user, big_build, info = reuse_synthetic() if opts.reuse else build_synthetic()
            built = "reused" if opts.reuse else f"built in {big_build:.0f} s"
            info.update(_verdict(big))
            print(f"synthetic tenant {built} ({info})", flush=True)
            out["synthetic"] = table(
                f"Synthetic tenant (100,000 end users, 5,000 accounts, {info['rollup_rows']:,} rollup rows, "
                f"{info['snapshot_days']} scored days = {info['snapshot_days'] * USERS:,} user snapshots; "
                f"{built})", time_pages(big, big_user, opts.requests, opts.match, opts.cached))
            print(out["synthetic"], flush=True)
        connection.close()
    finally:
        if not (opts.keep or opts.reuse):
            with admin_connect(base) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    if opts.write:
        for part, text in out.items():
            command = ("DATABASE_URL=postgres://postgres@127.0.0.1:5432/engagement .venv/bin/python bench/pages.py "
                       f"--only {part} --write")
            header = (f"Server time per page through Django's test client in process (no network), PostgreSQL 15, "
                      f"2-core machine, {opts.requests} requests after one warm-up, {time.strftime('%Y-%m-%d')}:\n\n"
                      f"```sh\n{command}\n```\n")
            write_doc(part, header + "\n" + text)
        print(f"written to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
