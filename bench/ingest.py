"""Ingestion benchmark: the HTTP API under gunicorn on PostgreSQL vs a bare COPY.

    .venv/bin/python bench/ingest.py [--seconds 20] [--clients 4] [--workers 4]

Creates a scratch database (engagement_bench), migrates it, starts gunicorn,
sends batches of 100 track events from several client processes for a fixed
time, and prints events/s accepted (each 200 means committed), p50/p99 latency
per batch, then — in the same run, on the same table — the rate of a bare COPY
of equivalent rows, and the ratio between the two.
"""

import argparse
import base64
import http.client
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB = "engagement_bench"
PORT = int(os.environ.get("BENCH_PORT", "8765"))
EVENTS = ["Logged in", "Added photo", "Edited photo", "Shared photo", "Commented on photo", "Invited friend"]


def sh(*args, env=None, **kwargs):
    return subprocess.run(args, cwd=ROOT, env=env, check=True, capture_output=True, text=True, **kwargs)


def setup_database(env) -> str:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    sh(sys.executable, "manage.py", "migrate", "-v0", env=env)
    out = sh(sys.executable, "manage.py", "create_tenant", "--name", "Bench", "--product", "Bench", "--owner",
             "bench@example.com", env=env)  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


def batch_body(rng_seed: int, n: int = 100) -> bytes:
    now = datetime.now(UTC).isoformat()
    batch = [
        {
            "type": "track",
            "userId": f"user-{(rng_seed * 7919 + i) % 5000}",
            "event": EVENTS[(rng_seed + i) % len(EVENTS)],
            "messageId": str(uuid.uuid4()),
            "timestamp": now,
            "properties": {"plan": "paid", "size": i},
            "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
            "integrations": {},
        }
        for i in range(n)
    ]
    return json.dumps({"batch": batch, "sentAt": now}).encode()


def client_loop(key: str, seconds: float, seed: int, queue) -> None:
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    headers = {"Content-Type": "application/json", "Authorization": auth}
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    latencies, ok, failed, i = [], 0, 0, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = batch_body(seed * 100_000 + i)
        i += 1
        start = time.perf_counter()
        try:
            conn.request("POST", "/v1/batch", body, headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
            failed += 1
            continue
        latencies.append(time.perf_counter() - start)
        if response.status == 200:
            ok += 1
        else:
            failed += 1
    queue.put((latencies, ok, failed))


def run_http(key: str, seconds: float, clients: int) -> dict:
    queue = mp.Queue()
    procs = [mp.Process(target=client_loop, args=(key, seconds, seed, queue)) for seed in range(clients)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - start
    latencies = sorted(latency for r in results for latency in r[0])
    ok = sum(r[1] for r in results)
    return {
        "batches_ok": ok,
        "batches_failed": sum(r[2] for r in results),
        "events_per_s": ok * 100 / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def run_copy(rows: int) -> float:
    """Bare COPY of rows shaped like the API's into the same events table (same indexes)."""
    with psycopg.connect(f"{PG}/{DB}") as conn:
        tenant_id, user_id, activity_id = conn.execute(
            "SELECT e.tenant_id, e.end_user_id, e.activity_id FROM events_event e LIMIT 1"
        ).fetchone()
        payload = json.loads(batch_body(1, 1))["batch"][0]
        now = datetime.now(UTC)
        start = time.perf_counter()
        with conn.cursor() as cur:
            with cur.copy(
                "COPY events_event (tenant_id, message_id, type, end_user_id, activity_id, timestamp, received_at,"
                " day, payload) FROM STDIN"
            ) as copy:
                for _ in range(rows):
                    payload["messageId"] = mid = str(uuid.uuid4())
                    copy.write_row(
                        (tenant_id, mid, "track", user_id, activity_id, now, now, now.date(), json.dumps(payload))
                    )
        conn.commit()
        return rows / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers (about 2 per core)")
    args = parser.parse_args()

    env = {**os.environ, "DATABASE_URL": f"{PG}/{DB}", "DEBUG": "False", "SECRET_KEY": "bench-" + uuid.uuid4().hex,
           "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "False", "INGEST_RATE_LIMIT_PER_SECOND": "0",
           "LOG_LEVEL": "WARNING"}  # fmt: skip
    env.pop("REDIS_URL", None)
    key = setup_database(env)
    gunicorn = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "engagement_site.wsgi",
            "-w",
            str(args.workers),
            "-b",
            f"127.0.0.1:{PORT}",
            "--log-level",
            "warning",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
    )
    try:
        time.sleep(3)
        run_http(key, 2, 1)  # warm-up: connections, imports, catalog rows
        http_result = run_http(key, args.seconds, args.clients)
    finally:
        gunicorn.terminate()
        gunicorn.wait()
    with psycopg.connect(f"{PG}/{DB}") as conn:
        stored = conn.execute("SELECT count(*) FROM events_event").fetchone()[0]
        rollup = conn.execute("SELECT coalesce(sum(count), 0) FROM events_dailyactivitycount").fetchone()[0]
    copy_rate = run_copy(max(50_000, int(http_result["events_per_s"] * 5)))

    print(f"gunicorn workers={args.workers} clients={args.clients} seconds={args.seconds} batch=100")
    print(f"HTTP API: {http_result['events_per_s']:,.0f} events/s accepted and committed "
          f"({http_result['batches_ok']} batches ok, {http_result['batches_failed']} failed)")  # fmt: skip
    print(f"latency per batch of 100: p50 {http_result['p50_ms']:.1f} ms, p99 {http_result['p99_ms']:.1f} ms")
    print(f"stored events {stored:,}, rollup total {rollup:,} (must be equal)")
    print(f"baseline bare COPY into the same table: {copy_rate:,.0f} rows/s")
    print(f"ratio API / COPY: {http_result['events_per_s'] / copy_rate:.2f}")


if __name__ == "__main__":
    main()
