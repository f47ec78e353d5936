"""Delivery of the outbox.

Each task takes row ids, claims rows with a conditional update (so two tasks
for the same row send one email), sends a batch over one SMTP connection, and
records the outcome on the row. The sweep hands out anything the broker lost.
"""

from __future__ import annotations

import logging
import random
import smtplib
import threading
from datetime import datetime, timedelta
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.core import mail
from django.db import connection, connections, transaction
from django.db.models import F
from django.utils import timezone

from notifications.models import Notification
from notifications.rendering import build_message
from platformkit.queueing import enqueue

logger = logging.getLogger(__name__)


class PermanentDeliveryError(Exception):
    """The mail server rejected the message for good (5xx)."""


def is_transient(error: BaseException) -> bool:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    # Connection refused, reset, timed out, server went away.
    return isinstance(error, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError))


def retry_countdown(attempt: int) -> float:
    """Exponential backoff with full jitter, capped below the visibility timeout."""
    ceiling = min(settings.NOTIFICATIONS_RETRY_MAX_SECONDS, settings.NOTIFICATIONS_RETRY_BASE_SECONDS * 2**attempt)
    return random.uniform(ceiling / 2, ceiling)


def claim(notification_ids: list[int]) -> list[Notification]:
    """Take the due, pending rows among these ids; rows another task holds are skipped."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(id__in=notification_ids, status=Notification.Status.PENDING, next_attempt_at__lte=now)
            .order_by("id")
        )
        if rows:
            Notification.objects.filter(id__in=[row.id for row in rows]).update(
                status=Notification.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1
            )
    for row in rows:
        row.attempts += 1
    return rows


def renew_claims(notification_ids: list[int]) -> int:
    """Move the lease of the rows still being sent forward; rows locked at this instant are skipped."""
    with transaction.atomic():
        held = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(id__in=notification_ids, status=Notification.Status.SENDING)
            .values_list("id", flat=True)
        )
        return Notification.objects.filter(id__in=held).update(claimed_at=timezone.now()) if held else 0


class LeaseKeeper:
    """Renews the claim on a batch's rows from a thread of its own while the batch is sent.

    So the lease can be short, and a killed worker's rows go out again within
    a lease and one sweep, while a live worker slowed down by its mail server
    (one message may take several SMTP timeouts) never has its rows taken from
    it and sent a second time. The thread dies with the worker: a kill stops
    the renewals at once.
    """

    def __init__(self, notification_ids: list[int], *, every: float):
        self.ids = notification_ids
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notification-lease", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.every)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every):
                try:
                    renew_claims(self.ids)
                except Exception:
                    logger.warning("could not renew the claim on notifications %s", self.ids, exc_info=True)
        finally:
            connections.close_all()  # this thread's own database connection


def lease_renewal_interval() -> float:
    return settings.NOTIFICATIONS_CLAIM_LEASE_SECONDS / 3


def _mark_sent(row: Notification) -> None:
    """Record a message the server accepted, before sending the next one.

    One small commit per message keeps what a killed worker could send twice
    to the one message in flight. On PostgreSQL the commit does not wait for
    the disk flush: that mark can only be lost if the database server itself
    crashes within a fraction of a second, and then the worst case is the same
    message again with the same Message-ID, never a lost one.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        Notification.objects.filter(id=row.id, status=Notification.Status.SENDING).update(
            status=Notification.Status.SENT, sent_at=timezone.now(), last_error=""
        )


def _mark_failed(row: Notification, error: str) -> None:
    Notification.objects.filter(id=row.id, status=Notification.Status.SENDING).update(
        status=Notification.Status.FAILED, last_error=error[:2000]
    )


def _mark_for_retry(row: Notification, error: str, countdown: float) -> None:
    Notification.objects.filter(id=row.id, status=Notification.Status.SENDING).update(
        status=Notification.Status.PENDING,
        last_error=error[:2000],
        next_attempt_at=timezone.now() + timedelta(seconds=countdown),
        claimed_at=None,
    )


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _send_batch(rows: list[Notification], outcome: dict[str, int]) -> list[Notification]:
    """Send claimed rows over one SMTP connection; record each outcome; return those to retry."""
    to_retry: list[Notification] = []
    mailer = mail.mailers.default
    try:
        mailer.open()
    except Exception as error:
        # Cannot even connect: every row in the batch waits for the next try.
        for row in rows:
            to_retry.append(row)
            row.error = _describe(error)
        return to_retry
    try:
        for row in rows:
            try:
                mailer.send_messages([build_message(row)])
            except Exception as error:
                row.error = _describe(error)
                if is_transient(error):
                    to_retry.append(row)
                else:
                    _mark_failed(row, row.error)
                    outcome["failed"] += 1
                    logger.error("notification %s failed permanently: %s", row.id, row.error)
            else:
                _mark_sent(row)
                outcome["sent"] += 1
    finally:
        try:
            mailer.close()
        except Exception:
            logger.debug("SMTP close failed", exc_info=True)
    return to_retry


@shared_task(bind=True, ignore_result=True, max_retries=None)
def deliver_notifications(self: Task[..., Any], notification_ids: list[int]) -> dict[str, int]:
    rows = claim(notification_ids)
    outcome = {"sent": 0, "retry": 0, "failed": 0}
    if not rows:
        return outcome

    with LeaseKeeper([row.id for row in rows], every=lease_renewal_interval()):
        to_retry = _send_batch(rows, outcome)

    retry_ids = []
    for row in to_retry:
        if row.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS:
            _mark_failed(row, f"gave up after {row.attempts} attempts; last error: {row.error}")
            outcome["failed"] += 1
            continue
        countdown = retry_countdown(row.attempts)
        _mark_for_retry(row, row.error, countdown)
        retry_ids.append((row.id, countdown))
        outcome["retry"] += 1
    if retry_ids:
        # One retry for the batch, at the earliest due time of its rows.
        countdown = min(countdown for _, countdown in retry_ids)
        logger.info("retrying notifications %s in %.1fs", [i for i, _ in retry_ids], countdown)
        raise self.retry(args=([i for i, _ in retry_ids],), countdown=countdown)
    return outcome


@shared_task(ignore_result=True)
def sweep_notifications() -> dict[str, int]:
    """Hand out what no task holds: rows the broker lost, or a killed worker left.

    Rows whose lease ran out are handed out in the same run: no task is coming
    for them, so they must not also wait out the grace period meant for fresh
    rows. A killed worker's notices thus go out within one lease and one sweep
    interval.
    """
    now = timezone.now()
    released = _release_expired_claims(now)
    due_before = now - timedelta(seconds=settings.NOTIFICATIONS_SWEEP_GRACE_SECONDS)
    due_ids = list(
        Notification.objects.filter(status=Notification.Status.PENDING, next_attempt_at__lte=due_before)
        .exclude(id__in=released)
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:10_000]
    )
    from notifications.services import enqueue_delivery

    to_send = released + due_ids
    batch = settings.NOTIFICATIONS_BATCH_SIZE
    for start in range(0, len(to_send), batch):
        enqueue_delivery(to_send[start : start + batch], always_try=True)
    restarted = _restart_unfinished_fan_outs(now)
    return {"released": len(released), "enqueued": len(to_send), "fan_outs_restarted": restarted}


def _release_expired_claims(now: datetime) -> list[int]:
    """Rows claimed by a task that stopped renewing its lease (a killed worker), back to pending."""
    lease_expired = now - timedelta(seconds=settings.NOTIFICATIONS_CLAIM_LEASE_SECONDS)
    with transaction.atomic():
        ids = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(status=Notification.Status.SENDING, claimed_at__lt=lease_expired)
            .order_by("id")
            .values_list("id", flat=True)[:10_000]
        )
        if ids:
            Notification.objects.filter(id__in=ids).update(
                status=Notification.Status.PENDING, claimed_at=None, next_attempt_at=now
            )
    return ids


def _restart_unfinished_fan_outs(now: datetime) -> int:
    """A fan-out cut short (broker down at publication, worker lost) is started again."""
    from consent.models import PolicyVersion
    from consent.policy import fan_out_incomplete

    recent = PolicyVersion.objects.filter(
        # Version 1 is the terms every account signed up under: never announced.
        version__gt=1,
        published_at__gte=now - timedelta(days=7),
        published_at__lte=now - timedelta(seconds=settings.NOTIFICATIONS_SWEEP_GRACE_SECONDS),
    )
    restarted = 0
    for version in recent:
        if fan_out_incomplete(version) and enqueue(fan_out_policy_notice, version.pk, always_try=True):
            restarted += 1
    return restarted


@shared_task(bind=True, ignore_result=True)
def fan_out_policy_notice(self: Task[..., Any], version_id: int) -> dict[str, int]:
    """Write one notice per active user, a batch per INSERT ... SELECT, and deliver them.

    Idempotent: a batch that was already written writes nothing again, so a
    redelivered or restarted fan-out only fills the gaps.
    """
    from consent.models import PolicyVersion
    from consent.policy import FAN_OUT_BATCH, batch_bounds, insert_policy_notices
    from notifications.services import enqueue_delivery

    version = PolicyVersion.objects.filter(pk=version_id, published_at__isnull=False).first()
    if version is None:
        return {"written": 0}
    written = 0
    after = 0
    while True:
        with transaction.atomic():
            ids = insert_policy_notices(version, after_user_id=after)
        written += len(ids)
        batch = settings.NOTIFICATIONS_BATCH_SIZE
        for start in range(0, len(ids), batch):
            enqueue_delivery(ids[start : start + batch])
        last_id, count = batch_bounds(version, after_user_id=after)
        if last_id is None or count < FAN_OUT_BATCH:
            break
        after = last_id
    logger.info("policy version %s: %s notices written", version.version, written)
    return {"written": written}
