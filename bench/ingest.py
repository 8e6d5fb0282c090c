"""Ingestion benchmark: the HTTP API under gunicorn on PostgreSQL vs a bare COPY.

    .venv/bin/python bench/ingest.py [--seconds 20] [--clients 4] [--workers 3] [--redis | --no-redis]

Creates a scratch database (engagement_bench_ingest), migrates it, starts gunicorn,
sends batches of 100 track events from several client processes for a fixed
time, and prints events/s accepted (each 200 means committed), p50/p99 latency
per batch, then — in the same run, on the same table — the rate of a bare COPY
of equivalent rows, and the ratio between the two.

Equivalent rows: the COPY baseline writes rows with the same end-user and
activity distribution as the batches sent (the same generator), a random
message id each, and the payload the API stored, so the unique index and the
heap see the same work. Only the COPY itself is timed (rows are built first).

--redis (the default when Redis answers on 127.0.0.1:6379) runs the app as in
production: REDIS_URL=redis://127.0.0.1:6379/7 (cache, so the rate limiter's
two round trips per request) and the rate limiter on, with a limit far above
what the benchmark sends. --no-redis measures without Redis and rate limiting.
The load average is printed before and after: the machine is shared.

--compare-layouts ROUNDS (issue 18): the event table partitioned by month (the
PostgreSQL default) against the plain table (EVENTS_PARTITIONED=0 when
migrating: the unique (tenant, message_id) index on events_event, as before
partitioning), each in its own scratch database (BENCH_DB + "_partitioned" /
"_plain"), interleaved in one session: ROUNDS pairs, the order alternating
(p, plain, plain, p, ...). Prints each run, then the medians and the ratio
partitioned / plain of events/s and of CPU per batch; no COPY baseline there
(the two layouts are each other's baseline).
"""

import argparse
import base64
import io
import json
import multiprocessing as mp
import os
import socket
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
# BENCH_DB / BENCH_REDIS_URL: on a shared server, each person's own database and Redis db.
DB = os.environ.get("BENCH_DB", "engagement_bench_ingest")  # not engagement_bench: bench/score.py drops that
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
RATE_LIMIT = 1_000_000  # per write key per second: on, but never reached
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


def user_of(rng_seed: int, i: int) -> str:
    return f"user-{(rng_seed * 7919 + i) % 5000}"


def event_of(rng_seed: int, i: int) -> str:
    return EVENTS[(rng_seed + i) % len(EVENTS)]


# What analytics.js puts in every message's context, for --browser-context.
BROWSER_CONTEXT = {
    "library": {"name": "analytics.js", "version": "next-1.81.0"},
    "locale": "en-GB",
    "ip": "203.0.113.42",
    "timezone": "Europe/London",
    "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 "
    "Safari/537.36",
    "userAgentData": {"brands": [{"brand": "Chromium", "version": "156"}], "mobile": False, "platform": "Linux"},
    "page": {"path": "/albums/summer", "referrer": "https://www.example.com/", "search": "?ref=home",
             "title": "Summer album - Photo sharing", "url": "https://photos.example.com/albums/summer?ref=home"},
    "campaign": {"name": "winter-sale", "source": "newsletter", "medium": "email"},
}  # fmt: skip


def batch_body(rng_seed: int, n: int = 100, browser_context: bool = False) -> bytes:
    now = datetime.now(UTC).isoformat()
    library = {"library": {"name": "analytics-python", "version": "2.4.0"}}
    batch = [
        {
            "type": "track",
            "userId": user_of(rng_seed, i),
            "event": event_of(rng_seed, i),
            "messageId": str(uuid.uuid4()),
            "timestamp": now,
            "properties": {"plan": "paid", "size": i},
            "context": BROWSER_CONTEXT if browser_context else library,
            "integrations": {},
        }
        for i in range(n)
    ]
    return json.dumps({"batch": batch, "sentAt": now}).encode()


def http_request(body: bytes, auth: str) -> bytes:
    """The whole HTTP/1.1 request for one batch, as it goes on the wire."""
    head = (
        f"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nContent-Type: application/json\r\n"
        f"Authorization: {auth}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def send(request: bytes) -> int:
    """POST one prebuilt request on a new connection (gunicorn's sync workers close each one); its status.

    A bare socket rather than http.client, whose header parsing (email.parser)
    cost the load generator more CPU than the request itself: the clients share
    the 2 cores with the server, so every microsecond they spend is taken from it.
    """
    with socket.create_connection(("127.0.0.1", PORT), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    if not response.startswith(b"HTTP/1.1 ") or b"\r\n\r\n" not in response:
        raise OSError(f"malformed response: {response[:80]!r}")
    return int(response[9:12])


def client_loop(key: str, seconds: float, seed: int, prebuilt: int, browser: bool, ready, go, queue) -> None:
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    # Requests are built before the clock starts (a unique messageId per event, timestamps of
    # now): the load generator shares the 2 cores with the server, so during the run it only
    # sends. If they run out, the rest are built on the fly.
    requests = [http_request(batch_body(seed * 100_000 + i, browser_context=browser), auth) for i in range(prebuilt)]
    latencies, ok, failed, i = [], 0, 0, 0
    ready.put(seed)
    go.wait()
    cpu_start = time.process_time()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if i < prebuilt:
            request = requests[i]
        else:
            request = http_request(batch_body(seed * 100_000 + i, browser_context=browser), auth)
        i += 1
        start = time.perf_counter()
        try:
            status = send(request)
        except OSError:
            failed += 1
            continue
        latencies.append(time.perf_counter() - start)
        if status == 200:
            ok += 1
        else:
            failed += 1
    queue.put((latencies, ok, failed, i, time.process_time() - cpu_start, max(0, i - prebuilt)))


def run_http(key: str, seconds: float, clients: int, prebuilt: int = 0, browser: bool = False) -> dict:
    ready, go, queue = mp.Queue(), mp.Event(), mp.Queue()
    args = (key, seconds)
    procs = [
        mp.Process(target=client_loop, args=(*args, seed, prebuilt, browser, ready, go, queue))
        for seed in range(clients)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get()
    start = time.perf_counter()
    go.set()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - start
    latencies = sorted(latency for r in results for latency in r[0])
    ok = sum(r[1] for r in results)
    sent = max(sum(r[3] for r in results), 1)
    return {
        "batches_ok": ok,
        "batches_failed": sum(r[2] for r in results),
        "batches_sent": [r[3] for r in results],
        "events_per_s": ok * 100 / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "client_cpu_ms": sum(r[4] for r in results) * 1000 / sent,
        "built_on_the_fly": sum(r[5] for r in results),
    }


def copy_rows(conn, rows: int, batches_sent: list[int]) -> io.StringIO:
    """COPY text for `rows` rows like the ones the API stored: same users and activities, in the same mix.

    Replays the clients' generator (client c sent batches seeded c * 100_000 + i)
    over the batches actually sent, round robin, and gives every row a fresh
    random message id; the payload is one the API stored, with that id.
    """
    tenant_id, payload = conn.execute("SELECT tenant_id, payload FROM events_event LIMIT 1").fetchone()
    users = dict(conn.execute("SELECT user_id, id FROM events_enduser WHERE user_id IS NOT NULL").fetchall())
    activities = dict(conn.execute("SELECT name, id FROM events_activity").fetchall())
    seeds = [c * 100_000 + i for i in range(max(batches_sent, default=1)) for c, n in enumerate(batches_sent) if i < n]
    now = datetime.now(UTC)
    ts, day = now.isoformat(), now.date().isoformat()
    buf = io.StringIO()
    written = 0
    while written < rows:
        for seed in seeds:
            for i in range(min(100, rows - written)):
                mid = str(uuid.uuid4())
                payload.update(messageId=mid, userId=user_of(seed, i), event=event_of(seed, i))
                body = json.dumps(payload, separators=(",", ":")).replace("\\", "\\\\")
                buf.write(
                    f"{tenant_id}\t{mid}\ttrack\t{users[user_of(seed, i)]}\t{activities[event_of(seed, i)]}\t\\N\t"
                    f"{ts}\t{ts}\t{day}\t{body}\n"
                )
                written += 1
            if written >= rows:
                break
    buf.seek(0)
    return buf


def run_copy(rows: int, batches_sent: list[int]) -> float:
    """Bare COPY of rows equivalent to the API's into the same events table (same indexes); only COPY is timed."""
    with psycopg.connect(f"{PG}/{DB}") as conn:
        buf = copy_rows(conn, rows, batches_sent)
        start = time.perf_counter()
        with conn.cursor() as cur:
            with cur.copy(
                "COPY events_event (tenant_id, message_id, type, end_user_id, activity_id, account_id, timestamp,"
                " received_at, day, payload) FROM STDIN"
            ) as copy:
                while block := buf.read(1 << 20):
                    copy.write(block)
        conn.commit()
        return rows / (time.perf_counter() - start)


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (Linux /proc; 0 for a process that is gone)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def server_pids(gunicorn_pid: int) -> tuple[list[int], list[int]]:
    """The gunicorn workers, and the PostgreSQL backends serving this database (both on this machine)."""
    workers = [int(p) for p in Path(f"/proc/{gunicorn_pid}/task/{gunicorn_pid}/children").read_text().split()]
    with psycopg.connect(f"{PG}/postgres") as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [DB]
        ).fetchall()
    return workers, [r[0] for r in rows]


def redis_incr_calls() -> int:
    """INCRBY calls the Redis server has answered so far (the rate limiter's counter), or -1."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as sock:
            sock.sendall(b"INFO commandstats\r\n")
            data = b""
            while not data.endswith(b"\r\n") or data.count(b"\r\n") < 2:
                data += sock.recv(65536)
    except OSError:
        return -1
    for line in data.decode().splitlines():
        if line.startswith("cmdstat_incrby:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def cpu_reference_ms() -> float:
    """A fixed pure-Python loop, best of 3: how fast this (shared, virtual) CPU is right now.

    The same code on the same VM has run 20% slower at one hour than at another;
    this line lets runs at different times be compared.
    """
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        total = 0
        for i in range(3_000_000):
            total += i
        best = min(best, time.process_time() - start)
    return best * 1000


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def serve_and_send(args, env, key: str):
    """Start gunicorn on the current DB, warm up, send for args.seconds; the result and CPU counters."""
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
        run_http(key, 3, 2)  # warm-up: connections, imports, catalog rows, most of the 5,000 end users
        with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
            # What autovacuum does after the warm-up's inserts in production; it is off on this machine
            # (SHOW autovacuum), and without statistics the end-user lookup scans every row of the tenant.
            conn.execute("ANALYZE")
        workers, backends = server_pids(gunicorn.pid)
        cpu_before, incr_before = (cpu_seconds(workers), cpu_seconds(backends)), redis_incr_calls()
        # Enough prebuilt bodies for 30,000 events/s; each is ~30 KB.
        prebuilt = int(os.environ.get("PREBUILT", int(args.seconds * 300 / args.clients) + 10))
        http_result = run_http(key, args.seconds, args.clients, prebuilt, args.browser_context)
        cpu_after, incr_after = (cpu_seconds(workers), cpu_seconds(backends)), redis_incr_calls()
    finally:
        gunicorn.terminate()
        gunicorn.wait()
    return http_result, cpu_before, cpu_after, incr_before, incr_after


def compare_layouts(args, env) -> None:
    """Partitioned vs plain event table, interleaved in one session (see the module docstring)."""
    global DB
    base = DB
    keys = {}
    for layout in ("partitioned", "plain"):
        DB = f"{base}_{layout}"
        partitioned = "1" if layout == "partitioned" else "0"
        layout_env = {**env, "DATABASE_URL": f"{PG}/{DB}", "EVENTS_PARTITIONED": partitioned}
        keys[layout] = (setup_database(layout_env), layout_env)
        with psycopg.connect(f"{PG}/{DB}") as conn:
            kind = conn.execute("SELECT relkind FROM pg_class WHERE oid = 'events_event'::regclass").fetchone()[0]
        assert (kind == "p") == (layout == "partitioned"), (layout, kind)
    print(f"gunicorn workers={args.workers} clients={args.clients} seconds={args.seconds} batch=100, "
          f"{args.compare_layouts} rounds; {load()} at the start")  # fmt: skip
    runs: dict[str, list[dict]] = {"partitioned": [], "plain": []}
    for round_ in range(args.compare_layouts):
        order = ("partitioned", "plain") if round_ % 2 == 0 else ("plain", "partitioned")
        for layout in order:
            DB = f"{base}_{layout}"
            key, layout_env = keys[layout]
            before = load()
            result, cpu_before, cpu_after, _, _ = serve_and_send(args, layout_env, key)
            batches = max(result["batches_ok"] + result["batches_failed"], 1)
            app_ms, pg_ms = ((b - a) * 1000 / batches for a, b in zip(cpu_before, cpu_after, strict=True))
            with psycopg.connect(f"{PG}/{DB}") as conn:
                stored = conn.execute("SELECT count(*) FROM events_event").fetchone()[0]
                rollup = conn.execute("SELECT coalesce(sum(count), 0) FROM events_dailyactivitycount").fetchone()[0]
            run = {**result, "app_ms": app_ms, "pg_ms": pg_ms, "ok": stored == rollup}
            runs[layout].append(run)
            print(f"round {round_ + 1} {layout:>11}: {result['events_per_s']:8,.0f} events/s, p50 "
                  f"{result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, CPU per batch app {app_ms:.1f} + "
                  f"PostgreSQL {pg_ms:.1f} ms, stored = rollup: {'yes' if stored == rollup else 'NO'}; "
                  f"{before} -> {load()}")  # fmt: skip
    median = {
        layout: {name: statistics.median(r[name] for r in rs) for name in ("events_per_s", "app_ms", "pg_ms")}
        for layout, rs in runs.items()
    }
    p, q = median["partitioned"], median["plain"]
    print(f"median events/s: partitioned {p['events_per_s']:,.0f}, plain {q['events_per_s']:,.0f}, "
          f"ratio {p['events_per_s'] / q['events_per_s']:.3f}")  # fmt: skip
    cpu_ratio = (p["app_ms"] + p["pg_ms"]) / (q["app_ms"] + q["pg_ms"])
    print(f"median CPU per batch (app + PostgreSQL): partitioned {p['app_ms']:.1f} + {p['pg_ms']:.1f} ms, plain "
          f"{q['app_ms']:.1f} + {q['pg_ms']:.1f} ms, ratio {cpu_ratio:.3f}"
          f" (PostgreSQL alone {p['pg_ms'] / q['pg_ms']:.3f})")  # fmt: skip
    print(f"{load()} at the end")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (3 beat 2 and 4 on 2 cores)")
    parser.add_argument(
        "--redis",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"run the app with REDIS_URL={REDIS_URL} and the rate limiter on (limit {RATE_LIMIT:,}/s per key, never "
        "reached); default: on when Redis answers on 127.0.0.1:6379",
    )
    parser.add_argument(
        "--browser-context",
        action="store_true",
        help="every message carries analytics.js's full context (page, user agent, campaign...): ~0.9 KB each, "
        "~90 KB per batch, over the 32 KB under which a body is decoded without item spans",
    )
    parser.add_argument(
        "--compare-layouts",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="partitioned vs plain event table, ROUNDS interleaved pairs (see the module docstring)",
    )
    args = parser.parse_args()
    if args.redis is None:
        args.redis = redis_answers()

    env = {**os.environ, "DATABASE_URL": f"{PG}/{DB}", "DEBUG": "False", "SECRET_KEY": "bench-" + uuid.uuid4().hex,
           "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "False", "LOG_LEVEL": "WARNING"}  # fmt: skip
    if args.redis:
        env.update(REDIS_URL=REDIS_URL, INGEST_RATE_LIMIT_PER_SECOND=str(RATE_LIMIT))
    else:
        env.pop("REDIS_URL", None)
        env["INGEST_RATE_LIMIT_PER_SECOND"] = "0"
    if args.compare_layouts:
        compare_layouts(args, env)
        return
    load_before, reference_before = load(), cpu_reference_ms()
    key = setup_database(env)
    http_result, cpu_before, cpu_after, incr_before, incr_after = serve_and_send(args, env, key)
    with psycopg.connect(f"{PG}/{DB}") as conn:
        stored = conn.execute("SELECT count(*) FROM events_event").fetchone()[0]
        rollup = conn.execute("SELECT coalesce(sum(count), 0) FROM events_dailyactivitycount").fetchone()[0]
    copy_rate = run_copy(max(50_000, int(http_result["events_per_s"] * 5)), http_result["batches_sent"])
    load_after, reference_after = load(), cpu_reference_ms()

    redis = f"Redis {REDIS_URL}, rate limiter on ({RATE_LIMIT:,}/s)" if args.redis else "no Redis, rate limiter off"
    body_kb = len(batch_body(0, browser_context=args.browser_context)) / 1000
    print(f"gunicorn workers={args.workers} clients={args.clients} seconds={args.seconds} batch=100 "
          f"({body_kb:.1f} KB per body); {redis}")  # fmt: skip
    print(f"{load_before} before, {load_after} after")
    print(f"CPU reference (3M-step Python loop): {reference_before:.0f} ms before, {reference_after:.0f} ms after")
    if args.redis:
        # The limiter fails open when the cache errors: check that it really counted every request.
        print(f"rate limiter: {incr_after - incr_before:,} Redis INCR calls during the run (one per request expected)")
    print(f"HTTP API: {http_result['events_per_s']:,.0f} events/s accepted and committed "
          f"({http_result['batches_ok']} batches ok, {http_result['batches_failed']} failed)")  # fmt: skip
    print(f"latency per batch of 100: p50 {http_result['p50_ms']:.1f} ms, p99 {http_result['p99_ms']:.1f} ms")
    print(f"stored events {stored:,}, rollup total {rollup:,} (must be equal)")
    batches = max(http_result["batches_ok"] + http_result["batches_failed"], 1)
    app_ms, pg_ms = ((after - before) * 1000 / batches for before, after in zip(cpu_before, cpu_after, strict=True))
    print(f"CPU per batch of 100: gunicorn workers {app_ms:.1f} ms, PostgreSQL backends {pg_ms:.1f} ms "
          f"(a 2-core machine has 2,000 ms of CPU per second)")  # fmt: skip
    print(f"load generator: {http_result['client_cpu_ms']:.1f} ms of CPU per batch sent "
          f"(bodies prebuilt; {http_result['built_on_the_fly']} built during the run)")  # fmt: skip
    print(f"baseline bare COPY into the same table: {copy_rate:,.0f} rows/s")
    print(f"ratio API / COPY: {http_result['events_per_s'] / copy_rate:.2f}")


if __name__ == "__main__":
    main()
