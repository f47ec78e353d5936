"""Delivery through real failures, with a real worker process.

Each test ends with every expected email received exactly once, counted by
Message-ID at a real SMTP server.
"""

import os
import shutil
import subprocess
import time
from collections import Counter

import pytest
from django.db import transaction

from conftest import free_port, service_missing
from creatorportal.celery import app as celery_app
from notifications.models import Notification
from notifications.services import queue_notification
from notifications.tasks import deliver_notifications, sweep_notifications
from tests.utils import wait_until

pytestmark = [pytest.mark.real_worker, pytest.mark.django_db(transaction=True)]


def queue(count: int, prefix: str) -> list[Notification]:
    rows = []
    with transaction.atomic():
        for n in range(count):
            rows.append(
                queue_notification(
                    kind=Notification.Kind.ACCOUNT_EMAIL,
                    to_email=f"user{n}@example.test",
                    dedupe_key=f"{prefix}:{n}",
                    context={"subject": f"Notice {n}", "body": "Hello"},
                )
            )
    return rows


def assert_each_received_once(smtp_server, rows, *, in_flight_at_kill: int = 0):
    """Every expected email arrived, none unexpected, each Message-ID once.

    A worker killed with SIGKILL after the mail server accepted a message but
    before the row was marked sent leaves that one message to be sent again:
    the same Message-ID, which mail systems treat as one message. With a solo
    pool at most one message is in flight, so `in_flight_at_kill` bounds the
    raw repeats a test that kills a worker may see.
    """
    counts = Counter(smtp_server.message_ids())
    expected = {row.message_id for row in rows}
    unexpected = [(m["To"], m["Subject"]) for m in smtp_server.messages if m["Message-ID"] not in expected]
    assert unexpected == []
    assert set(counts) == expected
    repeated = [mid for mid, n in counts.items() if n != 1]
    assert len(repeated) <= in_flight_at_kill
    assert all(counts[mid] == 2 for mid in repeated)


class ThrowawayRedis:
    """A redis-server of our own on a free port, to stop and start at will."""

    def __init__(self, tmp_path):
        self.binary = shutil.which("redis-server")
        if not self.binary:
            service_missing("redis-server is not installed")
        self.port = free_port()
        self.dir = tmp_path
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        client = redis.Redis.from_url(self.url)
        wait_until(lambda: _pings(client), timeout=10, message="throwaway redis to answer")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _pings(client) -> bool:
    try:
        return client.ping()
    except Exception:
        return False


@pytest.fixture
def throwaway_redis(tmp_path):
    server = ThrowawayRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def broker(throwaway_redis):
    """Point this test process's Celery producer at the throwaway Redis."""
    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = throwaway_redis.url
    _drop_broker_connections()
    yield throwaway_redis
    celery_app.conf.broker_url = previous
    _drop_broker_connections()


def _drop_broker_connections():
    # Cached connections and producers still point at the previous broker;
    # forget them as Celery does in a forked child.
    celery_app._after_fork()


def test_redis_down_when_saving_then_the_sweep_delivers_after_it_returns(
    broker, smtp_server, start_celery_worker, settings
):
    if not os.environ.get("REDIS_URL"):
        service_missing("REDIS_URL is not set; this test is about the Redis broker")
    settings.NOTIFICATIONS_SWEEP_GRACE_SECONDS = 0
    broker.stop()

    started = time.monotonic()
    rows = queue(3, "redis-down")  # the save: commits, then fails to reach the broker
    assert time.monotonic() - started < 15, "a broker outage must not hang the save"
    assert Notification.objects.filter(status=Notification.Status.PENDING).count() == 3

    broker.start()
    start_celery_worker(REDIS_URL=broker.url, EMAIL_URL=smtp_server.url)
    sweep_notifications()  # what beat does every minute (here with this test's settings)

    wait_until(lambda: len(smtp_server.messages) >= 3, timeout=60, message="three emails after Redis returned")
    time.sleep(1)  # anything duplicated would arrive now
    assert_each_received_once(smtp_server, rows)


def test_smtp_refusing_for_a_while_is_retried_until_it_accepts(smtp_server, start_celery_worker):
    smtp_server.refuse_next(3)
    start_celery_worker(EMAIL_URL=smtp_server.url, NOTIFICATIONS_RETRY_BASE_MS="200")

    [row] = queue(1, "smtp-refusing")

    wait_until(lambda: smtp_server.messages, timeout=60, message="the email once SMTP accepts")
    row.refresh_from_db()
    assert smtp_server.refused == 3
    assert row.status == Notification.Status.SENT
    assert row.attempts == 4
    time.sleep(1)
    assert_each_received_once(smtp_server, [row])


def test_the_delivery_task_run_twice_for_one_row_sends_one_email(smtp_server, start_celery_worker):
    [row] = queue(1, "twice")
    # A second copy of the task, as a broker redelivery would produce.
    deliver_notifications.delay([row.id])
    start_celery_worker(EMAIL_URL=smtp_server.url)

    wait_until(lambda: Notification.objects.get(id=row.id).status == Notification.Status.SENT, timeout=30)
    time.sleep(1)
    assert_each_received_once(smtp_server, [row])


def test_a_worker_killed_mid_policy_notice_to_2000_users_loses_nothing_and_sends_nothing_twice(
    smtp_server, start_celery_worker, settings, new_policy_version
):
    from django.utils import timezone

    from accounts.models import User
    from consent.policy import campaign_for, publish_policy_version

    settings.NOTIFICATIONS_SWEEP_GRACE_SECONDS = 0
    settings.NOTIFICATIONS_CLAIM_LEASE_SECONDS = 1
    # Joined after the versions the migrations published (those are not
    # this test's concern), before the one published here.
    joined = timezone.now()
    User.objects.bulk_create(
        [User(email=f"fan{n}@example.test", display_name=f"Fan {n}", date_joined=joined) for n in range(2_000)]
    )
    version = new_policy_version(effective_at=timezone.now())
    worker = start_celery_worker(EMAIL_URL=smtp_server.url)

    publish_policy_version(version=version)  # commits; the fan-out runs in the worker

    try:
        wait_until(lambda: len(smtp_server.messages) >= 300, timeout=120, message="the worker to be mid-way")
    except AssertionError:
        raise AssertionError(worker.log()[-3000:]) from None
    worker.kill()
    assert len(smtp_server.messages) < 2_000

    start_celery_worker(EMAIL_URL=smtp_server.url)
    time.sleep(1.5)  # past the claim lease of whatever the killed worker held
    sweep_notifications()  # what beat does every minute

    wait_until(lambda: len(smtp_server.messages) >= 2_000, timeout=300, message="all 2,000 emails")
    time.sleep(2)
    rows = list(Notification.objects.filter(campaign=campaign_for(version)))
    assert len(rows) == 2_000
    assert_each_received_once(smtp_server, rows, in_flight_at_kill=1)
    assert not Notification.objects.exclude(status=Notification.Status.SENT).exists()
