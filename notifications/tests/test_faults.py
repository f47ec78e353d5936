"""Delivery through real failures, with a real worker process.

Each test ends with every expected email received exactly once, counted by
Message-ID at a real SMTP server.
"""

import os
import time
from collections import Counter

import pytest
from django.db import transaction

from conftest import service_missing
from notifications.models import Notification
from notifications.services import queue_notification
from notifications.tasks import deliver_notifications, sweep_notifications
from tests.utils import wait_until

pytestmark = [pytest.mark.real_worker, pytest.mark.django_db(transaction=True)]


def queue(count: int, prefix: str) -> list[Notification]:
    rows = []
    with transaction.atomic():
        for n in range(count):
            row = queue_notification(
                kind=Notification.Kind.ACCOUNT_EMAIL,
                to_email=f"user{n}@example.test",
                dedupe_key=f"{prefix}:{n}",
                context={"subject": f"Notice {n}", "body": "Hello"},
            )
            assert row is not None, "a fresh dedupe key is never a duplicate"
            rows.append(row)
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
    # The server accepts before the worker records it: wait for the record.
    wait_until(lambda: Notification.objects.get(id=row.id).status == Notification.Status.SENT, timeout=30)
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
    # The workers renew their claims on the same short lease the sweep applies. One SMTP connection each, so
    # at most the one message in flight is sent twice (with several, one per connection: the test below).
    env = {
        "EMAIL_URL": smtp_server.url,
        "NOTIFICATIONS_CLAIM_LEASE_SECONDS": "1",
        "NOTIFICATIONS_SMTP_CONNECTIONS": "1",
    }
    worker = start_celery_worker(**env)

    publish_policy_version(version=version)  # commits; the fan-out runs in the worker

    try:
        wait_until(lambda: len(smtp_server.messages) >= 300, timeout=120, message="the worker to be mid-way")
    except AssertionError:
        raise AssertionError(worker.log()[-3000:]) from None
    worker.kill()
    assert len(smtp_server.messages) < 2_000

    start_celery_worker(**env)
    time.sleep(1.5)  # past the claim lease of whatever the killed worker held
    sweep_notifications()  # what beat does every minute

    wait_until(lambda: len(smtp_server.messages) >= 2_000, timeout=300, message="all 2,000 emails")
    time.sleep(2)
    rows = list(Notification.objects.filter(campaign=campaign_for(version)))
    assert len(rows) == 2_000
    assert_each_received_once(smtp_server, rows, in_flight_at_kill=1)
    assert not Notification.objects.exclude(status=Notification.Status.SENT).exists()


def queue_batch(count: int, prefix: str) -> list[Notification]:
    """Outbox rows handed to one delivery task as one batch (as the fan-out and the sweep do)."""
    rows = Notification.objects.bulk_create(
        Notification(
            kind=Notification.Kind.ACCOUNT_EMAIL,
            to_email=f"user{n}@example.test",
            dedupe_key=f"{prefix}:{n}",
            context={"subject": f"Notice {n}", "body": "Hello"},
        )
        for n in range(count)
    )
    deliver_notifications.delay([row.id for row in rows])
    return rows


def sweep_until_released() -> dict:
    """Run the sweep as beat would (here back to back) until it hands out a released row."""
    result = {}

    def released():
        nonlocal result
        result = sweep_notifications()
        return result["released"]

    wait_until(released, timeout=60, message="the sweep to release the killed worker's rows")
    return result


def sweep_until_all_sent() -> None:
    """Run the sweep as beat would (here back to back, with no grace period) until every row is sent.

    A task the killed worker had taken from the broker but not yet claimed its rows for is lost with it (until
    the broker's visibility timeout), its rows still pending: only the sweep hands those out again.
    """

    def all_sent():
        sweep_notifications()
        return not Notification.objects.exclude(status=Notification.Status.SENT).exists()

    wait_until(all_sent, timeout=120, interval=0.5, message="every notice sent")


def test_a_killed_workers_notices_go_out_after_one_lease_and_one_sweep(smtp_server, start_celery_worker, settings):
    settings.NOTIFICATIONS_CLAIM_LEASE_SECONDS = 2
    smtp_server.slow_down(0.3)
    env = {
        "EMAIL_URL": smtp_server.url,
        "NOTIFICATIONS_CLAIM_LEASE_SECONDS": "2",
        "NOTIFICATIONS_SMTP_CONNECTIONS": "1",
    }
    worker = start_celery_worker(**env)
    rows = queue_batch(20, "killed")
    wait_until(lambda: len(smtp_server.messages) >= 3, timeout=60, message="the worker to be mid-batch")
    worker.kill()
    assert len(smtp_server.messages) < 20

    start_celery_worker(**env)
    result = sweep_until_released()

    # The sweep that releases the rows hands them out at once: no second
    # sweep, no grace period meant for fresh rows.
    assert result["enqueued"] >= result["released"] > 0
    wait_until(lambda: len(smtp_server.messages) >= 20, timeout=60, message="every notice of the batch")
    wait_until(lambda: not Notification.objects.exclude(status=Notification.Status.SENT).exists(), timeout=30)
    assert_each_received_once(smtp_server, rows, in_flight_at_kill=1)


def test_a_worker_on_the_threads_pool_killed_mid_delivery_repeats_at_most_one_message_per_thread(
    smtp_server, start_celery_worker, settings
):
    # Four threads sharing the process's four SMTP connections (the default): at a kill, at most one accepted
    # message per connection is not yet marked sent, and each goes out again with its same Message-ID.
    settings.NOTIFICATIONS_CLAIM_LEASE_SECONDS = 2
    settings.NOTIFICATIONS_SWEEP_GRACE_SECONDS = 0
    smtp_server.slow_down(0.05)
    worker = start_celery_worker(
        pool="threads", concurrency=4, EMAIL_URL=smtp_server.url, NOTIFICATIONS_CLAIM_LEASE_SECONDS="2"
    )
    rows = [row for batch in range(8) for row in queue_batch(20, f"threads-{batch}")]
    wait_until(lambda: len(smtp_server.messages) >= 40, timeout=60, message="the worker to be mid-way")
    worker.kill()
    assert len(smtp_server.messages) < 160

    start_celery_worker(EMAIL_URL=smtp_server.url, NOTIFICATIONS_CLAIM_LEASE_SECONDS="2")
    sweep_until_all_sent()
    time.sleep(1)  # anything sent twice would arrive now
    assert_each_received_once(smtp_server, rows, in_flight_at_kill=4)


def test_a_worker_sending_over_four_connections_killed_mid_batch_repeats_at_most_one_message_per_connection(
    smtp_server, start_celery_worker, settings
):
    # One process, each batch sent over four connections at once (the default): at a kill, at most one
    # accepted message per connection is not yet marked sent, and each goes out again with its Message-ID.
    settings.NOTIFICATIONS_CLAIM_LEASE_SECONDS = 2
    settings.NOTIFICATIONS_SWEEP_GRACE_SECONDS = 0
    smtp_server.slow_down(0.05)
    env = {
        "EMAIL_URL": smtp_server.url,
        "NOTIFICATIONS_CLAIM_LEASE_SECONDS": "2",
        "NOTIFICATIONS_SMTP_CONNECTIONS": "4",
    }
    worker = start_celery_worker(**env)
    rows = [row for batch in range(8) for row in queue_batch(20, f"four-{batch}")]
    wait_until(lambda: len(smtp_server.messages) >= 40, timeout=60, message="the worker to be mid-way")
    worker.kill()
    assert len(smtp_server.messages) < 160

    start_celery_worker(**env)
    sweep_until_all_sent()
    time.sleep(1)  # anything sent twice would arrive now
    assert_each_received_once(smtp_server, rows, in_flight_at_kill=4)


def test_a_live_worker_slowed_by_its_mail_server_keeps_its_claim(smtp_server, start_celery_worker, settings):
    settings.NOTIFICATIONS_CLAIM_LEASE_SECONDS = 1
    smtp_server.slow_down(0.5)
    env = {"EMAIL_URL": smtp_server.url, "NOTIFICATIONS_CLAIM_LEASE_SECONDS": "1"}
    start_celery_worker(**env)
    start_celery_worker(**env)  # would send whatever the sweep wrongly handed out
    rows = queue_batch(8, "slow")  # takes about four leases to send

    released = []

    def all_sent_while_sweeping():
        released.append(sweep_notifications()["released"])  # what beat does, here back to back
        return not Notification.objects.exclude(status=Notification.Status.SENT).exists()

    wait_until(all_sent_while_sweeping, timeout=60, interval=0.2, message="the slow batch to be sent")
    time.sleep(1)  # anything sent twice would arrive now

    assert len(released) > 1 and not any(released)
    assert_each_received_once(smtp_server, rows)
