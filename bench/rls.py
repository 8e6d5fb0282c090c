"""What row-level security costs the tracking API: the same requests with DATABASE_RLS=0 and =1, interleaved.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/rls.py [--rounds 5]

Creates (and drops at the end) its own database (BENCH_DB, default
engagement_bench_rls) on that server and migrates it. Each round starts one
process with RLS off and one with it on (in turn); each posts the same
`--batches` batches of 100 `track` events of known end users to /v1/batch
through Django's test client, in process: the whole request path (write-key
cache, normalisation, the one-statement store) without HTTP or gunicorn, whose
noise on a shared 2-core machine is larger than the effect. It reports, per
batch, the wall time, the process's CPU and its PostgreSQL backend's CPU
(/proc, Linux only), median over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = os.environ.get("BENCH_DB", "engagement_bench_rls")
USERS = 500
EVENTS = ["Logged in", "Added photo", "Edited photo", "Shared photo"]


def db_url(base: str, name: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path=f"/{name}"))


def admin(base: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(db_url(base, "postgres"), autocommit=True) as conn:
        conn.execute(sql)


def setup_django(url: str, rls: str) -> None:
    os.environ.update(DATABASE_URL=url, DATABASE_RLS=rls, INGEST_RATE_LIMIT_PER_SECOND="0", LOG_LEVEL="WARNING")
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engagement_site.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def body(key: str, seed: int) -> bytes:
    batch = [
        {
            "type": "track",
            "userId": f"user-{(seed * 100 + i) % USERS}",
            "event": EVENTS[i % len(EVENTS)],
            "messageId": str(uuid.uuid4()),
        }
        for i in range(100)
    ]
    return json.dumps({"batch": batch, "writeKey": key}).encode()


def prepare(url: str) -> str:
    """Migrate, create the tenant and a write key, and send every end user and activity once."""
    setup_django(url, "1")
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from accounts import rls
    from accounts.models import ApiKeyKind, Tenant
    from accounts.services import api_key_create

    call_command("migrate", verbosity=0)
    tenant = Tenant.objects.create(name="Bench", slug="bench", product_name="Bench")
    with rls.tenant_context(tenant):
        _, key = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="bench")
    client = Client()
    for seed in range(USERS // 100 + 1):
        assert client.post("/v1/batch", body(key, seed), "application/json").status_code == 200
    with rls.bypass("bench: statistics"), connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return key


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, rls: str, key: str, batches: int) -> dict:
    setup_django(url, rls)
    from django.db import connection
    from django.test import Client

    client = Client()
    bodies = [body(key, seed) for seed in range(batches + 20)]
    for b in bodies[:20]:  # warm-up: connection, prepared statements, key cache
        assert client.post("/v1/batch", b, "application/json").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), current_user")
        pid, user = cursor.fetchone()
    wall, cpu, pg = time.perf_counter(), time.process_time(), backend_cpu(pid)
    for b in bodies[20:]:
        response = client.post("/v1/batch", b, "application/json")
        assert response.status_code == 200, response.content
    wall, cpu, pg = time.perf_counter() - wall, time.process_time() - cpu, backend_cpu(pid) - pg
    return {"user": user, "wall_ms": wall * 1000 / batches, "app_ms": cpu * 1000 / batches,
            "pg_ms": pg * 1000 / batches}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--child", choices=["prepare", "0", "1"], help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        url = os.environ["BENCH_DATABASE_URL"]
        result = prepare(url) if opts.child == "prepare" else measure(url, opts.child, opts.key, opts.batches)
        print(json.dumps(result))
        return
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL server; the benchmark creates and drops its own database.")
    url = db_url(base, BENCH_DB)
    env = {**os.environ, "BENCH_DATABASE_URL": url}

    def child(*args) -> object:
        out = subprocess.run([sys.executable, __file__, *args], env=env, cwd=ROOT, check=True, capture_output=True,
                             text=True)  # fmt: skip
        return json.loads(out.stdout.strip().splitlines()[-1])

    admin(base, f"DROP DATABASE IF EXISTS {BENCH_DB}")
    admin(base, f"CREATE DATABASE {BENCH_DB}")
    try:
        key = child("--child", "prepare")
        results = {"0": [], "1": []}
        for n in range(opts.rounds):
            for rls in ("0", "1") if n % 2 == 0 else ("1", "0"):
                r = child("--child", rls, "--key", key, "--batches", str(opts.batches))
                results[rls].append(r)
                load = Path("/proc/loadavg").read_text().split()[:3]
                print(f"round {n + 1} RLS={rls} ({r['user']}): wall {r['wall_ms']:.2f} ms, app CPU "
                      f"{r['app_ms']:.2f} ms, PostgreSQL CPU {r['pg_ms']:.2f} ms per batch; load {' '.join(load)}",
                      flush=True)  # fmt: skip
    finally:
        admin(base, f"DROP DATABASE IF EXISTS {BENCH_DB}")
    print()
    for name in ("wall_ms", "app_ms", "pg_ms"):
        off = statistics.median(r[name] for r in results["0"])
        on = statistics.median(r[name] for r in results["1"])
        print(f"median {name}: RLS off {off:.3f}, on {on:.3f} ({(on - off) / off * 100:+.1f}%)")


if __name__ == "__main__":
    main()
