"""Notifications benchmark: a policy notice to 100,000 users.

Measures, on the database in DATABASE_URL (use a throwaway PostgreSQL database):

1. the time to write every outbox row of the notice (the fan-out's INSERT ... SELECT
   batches, without handing them to the broker);
2. the delivery rate of one worker process to a local SMTP sink, with one SMTP
   connection per batch, in emails per second (measured on a sample).

    createdb -h 127.0.0.1 -U postgres bench_notifications
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_notifications \\
        .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_notifications \\
        .venv/bin/python benchmarks/bench_notifications.py

Options: --users N (default 100000), --deliver N (default 5000). The delivery rate against the
sink's own, with real worker processes, is `bench_delivery.py`.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorportal.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402
from consent.models import PolicyVersion  # noqa: E402
from consent.policy import FAN_OUT_BATCH, batch_bounds, insert_policy_notices  # noqa: E402
from notifications.models import Notification  # noqa: E402
from notifications.tasks import deliver_notifications  # noqa: E402


def ensure_users(count: int) -> None:
    have = User.objects.filter(email__startswith="bench-user-").count()
    if have >= count:
        return
    joined = timezone.now() - timedelta(days=1)
    batch = []
    for n in range(have, count):
        batch.append(User(email=f"bench-user-{n}@example.test", display_name=f"Bench {n}", date_joined=joined))
        if len(batch) == 10_000:
            User.objects.bulk_create(batch)
            batch = []
    if batch:
        User.objects.bulk_create(batch)


def new_version() -> PolicyVersion:
    latest = PolicyVersion.objects.order_by("-version").first()
    return PolicyVersion.objects.create(
        version=latest.version + 1,
        summary="Benchmark terms.",
        full_text="Benchmark terms.",
        effective_at=timezone.now(),
        is_material=True,
        published_at=timezone.now(),
    )


def write_outbox(version: PolicyVersion) -> tuple[float, int, int]:
    """The fan-out's writing loop, timed, without the broker hand-off."""
    written = statements = 0
    after = 0
    started = time.perf_counter()
    while True:
        with transaction.atomic():
            written += len(insert_policy_notices(version, after_user_id=after))
            statements += 1
        last_id, count = batch_bounds(version, after_user_id=after)
        if last_id is None or count < FAN_OUT_BATCH:
            break
        after = last_id
    return time.perf_counter() - started, written, statements


def deliver_sample(version: PolicyVersion, count: int) -> float:
    """Send `count` notices in batches, as one worker does, to an SMTP sink in another process."""
    import subprocess

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Started outside the repository: its `public` app would shadow a module aiosmtpd imports.
    sink = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"],
        cwd=tempfile.gettempdir(),
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        settings.MAILERS = {
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 10},
            }
        }
        ids = list(
            Notification.objects.filter(campaign=f"policy-v{version.version}", status=Notification.Status.PENDING)
            .order_by("id")
            .values_list("id", flat=True)[:count]
        )
        batch = settings.NOTIFICATIONS_BATCH_SIZE
        sent = 0
        started = time.perf_counter()
        for start in range(0, len(ids), batch):
            sent += deliver_notifications.run(ids[start : start + batch])["sent"]
        elapsed = time.perf_counter() - started
    finally:
        sink.terminate()
        sink.wait()
    if sent != len(ids) or Notification.objects.filter(id__in=ids, status=Notification.Status.SENT).count() != sent:
        raise SystemExit(f"only {sent} of {len(ids)} were sent")
    return sent / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--deliver", type=int, default=5_000)
    args = parser.parse_args()

    print(f"database: {connection.vendor}")
    ensure_users(args.users)
    active = User.objects.filter(is_active=True).count()
    version = new_version()
    seconds, written, statements = write_outbox(version)
    print(f"outbox rows written: {written} for {active} active users")
    print(f"time to write all outbox rows: {seconds:.2f} s in {statements} INSERT ... SELECT statements")
    print(f"rows per second: {written / seconds:,.0f}")
    rate = deliver_sample(version, args.deliver)
    batch = settings.NOTIFICATIONS_BATCH_SIZE
    print(f"delivery rate, one worker, one SMTP connection per {batch} emails: {rate:,.0f} emails/s")


if __name__ == "__main__":
    main()
