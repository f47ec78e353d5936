"""How late are a killed worker's notices? Measured with the default lease and sweep.

Each trial, on the database in DATABASE_URL and the Redis in REDIS_URL (a queue of
its own), with a real SMTP server (aiosmtpd, in this process):

1. writes N outbox rows and hands them to delivery tasks in batches of 50;
2. starts a worker (a real `celery beat` runs throughout, the sweep every
   NOTIFICATIONS_SWEEP_INTERVAL_SECONDS, as in production; each trial starts
   at a random point of its interval);
3. SIGKILLs the worker in the middle of a batch, starts a second one;
4. records when each Message-ID arrives.

It prints, per trial, how long after the kill the last notice the killed worker
held arrived, and how many Message-IDs arrived twice (at most the one in flight).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_db REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python manage.py migrate
    DATABASE_URL=... REDIS_URL=... .venv/bin/python benchmarks/bench_notice_after_kill.py --trials 3

Options: --notices N (default 200), --trials T (default 3), --smtp-delay S (seconds per message, default 0.05).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorportal.settings")
QUEUE = f"bench-notice-kill-{os.getpid()}"
os.environ["CELERY_QUEUE"] = QUEUE

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from notifications.models import Notification  # noqa: E402
from notifications.tasks import deliver_notifications  # noqa: E402


class Sink:
    """An SMTP server that notes when each Message-ID arrives."""

    def __init__(self, delay: float):
        from aiosmtpd.controller import Controller

        self.delay = delay
        self.arrivals: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        with __import__("socket").socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        import email

        await asyncio.sleep(self.delay)
        message_id = email.message_from_bytes(envelope.content)["Message-ID"]
        with self.lock:
            self.arrivals.append((time.monotonic(), message_id))
        return "250 2.0.0 OK"


def celery(*args: str, log: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "creatorportal", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def start_worker(n: int, env: dict, folder: Path) -> subprocess.Popen:
    log = folder / f"worker-{n}.log"
    process = celery(
        "worker", "--pool=solo", "--loglevel=INFO", "--without-gossip", "--without-mingle",
        "--without-heartbeat", "-Q", QUEUE, "-n", f"{QUEUE}-{n}@%h",
        log=log, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"worker {n} did not start:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def trial(count: int, sink: Sink, env: dict, folder: Path) -> dict:
    time.sleep(random.uniform(0, settings.NOTIFICATIONS_SWEEP_INTERVAL_SECONDS))
    prefix = f"bench-kill-{uuid.uuid4().hex[:8]}"
    rows = Notification.objects.bulk_create(
        Notification(
            kind=Notification.Kind.ACCOUNT_EMAIL,
            to_email=f"fan{n}@example.test",
            dedupe_key=f"{prefix}:{n}",
            context={"subject": f"Notice {n}", "body": "Hello"},
        )
        for n in range(count)
    )
    expected = {row.message_id for row in rows}
    first = start_worker(1, env, folder)
    batch = settings.NOTIFICATIONS_BATCH_SIZE
    ids = [row.id for row in rows]
    for start in range(0, len(ids), batch):
        deliver_notifications.delay(ids[start : start + batch])

    while len({mid for _, mid in sink.arrivals} & expected) < count // 10:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = time.monotonic()
    held = set(
        Notification.objects.filter(id__in=ids, status=Notification.Status.SENDING).values_list("dedupe_key", flat=True)
    )
    held_ids = {row.message_id for row in rows if row.dedupe_key in held}
    second = start_worker(2, env, folder)
    try:
        deadline = killed_at + 600
        while not expected <= {mid for _, mid in sink.arrivals}:
            if time.monotonic() > deadline:
                raise SystemExit("not every notice arrived within 10 minutes")
            time.sleep(0.2)
        time.sleep(2)  # anything sent twice would arrive now
    finally:
        stop(second)
    arrivals = [(at, mid) for at, mid in sink.arrivals if mid in expected]
    last_held = max((at for at, mid in arrivals if mid in held_ids), default=killed_at)
    counts = Counter(mid for _, mid in arrivals)
    return {
        "held_by_killed_worker": len(held_ids),
        "last_of_them_after_kill_s": last_held - killed_at,
        "all_after_kill_s": max(at for at, _ in arrivals) - killed_at,
        "received_twice": sum(1 for n in counts.values() if n > 1),
        "missing": len(expected - set(counts)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notices", type=int, default=200)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--smtp-delay", type=float, default=0.05)
    args = parser.parse_args()
    if not settings.REDIS_URL:
        raise SystemExit("Set REDIS_URL: the broker is part of what is measured.")

    sink = Sink(args.smtp_delay)
    sink.controller.start()
    env = {**os.environ, "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}", "CELERY_QUEUE": QUEUE}
    print(
        f"lease {settings.NOTIFICATIONS_CLAIM_LEASE_SECONDS} s (renewed every "
        f"{settings.NOTIFICATIONS_CLAIM_LEASE_SECONDS / 3:.0f} s), sweep every "
        f"{settings.NOTIFICATIONS_SWEEP_INTERVAL_SECONDS} s by celery beat, {args.notices} notices per trial"
    )
    try:
        with tempfile.TemporaryDirectory() as folder:
            beat = celery(
                "beat", "-s", str(Path(folder) / "beat"), "--loglevel=INFO", log=Path(folder) / "beat.log", env=env
            )
            try:
                results = [trial(args.notices, sink, env, Path(folder)) for _ in range(args.trials)]
            finally:
                stop(beat)
            for number, result in enumerate(results, 1):
                print(
                    f"trial {number}: "
                    + ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items())
                )
            delays = [result["last_of_them_after_kill_s"] for result in results]
            print(f"killed worker's notices delivered {min(delays):.1f} to {max(delays):.1f} s after the kill")
    finally:
        sink.controller.stop()


if __name__ == "__main__":
    main()
