"""Email delivery against the SMTP sink's own rate, in one run.

On the database in DATABASE_URL (a throwaway PostgreSQL database) and the Redis
in REDIS_URL (the broker), with an aiosmtpd sink in another process:

1. the sink's own rate: the same policy notices, encoded beforehand, sent over
   one SMTP connection as fast as a bare client can (and with as many bare
   clients in parallel as there are worker processes);
2. delivery by a real `celery worker` (prefork with 1 and 4 processes, or one
   process on the threads pool), from the moment the batches are enqueued
   until the last row is marked sent (its sent_at, written by PostgreSQL);
3. the ratio of the two, and a check that every Message-ID reached the sink
   exactly once and every row is marked sent;
4. the CPU each side spent per email (the worker's processes, the sink, the
   database's backends; the bare client and the sink), which the machine's
   load moves much less than the rates.

    createdb -h 127.0.0.1 -U postgres bench_delivery
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_delivery .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_delivery REDIS_URL=redis://127.0.0.1:6379/7 \\
        .venv/bin/python benchmarks/bench_delivery.py

Options: --users N (notices per round, default 3000), --workers prefork:1,threads:4,prefork:4 (pool and
concurrency of each run: prefork:N is N processes, threads:N one process with N threads; either way N SMTP
connections), --rounds 2, --batch N (rows per task).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorportal.settings")
QUEUE = f"bench-delivery-{os.getpid()}"
os.environ["CELERY_QUEUE"] = QUEUE

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Max  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402
from consent.models import PolicyVersion  # noqa: E402
from consent.policy import FAN_OUT_BATCH, batch_bounds, insert_policy_notices  # noqa: E402
from notifications.models import Notification  # noqa: E402
from notifications.rendering import build_message  # noqa: E402
from notifications.tasks import deliver_notifications  # noqa: E402

# The sink: accepts everything, counts each Message-ID, writes the counts on SIGTERM.
SINK = r"""
import asyncio, collections, json, signal, sys
from aiosmtpd.controller import Controller
counts = collections.Counter()
class Counting:
    async def handle_DATA(self, server, session, envelope):
        for line in envelope.content.split(b"\r\n"):
            if not line:
                break
            if line.lower().startswith(b"message-id:"):
                counts[line.split(b":", 1)[1].strip().decode()] += 1
        return "250 OK"
controller = Controller(Counting(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
def stop(*_):
    controller.stop()
    open(sys.argv[2], "w").write(json.dumps(counts))
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
signal.pause()
"""


# Rows per delivery task (the fan-out and the sweep use NOTIFICATIONS_BATCH_SIZE); --batch changes it here.
BATCH = [settings.NOTIFICATIONS_BATCH_SIZE]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Sink:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.counts_path = workdir / f"sink-{self.port}.json"
        # Run outside the repository: its `public` app would shadow a module aiosmtpd imports.
        self.process = subprocess.Popen(
            [sys.executable, "-c", SINK, str(self.port), str(self.counts_path)],
            cwd=workdir,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline().strip() == "ready"

    def stop(self) -> dict[str, int]:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        return json.loads(self.counts_path.read_text())


def ensure_users(count: int) -> None:
    have = User.objects.filter(email__startswith="bench-user-").count()
    joined = timezone.now() - timedelta(days=1)
    User.objects.bulk_create(
        [
            User(email=f"bench-user-{n}@example.test", display_name=f"Bench {n}", date_joined=joined)
            for n in range(have, count)
        ],
        batch_size=5000,
    )


def write_notices() -> list[int]:
    """A new policy version and its outbox rows, written as the fan-out writes them."""
    latest = PolicyVersion.objects.order_by("-version").first()
    version = PolicyVersion.objects.create(
        version=latest.version + 1,
        summary="Benchmark terms.",
        full_text=f"Benchmark terms, version {latest.version + 1}.",
        effective_at=timezone.now(),
        is_material=True,
        published_at=timezone.now(),
    )
    ids: list[int] = []
    after = 0
    while True:
        with transaction.atomic():
            ids += insert_policy_notices(version, after_user_id=after)
        last_id, count = batch_bounds(version, after_user_id=after)
        if last_id is None or count < FAN_OUT_BATCH:
            return sorted(ids)
        after = last_id


def encoded(ids: list[int]) -> list[tuple[str, list[str], bytes]]:
    """The same messages as (sender, recipients, bytes), built the ordinary way, before any timing."""
    from email import policy

    out = []
    for row in Notification.objects.filter(id__in=ids).select_related("recipient").order_by("id"):
        message = build_message(row)
        out.append((settings.DEFAULT_FROM_EMAIL, message.recipients(), message.message(policy=policy.SMTP).as_bytes()))
    return out


def _bare_client(port: int, messages: list[tuple[str, list[str], bytes]]) -> tuple[int, float]:
    """(messages sent, CPU seconds this client spent)."""
    cpu = time.process_time()
    with smtplib.SMTP("127.0.0.1", port) as client:
        for sender, recipients, data in messages:
            client.sendmail(sender, recipients, data)
    return len(messages), time.process_time() - cpu


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live descendants (all their threads), from /proc."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (FileNotFoundError, ProcessLookupError):
        return total
    return total + sum(cpu_seconds(int(child)) for child in children)


class DatabaseCPU:
    """CPU spent by this database's backends while it runs: sampled from /proc every 50 ms, since a Celery
    worker closes its database connection after each task and a backend's CPU is gone once it exits (the
    last 50 ms of a short-lived backend are missed, so this is a slight undercount)."""

    def __init__(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid(), current_database()")
            own, self.database = cursor.fetchone()
        self.postmaster = int(Path(f"/proc/{own}/stat").read_text().rsplit(")", 1)[1].split()[1])
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            children = Path(f"/proc/{self.postmaster}/task/{self.postmaster}/children").read_text().split()
        except FileNotFoundError:
            return
        for pid in map(int, children):
            try:
                if f" {self.database} ".encode() not in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" "):
                    continue
            except FileNotFoundError:
                continue
            self.last[pid] = cpu_seconds(pid)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._sample()

    def __enter__(self) -> DatabaseCPU:
        self._sample()  # backends alive at the start count from here; later ones from their start
        self.first = dict(self.last)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def seconds(self) -> float:
        return sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())


class Floor:
    """The sink's rate for `clients` bare SMTP clients in parallel, and the CPU per message on each side."""

    def __init__(self, sink: Sink, messages, clients: int) -> None:
        shares = [messages[n::clients] for n in range(clients)]
        with ProcessPoolExecutor(clients) as pool:
            list(pool.map(int, range(clients)))  # the pool's processes started before the clock
            sink_cpu = cpu_seconds(sink.process.pid)
            started = time.perf_counter()
            done = list(pool.map(_bare_client, [sink.port] * clients, shares))
            elapsed = time.perf_counter() - started
        sent = sum(n for n, _ in done)
        self.rate = sent / elapsed
        self.client_ms = 1000 * sum(cpu for _, cpu in done) / sent
        self.sink_ms = 1000 * (cpu_seconds(sink.process.pid) - sink_cpu) / sent


class Workers:
    def __init__(self, pool: str, concurrency: int, port: int, workdir: Path, tree: Path = ROOT) -> None:
        env = {
            **os.environ,
            "EMAIL_URL": f"smtp://127.0.0.1:{port}",
            "CELERY_QUEUE": QUEUE,
            "DJANGO_SETTINGS_MODULE": "creatorportal.settings",
        }
        self.log_path = workdir / f"worker-{pool}-{concurrency}-{port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 -- closed in stop()
        command = [
            sys.executable, "-m", "celery", "-A", "creatorportal", "worker", "--loglevel=WARNING",
            f"--pool={pool}", f"--concurrency={concurrency}", "--prefetch-multiplier=1",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", QUEUE, "-n", f"{QUEUE}-{port}@%h",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, env=env, cwd=tree, stdout=self._log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def wait_sent(ids: list[int], timeout: float = 600) -> datetime:
    """When the last of these rows was marked sent (its sent_at), polled cheaply (the poll must not load
    the database it measures, and its interval must not count as delivery time)."""
    deadline = time.monotonic() + timeout
    campaign = Notification.objects.get(id=ids[0]).campaign
    sent = Notification.objects.filter(
        campaign=campaign, id__gte=ids[0], id__lte=ids[-1], status=Notification.Status.SENT
    )
    while sent.count() < len(ids):
        if time.monotonic() > deadline:
            raise SystemExit(f"not all sent: {len(ids) - sent.count()} left")
        time.sleep(0.25)
    return sent.aggregate(last=Max("sent_at"))["last"]


def enqueue(ids: list[int]) -> None:
    batch = BATCH[0]
    for start in range(0, len(ids), batch):
        deliver_notifications.delay(ids[start : start + batch])


class Delivery:
    """A worker's rate on these rows after an untimed warm-up, and its CPU (and the sink's and the
    database's) per email."""

    def __init__(self, pool: str, concurrency: int, sink: Sink, ids: list[int], workdir: Path, tree: Path) -> None:
        workers = Workers(pool, concurrency, sink.port, workdir, tree)
        try:
            # Warm up every child or thread (imports, templates, database and SMTP connections), untimed.
            warm, timed = ids[: 2 * concurrency * BATCH[0]], ids[2 * concurrency * BATCH[0] :]
            enqueue(warm)
            wait_sent(warm, timeout=300)
            worker_cpu, sink_cpu = cpu_seconds(workers.process.pid), cpu_seconds(sink.process.pid)
            with DatabaseCPU() as database:
                started = timezone.now()
                enqueue(timed)
                finished = wait_sent(timed)
            self.rate = len(timed) / (finished - started).total_seconds()
            self.worker_ms = 1000 * (cpu_seconds(workers.process.pid) - worker_cpu) / len(timed)
            self.sink_ms = 1000 * (cpu_seconds(sink.process.pid) - sink_cpu) / len(timed)
            self.database_ms = 1000 * database.seconds / len(timed)
        finally:
            workers.stop()


def parse_workers(spec: str) -> list[tuple[str, int]]:
    runs = []
    for item in spec.split(","):
        pool, _, concurrency = item.partition(":")
        if pool not in {"prefork", "threads"} or not concurrency.isdigit() or int(concurrency) < 1:
            raise SystemExit(f"--workers: {item!r} is not prefork:N or threads:N")
        runs.append((pool, int(concurrency)))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--workers", default="prefork:1,threads:4,prefork:4", help="pool:concurrency, comma-separated")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=settings.NOTIFICATIONS_BATCH_SIZE, help="rows per task")
    parser.add_argument(
        "--trees",
        default=str(ROOT),
        help="source trees the workers run from, comma-separated (e.g. an export of an earlier commit, to compare "
        "before and after in the same round); the database schema must suit all of them",
    )
    args = parser.parse_args()
    BATCH[0] = args.batch
    runs = parse_workers(args.workers)
    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        raise SystemExit("needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)")
    ensure_users(args.users)
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for round_number in range(1, args.rounds + 1):
            for (pool, concurrency), tree in [(run, Path(t)) for run in runs for t in args.trees.split(",")]:
                ids = write_notices()
                # The floors on a sink of their own, so the workers' sink counts only their messages.
                # The machine's load moves a lot within a minute: the floors are measured
                # just before and just after the workers' run, and averaged.
                floor_sink = Sink(workdir)
                messages = encoded(ids[:1000])
                clients = sorted({1, concurrency})
                floors = [Floor(floor_sink, messages, n) for n in clients]
                sink = Sink(workdir)
                delivery = Delivery(pool, concurrency, sink, ids, workdir, tree)
                counts = sink.stop()
                after = [Floor(floor_sink, messages, n) for n in clients]
                floor_sink.stop()
                floor_one = (floors[0].rate + after[0].rate) / 2
                floor_same = (floors[-1].rate + after[-1].rate) / 2
                expected = {row.message_id for row in Notification.objects.filter(id__in=ids)}
                once = set(counts) >= expected and all(counts[m] == 1 for m in expected)
                twice = sum(1 for m in expected if counts.get(m, 0) > 1)
                label = f"{concurrency} process(es)" if pool == "prefork" else f"1 process, {concurrency} threads"
                print(
                    f"round {round_number}, {tree}, {pool}, {label}: delivery {delivery.rate:,.0f} emails/s; "
                    f"sink with 1 bare client {floor_one:,.0f}/s (ratio {delivery.rate / floor_one:.2f}), "
                    f"with {concurrency} bare client(s) {floor_same:,.0f}/s (ratio {delivery.rate / floor_same:.2f}); "
                    f"{len(ids)} rows sent, each Message-ID exactly once: {once} (repeated: {twice}); "
                    f"load {os.getloadavg()[0]:.1f}"
                )
                print(
                    f"    CPU ms per email: worker {delivery.worker_ms:.2f}, its sink {delivery.sink_ms:.2f}, "
                    f"database {delivery.database_ms:.2f}; 1 bare client {floors[0].client_ms:.2f} and "
                    f"{after[0].client_ms:.2f}, its sink {floors[0].sink_ms:.2f} and {after[0].sink_ms:.2f}"
                )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
