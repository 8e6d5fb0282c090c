"""Time of the at-risk rule (insights/queries/risk.py) against the dashboard's movers query, same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> .venv/bin/python bench/risk.py [--accounts 2000] [--runs 7]
        [--reuse]

Works in the database of DATABASE_URL (migrated first): creates a tenant "bench-risk-<n>" with
--accounts accounts of 8 seats each, a rollup over 90 days written set-based on the server
(every seat active on about half the days; a quarter of the accounts with half their seats silent
for the last 8-13 days), one activity worth 1 point, scores the latest day and 7 and 14 days
before with the engine, then times `at_risk` (accounts), `at_risk` (users) and `movers`
(accounts, the dashboard's other account query, as the baseline) --runs times each and prints
p50 in ms and the ratio to the baseline. Use a scratch database (the tenant stays; drop the database after).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engagement_site.settings")
os.environ.setdefault("DATABASE_RLS", "0")
os.environ.setdefault("INSIGHTS_CACHE_SECONDS", "0")  # time the query, not the cache

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import Tenant  # noqa: E402
from accounts.scoping import tenant_sql  # noqa: E402
from events.models import Activity  # noqa: E402
from insights.queries.movers import movers  # noqa: E402
from insights.queries.risk import at_risk  # noqa: E402
from scoring import engine  # noqa: E402
from scoring.models import ActivityWeight, ModelStatus, ScoringModel  # noqa: E402

SEATS = 8


def build(accounts: int) -> tuple[Tenant, ScoringModel]:
    tenant = Tenant.objects.create(name="Bench risk", slug=f"bench-risk-{uuid.uuid4().hex[:8]}",
                                   product_name="Bench", time_zone="UTC")
    activity = Activity.objects.create(tenant=tenant, name="Used feature", first_seen_at=timezone.now())
    day = tenant.today() - timedelta(days=1)
    old = timezone.now() - timedelta(days=400)
    accounts_scope, accounts_params = tenant_sql(tenant, "a")
    seats_scope, seats_params = tenant_sql(tenant, "u")
    with connection.cursor() as c:
        c.execute("""INSERT INTO events_customeraccount (tenant_id, public_id, group_id, name, traits, first_seen_at,
                     updated_at) SELECT %s, gen_random_uuid(), 'acct-' || g, 'Account ' || g, '{}', %s, %s
                     FROM generate_series(1, %s) g""", [tenant.pk, old, old, accounts])
        c.execute(f"""INSERT INTO events_enduser (tenant_id, public_id, user_id, traits, account_id, first_seen_at,
                     updated_at)
                     SELECT a.tenant_id, gen_random_uuid(), a.group_id || '-seat-' || s, '{{}}', a.id, %s, %s
                     FROM events_customeraccount a CROSS JOIN generate_series(1, %s) s WHERE {accounts_scope}""",  # noqa: S608
                  [old, old, SEATS, *accounts_params])
        # Seat s of account k is active on day d when (d + s + k) is even; in every fourth account the
        # seats 5-8 stop 8 + (s - 5) * 2 days before `day`.
        c.execute(f"""INSERT INTO events_dailyactivitycount (tenant_id, end_user_id, activity_id, day, "count")
            SELECT u.tenant_id, u.id, %s, CAST(%s AS DATE) - ago, 1 + (ago %% 3)
            FROM events_enduser u CROSS JOIN generate_series(0, 89) ago
            WHERE {seats_scope} AND (ago + u.id + u.account_id) %% 2 = 0
              AND NOT (u.account_id %% 4 = 0 AND CAST(split_part(u.user_id, '-seat-', 2) AS INTEGER) > 4
                       AND ago < 8 + (CAST(split_part(u.user_id, '-seat-', 2) AS INTEGER) - 5) * 2)""",  # noqa: S608
                  [activity.pk, day, *seats_params])
    model = ScoringModel.objects.create(tenant=tenant, version=1, status=ModelStatus.PUBLISHED,
                                        published_at=timezone.now())
    ActivityWeight.objects.create(tenant=tenant, model=model, activity=activity, points=1)
    for back in (14, 7, 0):
        engine.compute_day(model, day - timedelta(days=back))
    with connection.cursor() as c:
        c.execute("ANALYZE")
    return tenant, model


def p50(func, runs: int) -> float:
    func()  # warm up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="time the bench tenant an earlier run built")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("bench/risk.py needs DATABASE_URL pointing at PostgreSQL.")
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    tenant = Tenant.objects.filter(slug__startswith="bench-risk-").first() if args.reuse else None
    if tenant is None:
        tenant, model = build(args.accounts)
        print(f"built {args.accounts:,} accounts x {SEATS} seats, 90 days, in {time.perf_counter() - started:.1f} s")
    else:
        model = ScoringModel.objects.for_tenant(tenant).get(status=ModelStatus.PUBLISHED)
    day = tenant.today() - timedelta(days=1)
    found = at_risk(tenant, day=day, model=model)
    base = p50(lambda: movers(tenant, subject="accounts", day=day, model=model), args.runs)
    accounts_ms = p50(lambda: at_risk(tenant, day=day, model=model), args.runs)
    users_ms = p50(lambda: at_risk(tenant, day=day, model=model, subject="users"), args.runs)
    print(f"accounts at risk: {found.count:,} "
          f"(silent seats: {sum('silent_seats' in i.codes for i in found.items):,})")
    print("| query | p50 ms | ratio to movers |\n|---|---:|---:|")
    print(f"| movers (accounts), baseline | {base:.1f} | 1.00 |")
    print(f"| at_risk (accounts) | {accounts_ms:.1f} | {accounts_ms / base:.2f} |")
    print(f"| at_risk (end users) | {users_ms:.1f} | {users_ms / base:.2f} |")


if __name__ == "__main__":
    main()
