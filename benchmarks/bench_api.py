"""Consent API benchmark, on PostgreSQL behind gunicorn.

Measures:

1. one-track reads per second (GET /api/v1/tracks/{uuid}/consent, token, rate limit in Redis) against a bare
   Django view returning a constant JSON body, on the same gunicorn server (same workers, same middleware),
   in alternating runs; and the CPU each request costs the load generators, the gunicorn workers and the
   PostgreSQL backends (from /proc), which does not depend on what else the machine is running;
2. POST /api/v1/consent/check with 10,000 ids: server time (in process, the whole Django stack) and queries,
   and the round trip through gunicorn;
3. paging the change feed through 100,000 changes (limit 1000), through gunicorn;
4. `as_of` on a track with 1,000 audit events, through gunicorn.

    createdb -h 127.0.0.1 -U postgres bench_api
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_api REDIS_URL=redis://127.0.0.1:6379/14
    .venv/bin/python manage.py migrate
    .venv/bin/python benchmarks/bench_api.py

Options: --workers N (gunicorn sync workers, default 2), --seconds S (per throughput run, default 10),
--clients N (load-generating processes, default 4), --rounds N (bare/read pairs, default 3),
--only check|reads|feed|as_of (repeatable), --bare site|api (the bare view behind the site's middleware, as the
issue compares, or behind the API's lighter stack).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorportal.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.models import User  # noqa: E402
from consent import services as consent_services  # noqa: E402
from consent.models import AuditEvent  # noqa: E402
from downstream import services  # noqa: E402
from downstream.models import ApiClient  # noqa: E402
from tracks.models import Track  # noqa: E402

FEED_CHANGES = 100_000
CHECK_IDS = 10_000
AS_OF_EVENTS = 1_000


def _artist(email: str) -> User:
    user, _ = User.objects.get_or_create(email=email, defaults={"display_name": email.split("@")[0]})
    return user


def _tracks(owner: User, count: int, prefix: str) -> list[Track]:
    have = list(Track.objects.filter(owner=owner).order_by("pk"))
    if len(have) < count:
        import hashlib

        Track.objects.bulk_create(
            [
                Track(
                    owner=owner,
                    title=f"{prefix} {n}",
                    audio_file=f"audio/{prefix}-{n}.flac",
                    sha256=hashlib.sha256(f"{prefix}-{owner.pk}-{n}".encode()).hexdigest(),
                    status=Track.Status.READY,
                )
                for n in range(len(have), count)
            ],
            batch_size=5000,
        )
        have = list(Track.objects.filter(owner=owner).order_by("pk"))
    return have[:count]


def _set(owner: User, track_ids: list[int], granted: bool) -> None:
    consent_services.change_consent(
        actor=owner,
        tracks=Track.objects.filter(pk__in=track_ids),
        changes={"recommendation": granted},
        source="web",
    )


def prepare() -> dict:
    """Data for every measurement; idempotent, so a second run reuses it."""
    started = time.perf_counter()
    reader = _artist("bench-api-reader@example.test")
    one = _tracks(reader, 1, "read")[0]
    if not AuditEvent.objects.filter(track_uuid=one.uuid).exists():
        _set(reader, [one.pk], True)

    checker = _artist("bench-api-check@example.test")
    check_tracks = _tracks(checker, CHECK_IDS, "check")
    if not AuditEvent.objects.filter(artist=checker).exists():
        _set(checker, [t.pk for t in check_tracks[: CHECK_IDS // 2]], True)

    feeder = _artist("bench-api-feed@example.test")
    feed_tracks = [t.pk for t in _tracks(feeder, 10_000, "feed")]
    have = AuditEvent.objects.filter(artist=feeder, kind="consent_changed").count()
    for round_ in range(have // 10_000, FEED_CHANGES // 10_000):
        _set(feeder, feed_tracks, round_ % 2 == 0)

    historian = _artist("bench-api-history@example.test")
    history = _tracks(historian, 1, "history")[0]
    have = AuditEvent.objects.filter(track_uuid=history.uuid).count()
    for n in range(have, AS_OF_EVENTS):
        _set(historian, [history.pk], n % 2 == 0)
    middle = (AuditEvent.objects.filter(track_uuid=history.uuid).order_by("seq").values_list("created_at", flat=True))[
        AS_OF_EVENTS // 2
    ]

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what autovacuum would do after the bulk loads
    ApiClient.objects.filter(name="bench").delete()
    issued = services.create_client(
        name="bench", contact="bench", purposes=["recommendation", "fraud_detection", "generative_training"]
    )
    ApiClient.objects.filter(pk=issued.client.pk).update(rate_limit=100_000_000)
    print(f"data ready in {time.perf_counter() - started:.1f} s", flush=True)
    return {
        "token": issued.token,
        "one": str(one.uuid),
        "check_ids": [str(t.uuid) for t in check_tracks],
        "history": str(history.uuid),
        "middle": middle.isoformat(),
    }


# --- gunicorn ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.bench_api_settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_HSTS_SECONDS": "0",
        "EMAIL_URL": "console://",
        "LOG_LEVEL": "WARNING",
        "DATABASE_CONN_MAX_AGE": "60",
        # Required with DEBUG off; the API never signs audio, so the files need not exist.
        "PUBLIC_C2PA_CERT_CHAIN": os.environ.get("PUBLIC_C2PA_CERT_CHAIN", "/nonexistent/bench-chain.pem"),
        "PUBLIC_C2PA_PRIVATE_KEY": os.environ.get("PUBLIC_C2PA_PRIVATE_KEY", "/nonexistent/bench-key.pem"),
    }
    process = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "creatorportal.wsgi",
            "--chdir",
            str(ROOT),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status, _ = request(port, "GET", "/bench/constant")
            if status == 200:
                return process, port
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("gunicorn did not start")


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _hammer(port: int, path: str, headers: dict, seconds: float, out) -> None:
    done = errors = 0
    cpu = time.process_time()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        status, _ = request(port, "GET", path, headers=headers)
        done += 1
        errors += status != 200
    out.put((done, errors, time.process_time() - cpu))


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: set[int]) -> dict[int, float]:
    """User + system CPU of each live process, from /proc (Linux)."""
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / _TICKS
    return seconds


def _children(pid: int) -> set[int]:
    try:
        return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def _database_backends() -> set[int]:
    """The PostgreSQL backends serving this benchmark's database (the gunicorn workers' connections)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids = {row[0] for row in cursor.fetchall()}
    connection.close()
    return pids


@dataclass
class Run:
    per_second: float
    requests: int
    client_cpu_ms: float  # per request, the load generators
    server_cpu_ms: float  # per request, the gunicorn workers
    database_cpu_ms: float  # per request, the PostgreSQL backends of this database


def throughput(port: int, path: str, headers: dict, seconds: float, clients: int, master: int = 0) -> Run:
    out = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_hammer, args=(port, path, headers, seconds, out)) for _ in range(clients)]
    workers = _children(master) if master else set()
    backends = _database_backends() if master else set()
    before = _cpu_seconds(workers | backends)
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    backends |= _database_backends() if master else set()
    after = _cpu_seconds(workers | backends)
    errors = sum(e for _, e, _ in results)
    if errors:
        raise SystemExit(f"{errors} requests to {path} did not answer 200")
    done = sum(d for d, _, _ in results)

    def spent(pids: set[int]) -> float:
        return sum(after[p] - before.get(p, 0.0) for p in pids if p in after) * 1000 / max(done, 1)

    return Run(done / seconds, done, sum(c for _, _, c in results) * 1000 / done, spent(workers), spent(backends))


# --- Measurements -------------------------------------------------------------------------------


def measure_check_in_process(data: dict) -> tuple[list[float], list[float], list[float], int]:
    """Wall time, this process's CPU time and the database's time of the whole request, and its queries."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    # Keep one connection (as gunicorn with CONN_MAX_AGE does), so the queries can be counted.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {data['token']}", HTTP_HOST="127.0.0.1")
    body = json.dumps({"purpose": "recommendation", "id_type": "uuid", "ids": data["check_ids"]})
    walls, cpus, dbs = [], [], []
    queries = 0
    for _ in range(12):
        # The log keeps 9,000 queries; once full, CaptureQueriesContext counts nothing.
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as captured:
            started, cpu = time.perf_counter(), time.process_time()
            response = client.post("/api/v1/consent/check", body, content_type="application/json")
            walls.append((time.perf_counter() - started) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
        assert response.status_code == 200, response.content[:200]
        queries = len(captured)
        dbs.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
    return walls[2:], cpus[2:], dbs[2:], queries


def measure_read_cost_in_process(data: dict, rounds: int = 200) -> dict[str, float]:
    """CPU (this process) and database time per request, one-track read vs the bare view, whole Django stack."""
    from django.test import override_settings

    client = Client(HTTP_AUTHORIZATION=f"Bearer {data['token']}", HTTP_HOST="127.0.0.1")
    costs = {}
    with override_settings(ROOT_URLCONF="benchmarks.bench_api_urls"):
        for name, path in (("bare", "/bench/constant"), ("read", f"/api/v1/tracks/{data['one']}/consent")):
            for _ in range(20):
                client.get(path)
            connection.queries_log.clear()
            with CaptureQueriesContext(connection) as captured:
                cpu = time.process_time()
                for _ in range(rounds):
                    assert client.get(path).status_code == 200
                costs[f"{name}_cpu_ms"] = (time.process_time() - cpu) / rounds * 1000
            costs[f"{name}_db_ms"] = sum(float(q["time"]) for q in captured.captured_queries) / rounds * 1000
            costs[f"{name}_queries"] = len(captured) / rounds
    return costs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/read throughput pairs")
    parser.add_argument(
        "--bare",
        choices=["site", "api"],
        default="site",
        help="the bare view on the site's full middleware (the issue's comparison) or on the API's own",
    )
    parser.add_argument(
        "--only", action="append", choices=["check", "reads", "feed", "as_of"], help="run only these (repeatable)"
    )
    args = parser.parse_args()
    wanted = set(args.only or ["check", "reads", "feed", "as_of"])
    if connection.vendor != "postgresql":
        raise SystemExit("Run against PostgreSQL (DATABASE_URL=postgres://...).")

    data = prepare()
    auth = {"Authorization": f"Bearer {data['token']}"}

    print(f"load average before: {os.getloadavg()}", flush=True)
    if "check" in wanted:
        walls, cpus, dbs, check_queries = measure_check_in_process(data)
        print(
            f"consent/check, 10,000 ids, in process (whole Django stack), {len(walls)} runs: wall median "
            f"{statistics.median(walls):.1f} ms (min {min(walls):.1f}); CPU of the server process median "
            f"{statistics.median(cpus):.1f} ms (min {min(cpus):.1f}); database time median "
            f"{statistics.median(dbs):.1f} ms; {check_queries} queries",
            flush=True,
        )
    if "reads" in wanted:
        cost = measure_read_cost_in_process(data)
        print(
            "per request, in process: one-track read {read_cpu_ms:.2f} ms CPU + {read_db_ms:.2f} ms database "
            "({read_queries:.0f} queries); bare view {bare_cpu_ms:.2f} ms CPU + {bare_db_ms:.2f} ms database".format(
                **cost
            ),
            flush=True,
        )
    connection.close()

    process, port = start_gunicorn(args.workers)
    try:
        one = f"/api/v1/tracks/{data['one']}/consent"
        status, _ = request(port, "GET", one, headers=auth)
        assert status == 200, status
        if "reads" in wanted:
            measure_reads(port, process.pid, one, auth, args)
        if "check" in wanted:
            measure_check_through_gunicorn(port, data, auth)
        if "feed" in wanted:
            measure_feed(port, auth)
        if "as_of" in wanted:
            measure_as_of(port, data, auth)
    finally:
        process.terminate()
        process.wait(timeout=30)


BARE_PATHS = {"site": "/bench/constant", "api": "/api/v1/bench/constant"}


def measure_reads(port: int, master: int, one: str, auth: dict, args) -> None:
    """Alternating runs of the bare view and the read, so both see the same machine load; and the CPU each
    request costs the load generators, the gunicorn workers and PostgreSQL, which the load does not change."""
    bare = BARE_PATHS[args.bare]
    print(f"bare view: {bare}", flush=True)
    throughput(port, bare, {}, 2, args.clients)  # warm-up
    throughput(port, one, auth, 2, args.clients)
    bares, reads = [], []
    for _ in range(args.rounds):
        bares.append(throughput(port, bare, {}, args.seconds, args.clients, master))
        reads.append(throughput(port, one, auth, args.seconds, args.clients, master))
    ratios = [r.per_second / b.per_second for r, b in zip(reads, bares, strict=True)]
    overall = sum(r.requests for r in reads) / sum(b.requests for b in bares)
    print(f"load average after the read runs: {os.getloadavg()}", flush=True)
    print(
        f"one-track reads: {', '.join(f'{r.per_second:.0f}' for r in reads)} req/s; bare constant-JSON view: "
        f"{', '.join(f'{b.per_second:.0f}' for b in bares)} req/s; ratio per pair "
        f"{', '.join(f'{x:.2f}' for x in ratios)}, median {statistics.median(ratios):.2f}, total {overall:.2f} "
        f"({args.workers} gunicorn workers, {args.clients} client processes, {args.seconds:.0f} s per run)",
        flush=True,
    )

    def cost(runs: list[Run]) -> tuple[float, float, float]:
        total = sum(r.requests for r in runs)
        return (
            sum(r.client_cpu_ms * r.requests for r in runs) / total,
            sum(r.server_cpu_ms * r.requests for r in runs) / total,
            sum(r.database_cpu_ms * r.requests for r in runs) / total,
        )

    (bare_client, bare_server, bare_db), (read_client, read_server, read_db) = cost(bares), cost(reads)
    bare_total, read_total = bare_client + bare_server + bare_db, read_client + read_server + read_db
    print(
        f"CPU per request (load generator + gunicorn worker + PostgreSQL): bare {bare_client:.2f} + {bare_server:.2f} "
        f"+ {bare_db:.2f} = {bare_total:.2f} ms; read {read_client:.2f} + {read_server:.2f} + {read_db:.2f} = "
        f"{read_total:.2f} ms; when CPU is the limit the ratio is {bare_total / read_total:.2f} "
        f"(server side only: {(bare_server + bare_db) / (read_server + read_db):.2f})",
        flush=True,
    )


def measure_check_through_gunicorn(port: int, data: dict, auth: dict) -> None:
    body = json.dumps({"purpose": "recommendation", "id_type": "uuid", "ids": data["check_ids"]}).encode()
    headers = {**auth, "Content-Type": "application/json"}
    rounds = []
    for _ in range(9):
        started = time.perf_counter()
        status, payload = request(port, "POST", "/api/v1/consent/check", body, headers)
        rounds.append((time.perf_counter() - started) * 1000)
        assert status == 200, payload[:200]
    print(
        f"consent/check, 10,000 ids, through gunicorn (client's round trip, {len(body) // 1000} kB in): "
        f"median {statistics.median(rounds[2:]):.1f} ms (min {min(rounds[2:]):.1f})",
        flush=True,
    )


def measure_feed(port: int, auth: dict) -> None:
    started = time.perf_counter()
    after, pages, seen = None, 0, 0
    while True:
        path = "/api/v1/consent/changes?purpose=recommendation&limit=1000" + (f"&after={after}" if after else "")
        status, payload = request(port, "GET", path, headers=auth)
        assert status == 200, payload[:200]
        page = json.loads(payload)
        pages += 1
        seen += len(page["changes"])
        after = page["next"]
        if not page["has_more"]:
            break
    elapsed = time.perf_counter() - started
    print(
        f"change feed: {seen} changes in {pages} pages in {elapsed:.1f} s ({seen / elapsed:.0f} changes/s, "
        f"{elapsed / pages * 1000:.0f} ms per page of 1000)",
        flush=True,
    )


def measure_as_of(port: int, data: dict, auth: dict) -> None:
    from urllib.parse import quote

    path = f"/api/v1/tracks/{data['history']}/consent?as_of={quote(data['middle'])}"
    latencies = []
    for _ in range(50):
        started = time.perf_counter()
        status, payload = request(port, "GET", path, headers=auth)
        latencies.append((time.perf_counter() - started) * 1000)
        assert status == 200, payload[:200]
    latencies.sort()
    print(
        f"as_of on a track with {AS_OF_EVENTS} events: median {statistics.median(latencies):.1f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95)]:.1f} ms",
        flush=True,
    )


if __name__ == "__main__":
    main()
