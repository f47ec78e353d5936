"""Delivery of the outbox.

Each task takes row ids, claims rows with a conditional update (so two tasks
for the same row send one email), sends a batch over one SMTP connection, and
records the outcome on the row. The sweep hands out anything the broker lost.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import functools
import json
import logging
import os
import random
import re
import select
import smtplib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from celery import Task, shared_task
from django.conf import settings
from django.core import mail
from django.core.mail.backends.smtp import EmailBackend as SMTPEmailBackend
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import Model
from django.utils import timezone
from psycopg import pq

from notifications.models import Notification
from notifications.rendering import MessageBuilder, Outgoing
from notifications.services import sweep_steps
from platformkit.claims import claim_due

if TYPE_CHECKING:
    from accounts.models import User

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
    """Take the due, pending rows among these ids, with their recipients; rows another task holds are skipped."""
    now = timezone.now()
    if connection.vendor != "postgresql":
        return claim_due(
            Notification.objects.select_related("recipient"),
            notification_ids,
            pending=Notification.Status.PENDING,
            sending=Notification.Status.SENDING,
            now=now,
        )
    with connection.cursor() as cursor:
        cursor.execute(
            _claim_sql(), [list(notification_ids), Notification.Status.PENDING, now, Notification.Status.SENDING, now]
        )
        found = cursor.fetchall()
    notification_fields, user_fields = _claimed_fields()
    split = len(notification_fields)
    user_model = _user_model()
    rows = []
    for values in found:
        row = Notification.from_db(
            connection.alias, [f.attname for f in notification_fields], _from_db(notification_fields, values[:split])
        )
        if row.recipient_id is not None:
            row.recipient = cast(
                "User",
                user_model.from_db(
                    connection.alias, [f.attname for f in user_fields], _from_db(user_fields, values[split:])
                ),
            )
        rows.append(row)
    return rows


def _from_db(fields: list[Any], values: tuple[Any, ...]) -> list[Any]:
    """Column values as the ORM would hand them to the model (a JSON column parsed, and so on)."""
    return [
        field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
        for field, value in zip(fields, values, strict=True)
    ]


def _user_model() -> type[Model]:
    model = Notification._meta.get_field("recipient").related_model
    assert isinstance(model, type)  # resolved once the apps are loaded
    return model


def _claimed_fields() -> tuple[list[Any], list[Any]]:
    return list(Notification._meta.concrete_fields), list(_user_model()._meta.concrete_fields)


@functools.cache
def _claim_sql() -> str:
    """One statement, one round trip: lock the due rows (skipping any another task holds), mark them as being
    sent with the attempt counted, and return them with their recipients, as `claim_due` does in four.

    The rows are found by their ids alone (`status || ''` keeps the planner off the (status, due) index): a
    fan-out inserts its rows faster than the statistics follow, and with the pending rows thought few, that
    index was chosen and every claim read all of the pending rows (thousands, per batch of 50).
    """
    notification_fields, user_fields = _claimed_fields()
    table = connection.ops.quote_name(Notification._meta.db_table)
    user_model = _user_model()
    user_pk = user_model._meta.pk
    assert user_pk is not None and user_pk.column is not None  # a model always has a primary key column
    users = connection.ops.quote_name(user_model._meta.db_table)
    user_id = connection.ops.quote_name(user_pk.column)
    columns = [connection.ops.quote_name(field.column) for field in notification_fields]
    user_columns = [connection.ops.quote_name(field.column) for field in user_fields]
    return (
        f"WITH taken AS (SELECT id FROM {table} WHERE id = ANY(%s) AND (status || '') = %s AND next_attempt_at <= %s "  # noqa: S608 (names from the models, no input)
        "ORDER BY id FOR UPDATE SKIP LOCKED), "
        f"claimed AS (UPDATE {table} AS n SET status = %s, claimed_at = %s, attempts = n.attempts + 1 "
        f"FROM taken WHERE n.id = taken.id RETURNING {', '.join('n.' + c for c in columns)}) "
        f"SELECT {', '.join('claimed.' + c for c in columns)}, {', '.join('u.' + c for c in user_columns)} "
        f"FROM claimed LEFT JOIN {users} AS u ON u.{user_id} = claimed.recipient_id ORDER BY claimed.id"
    )


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


class PipelinedMarks:
    """Records each accepted message as sent, without waiting for the database.

    Each mark is one UPDATE written to PostgreSQL's socket as soon as the mail
    server accepts the message; its answer is read while the next message is
    on its way to the mail server, so the marks cost no round trip of their
    own. A mark is on the wire before the next message is sent, and the server
    runs a query it has received even if the worker is killed right after, so
    what a killed worker could send twice is still the one message in flight.
    (A single UPDATE for the whole batch after sending it would let a kill
    repeat up to a batch.) The commits do not wait for the disk flush: a mark
    can only be lost if the database server itself crashes within a fraction
    of a second, and then the worst case is the same message again with the
    same Message-ID, never a lost one. Other databases mark each message with
    one ordinary statement.
    """

    _SQL = (
        f"UPDATE {Notification._meta.db_table} "  # noqa: S608 (a table name from the model, no input)
        "SET status = 'sent', sent_at = now(), last_error = '' WHERE id = $1 AND status = 'sending'"
    )
    # A prepared statement: parsing and planning the mark cost PostgreSQL more than running it.
    _STATEMENT = b"notifications_mark_sent"

    def __init__(self) -> None:
        self._pending = False
        self._pg = None

    def __enter__(self) -> PipelinedMarks:
        if connection.vendor == "postgresql":
            connection.ensure_connection()
            with connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit TO OFF")
                # Looked up for every batch, not remembered: psycopg sends DEALLOCATE ALL after a rollback when it
                # holds prepared statements of its own on the connection (the API's read), which drops this one too.
                cursor.execute("SELECT 1 FROM pg_prepared_statements WHERE name = %s", [self._STATEMENT.decode()])
                prepared_already = cursor.fetchone() is not None
            pg = self._pg = connection.connection.pgconn
            if not prepared_already:
                result = pg.prepare(self._STATEMENT, self._SQL.encode())
                # 42P05, prepared already: behind a pooler the server's list need not show this client's names.
                failed = result.status != pq.ExecStatus.COMMAND_OK
                if failed and result.error_field(pq.DiagnosticField.SQLSTATE) != b"42P05":
                    raise DatabaseError(f"could not prepare the sent mark: {result.get_error_message()}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.drain()
        if self._pg is not None:
            with connection.cursor() as cursor:
                cursor.execute("RESET synchronous_commit")

    def mark(self, row: Notification) -> None:
        if self._pg is None:
            Notification.objects.filter(id=row.id, status=Notification.Status.SENDING).update(
                status=Notification.Status.SENT, sent_at=timezone.now(), last_error=""
            )
            return
        self.drain()
        self._pg.send_query_prepared(self._STATEMENT, [str(row.id).encode()])
        self._pending = True
        while self._pg.flush():
            select.select([], [self._pg.socket], [])

    def drain(self) -> None:
        """Read the answer to the mark in flight (before the connection is used for anything else)."""
        if not self._pending:
            return
        self._pending = False
        pg = self._pg
        assert pg is not None  # only PostgreSQL marks are pipelined
        error = None
        while True:
            pg.consume_input()
            if pg.is_busy():
                select.select([pg.socket], [], [])
                continue
            result = pg.get_result()
            if result is None:
                break
            if result.status != pq.ExecStatus.COMMAND_OK:
                error = result.get_error_message()
        if error:
            raise DatabaseError(f"could not mark a notification sent: {error}")


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


class _KeptMailers:
    """Each delivering thread's open SMTP connection, kept from one batch to the next.

    One is kept per thread (for the configured mailer): a prefork child has
    one, a worker on the threads pool one per pool thread, so its batches go
    out over as many connections at once. A connection idle for longer than a
    server may hold it, or one that does not answer a NOOP, is replaced before
    a batch starts.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def _kept(self) -> tuple[str, Any, float] | None:
        return getattr(self._local, "kept", None)

    @_kept.setter
    def _kept(self, value: tuple[str, Any, float] | None) -> None:
        self._local.kept = value

    @staticmethod
    def _key() -> str:
        return json.dumps(settings.MAILERS.get("default", {}), sort_keys=True, default=str)

    @staticmethod
    def _usable(mailer: Any, last_used: float) -> bool:
        if time.monotonic() - last_used > settings.NOTIFICATIONS_SMTP_IDLE_SECONDS:
            return False
        try:
            return bool(mailer.connection.noop()[0] == 250)
        except Exception:
            return False

    def checkout(self) -> Any:
        """An open mailer for this batch (raises when the server cannot be reached)."""
        kept, self._kept = self._kept, None
        if kept is not None:
            key, mailer, last_used = kept
            if key == self._key() and self._usable(mailer, last_used):
                return mailer
            self.discard(mailer)
        mailer = mail.mailers.default
        mailer.open()
        return mailer

    def checkin(self, mailer: Any) -> None:
        """Keep an open SMTP connection for this thread's next batch; close anything else."""
        if getattr(mailer, "connection", None) is None:
            self.discard(mailer)
            return
        previous, self._kept = self._kept, (self._key(), mailer, time.monotonic())
        if previous is not None and previous[1] is not mailer:
            self.discard(previous[1])

    @staticmethod
    def discard(mailer: Any) -> None:
        try:
            mailer.close()
        except Exception:
            logger.debug("SMTP close failed", exc_info=True)


kept_mailers = _KeptMailers()


def _build_all(rows: list[Notification], outcome: dict[str, int]) -> list[tuple[Notification, Outgoing]]:
    """Every row's email, built before the first is sent; a row that cannot be built fails for good."""
    builder = MessageBuilder(rows)
    emails: dict[int, Outgoing] = {}
    for locale, group in builder.by_locale(rows):
        with locale:
            for row in group:
                try:
                    emails[row.id] = builder.outgoing(row, in_its_locale=True)
                except Exception as error:
                    _mark_failed(row, _describe(error))
                    outcome["failed"] += 1
                    logger.exception("notification %s could not be built", row.id)
    return [(row, emails[row.id]) for row in rows if row.id in emails]


# An addr-spec of ASCII dot-atoms, nothing else: what Django's prep_address hands back unchanged, known
# without running the header parser (which costs more than the rest of sending a shared encoding).
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)


def envelope_address(mailer: Any, address: str, prepared: dict[str, str]) -> str:
    """mailer.prep_address(address): a plain address as it is, any other parsed once per batch (`prepared`)."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return address
    if address not in prepared:
        prepared[address] = mailer.prep_address(address)
    return prepared[address]


def _send_one(mailer: Any, outgoing: Outgoing, prepared: dict[str, str]) -> None:
    """Hand one email to the mail server; a shared encoding goes over SMTP as it is."""
    if outgoing.data is None or not isinstance(mailer, SMTPEmailBackend):
        mailer.send_messages([outgoing.email])
        return
    email = outgoing.email
    sender = envelope_address(mailer, email.from_email, prepared)
    recipients = [envelope_address(mailer, address, prepared) for address in email.recipients()]
    assert mailer.connection is not None  # checked out open
    if outgoing.wire is not None and all(_PLAIN_ADDRESS.fullmatch(a) for a in (sender, *recipients)):
        send_plain(mailer.connection, sender, recipients, outgoing.data, outgoing.wire)
    else:
        mailer.connection.sendmail(sender, recipients, outgoing.data)


def _reset(smtp: smtplib.SMTP, code: int) -> None:
    """What smtplib does after a refusal: a 421 closes the connection, anything else resets the transaction."""
    if code == 421:
        smtp.close()
        return
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        smtp.rset()


def send_plain(smtp: smtplib.SMTP, sender: str, recipients: list[str], data: bytes, wire: bytes) -> None:
    """smtplib's sendmail for plain addr-specs and DATA already dot-stuffed (`wire`): the same commands and
    the same exceptions, without parsing every address again (email.utils.parseaddr was the largest part of
    the worker's CPU for sending) nor dot-stuffing every copy of a shared body."""
    smtp.ehlo_or_helo_if_needed()
    size = f" size={len(data)}" if smtp.does_esmtp and smtp.has_extn("size") else ""
    code, reply = smtp.docmd("mail", f"FROM:<{sender}>{size}")
    if code != 250:
        _reset(smtp, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    refused: dict[str, tuple[int, bytes]] = {}
    for recipient in recipients:
        code, reply = smtp.docmd("rcpt", f"TO:<{recipient}>")
        if code not in (250, 251):
            refused[recipient] = (code, reply)
            if code == 421:
                smtp.close()
                raise smtplib.SMTPRecipientsRefused(refused)
    if len(refused) == len(recipients):
        _reset(smtp, 0)
        raise smtplib.SMTPRecipientsRefused(refused)
    code, reply = smtp.docmd("data")
    if code != 354:
        _reset(smtp, code)
        raise smtplib.SMTPDataError(code, reply)
    smtp.send(wire)
    code, reply = smtp.getreply()
    if code != 250:
        _reset(smtp, code)
        raise smtplib.SMTPDataError(code, reply)


def _send_built(
    mailer: Any, built: list[tuple[Notification, Outgoing]], outcome: dict[str, int]
) -> tuple[list[Notification], list[Notification]]:
    """Send over one connection, marking each accepted message at once; (to retry, failed for good)."""
    to_retry: list[Notification] = []
    failed: list[Notification] = []
    prepared: dict[str, str] = {}
    with PipelinedMarks() as marks:
        for row, outgoing in built:
            try:
                _send_one(mailer, outgoing, prepared)
            except Exception as error:
                row.error = _describe(error)
                (to_retry if is_transient(error) else failed).append(row)
            else:
                marks.mark(row)
                outcome["sent"] += 1
    return to_retry, failed


def _record_failed(failed: list[Notification], outcome: dict[str, int]) -> None:
    for row in failed:
        _mark_failed(row, row.error)
        outcome["failed"] += 1
        logger.error("notification %s failed permanently: %s", row.id, row.error)


def _send_batch(rows: list[Notification], outcome: dict[str, int]) -> list[Notification]:
    """Send claimed rows; record each outcome; return those to retry."""
    built = _build_all(rows, outcome)
    if not built:
        return []
    connections = min(settings.NOTIFICATIONS_SMTP_CONNECTIONS, len(built))
    if connections > 1 and connection.vendor == "postgresql" and _smtp_configured():
        to_retry, failed = _send_concurrently(built, outcome, connections)
        _record_failed(failed, outcome)
        return to_retry
    try:
        mailer = kept_mailers.checkout()
    except Exception as error:
        # Cannot even connect: every row in the batch waits for the next try.
        for row, _message in built:
            row.error = _describe(error)
        return [row for row, _message in built]
    try:
        to_retry, failed = _send_built(mailer, built, outcome)
    except BaseException:
        kept_mailers.discard(mailer)
        raise
    _record_failed(failed, outcome)
    if to_retry or failed:
        # The connection may be what failed: the next batch starts a fresh one.
        kept_mailers.discard(mailer)
    else:
        kept_mailers.checkin(mailer)
    return to_retry


def _smtp_configured() -> bool:
    return isinstance(mail.mailers.default, SMTPEmailBackend)  # made, not opened


class _SenderThreads:
    """The worker process's sender threads, one SMTP connection each (kept_mailers keeps one per thread).

    One pool per process, shared by every task it runs, so a process holds at
    most NOTIFICATIONS_SMTP_CONNECTIONS connections whatever its Celery pool;
    made in the process that uses it (a prefork child, after the fork).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._key: tuple[int, int] | None = None

    def pool(self, size: int) -> ThreadPoolExecutor:
        with self._lock:
            key = (os.getpid(), size)
            if self._pool is None or self._key != key:
                if self._pool is not None and self._key is not None and self._key[0] == key[0]:
                    self._pool.shutdown(wait=False)
                self._pool = ThreadPoolExecutor(size, thread_name_prefix="notification-smtp")
                self._key = key
            return self._pool


sender_threads = _SenderThreads()


class _SharedMarks(PipelinedMarks):
    """PipelinedMarks for several sender threads: one mark on the database connection at a time.

    Only the raw PostgreSQL connection is used, from whichever thread holds the
    lock; the task's thread waits meanwhile and does not touch the connection.
    """

    def __init__(self, outcome: dict[str, int]) -> None:
        super().__init__()
        self._outcome = outcome
        self._lock = threading.RLock()  # a mark drains the one before it

    def __enter__(self) -> _SharedMarks:
        super().__enter__()
        return self

    def mark(self, row: Notification) -> None:
        with self._lock:
            super().mark(row)
            self._outcome["sent"] += 1

    def drain(self) -> None:
        with self._lock:
            super().drain()


# Errors after which a connection is not used for another message (the server went away or the socket broke);
# a reply to one message (a 4xx or 5xx, after which smtplib resets the transaction) leaves it usable.
_CONNECTION_LOST = (smtplib.SMTPServerDisconnected, OSError)


class _Batch:
    """One batch shared by the sender threads: each takes the next message until none is left."""

    def __init__(self, built: list[tuple[Notification, Outgoing]], marks: _SharedMarks) -> None:
        self.work = collections.deque(built)
        self.marks = marks
        self.to_retry: list[Notification] = []
        self.failed: list[Notification] = []
        self.last_error: BaseException | None = None  # of a connection that could not be used
        self.stop = threading.Event()

    def send_share(self) -> None:
        """Run in a sender thread. Marks each accepted message before taking the next, so a kill leaves at
        most one message per connection sent and not marked."""
        if self.stop.is_set() or not self.work:
            return
        try:
            mailer = kept_mailers.checkout()
        except Exception as error:
            self.last_error = error  # the other connections take this one's share
            return
        prepared: dict[str, str] = {}
        healthy = True
        try:
            while healthy and not self.stop.is_set():
                try:
                    row, outgoing = self.work.popleft()
                except IndexError:
                    break
                try:
                    _send_one(mailer, outgoing, prepared)
                except Exception as error:
                    row.error = _describe(error)
                    (self.to_retry if is_transient(error) else self.failed).append(row)
                    healthy = not isinstance(error, _CONNECTION_LOST)
                    if not healthy:
                        # Lost with this message perhaps on its way: it is retried, with its same Message-ID.
                        self.last_error = error
                        break
                else:
                    self.marks.mark(row)
        except BaseException:
            self.stop.set()
            kept_mailers.discard(mailer)
            raise
        if healthy:
            kept_mailers.checkin(mailer)
        else:
            kept_mailers.discard(mailer)

    def left_over(self) -> list[Notification]:
        """Rows no connection could take (none could be opened, or every one was lost): retried later."""
        rows = []
        while self.work:
            row, _outgoing = self.work.popleft()
            row.error = _describe(self.last_error) if self.last_error else "no SMTP connection left"
            rows.append(row)
        return rows


def _send_concurrently(
    built: list[tuple[Notification, Outgoing]], outcome: dict[str, int], connections: int
) -> tuple[list[Notification], list[Notification]]:
    """Send a batch over several SMTP connections at once; (to retry, failed for good)."""
    pool = sender_threads.pool(settings.NOTIFICATIONS_SMTP_CONNECTIONS)
    with _SharedMarks(outcome) as marks:
        batch = _Batch(built, marks)
        futures = [pool.submit(batch.send_share) for _ in range(connections)]
        try:
            concurrent.futures.wait(futures)
        except BaseException:
            # A time limit in the task's thread: no new message is started, and the ones on their way are
            # waited for, so none is left accepted and not marked by a live worker.
            batch.stop.set()
            concurrent.futures.wait(futures)
            raise
        for future in futures:
            future.result()  # a sender's database error fails the task, as it would on one connection
    return batch.to_retry + batch.left_over(), batch.failed


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
    result = {"released": len(released), "enqueued": len(to_send)}
    # What the apps above the outbox hand out again with it (consent: a policy fan-out cut short).
    for name, step in sweep_steps().items():
        result[name] = step(now)
    return result


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
