"""Writers of the outbox. Called by other services inside their transaction."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone, translation

from notifications.models import Notification
from platformkit.queueing import enqueue, task_named

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)


def queue_notification(
    *,
    kind: str,
    to_email: str,
    dedupe_key: str,
    context: dict[str, Any],
    recipient: User | None = None,
) -> Notification | None:
    """Write one outbox row and deliver it once the caller's transaction commits.

    Returns None when a row with the same dedupe key already exists: the same
    notice is never queued twice.
    """
    if recipient is None and "language" not in context:
        # No account to ask later: the email is written in the language of the page that queued it.
        context = {**context, "language": translation.get_language() or settings.LANGUAGE_CODE}
    try:
        # A savepoint, so a duplicate leaves the caller's transaction usable.
        with transaction.atomic():
            row = Notification.objects.create(
                recipient=recipient,
                to_email=to_email,
                kind=kind,
                context=context,
                dedupe_key=dedupe_key,
            )
    except IntegrityError:
        if Notification.objects.filter(dedupe_key=dedupe_key).exists():
            return None
        raise
    transaction.on_commit(lambda: enqueue_delivery([row.id]))
    return row


@dataclass(frozen=True)
class NewNotification:
    """One outbox row for queue_notifications."""

    kind: str
    to_email: str
    dedupe_key: str
    context: dict[str, Any]
    recipient: Any = None


def queue_notice(notice: NewNotification) -> Notification | None:
    """queue_notification for a row a notice builder made."""
    return queue_notification(
        kind=notice.kind,
        to_email=notice.to_email,
        dedupe_key=notice.dedupe_key,
        context=notice.context,
        recipient=notice.recipient,
    )


def queue_notifications(notices: Sequence[NewNotification]) -> list[int]:
    """Write many outbox rows in ONE statement (PostgreSQL) and deliver them in batches once the caller commits.

    The set-based form of queue_notification for writers that notify many
    people at once (a bulk change: one row per artist). A row whose dedupe key
    exists already is skipped, as there. Returns the ids written.
    """
    if not notices:
        return []
    if connection.vendor != "postgresql":
        rows = [queue_notice(n) for n in notices]
        return [row.id for row in rows if row is not None]
    table = connection.ops.quote_name(Notification._meta.db_table)
    payload = [
        {"r": getattr(n.recipient, "pk", None), "e": n.to_email, "k": n.kind, "c": n.context, "d": n.dedupe_key}
        for n in notices
    ]
    now = timezone.now()
    # The model's Python-side defaults are written here, as create() would.
    sql = f"""
        INSERT INTO {table} (recipient_id, to_email, kind, context, dedupe_key, campaign, status, attempts,
                             next_attempt_at, last_error, created_at)
        SELECT x.r, x.e, x.k, x.c, x.d, '', %s, 0, %s, '', %s
        FROM jsonb_to_recordset(%s::jsonb) AS x(r bigint, e text, k text, c jsonb, d text)
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING id
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [Notification.Status.PENDING, now, now, json.dumps(payload)])
        ids = sorted(row[0] for row in cursor.fetchall())
    batch = settings.NOTIFICATIONS_BATCH_SIZE
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        transaction.on_commit(functools.partial(enqueue_delivery, chunk))
    return ids


# name -> step(now) -> how many it handed out again; run by the outbox sweep (beat, every minute). An app
# above the outbox registers its own in AppConfig.ready(), so the mailbox needs no knowledge of it.
SweepStep = Callable[[datetime], int]
_sweep_steps: dict[str, SweepStep] = {}


def register_sweep_step(name: str, step: SweepStep) -> None:
    """Run `step` with every outbox sweep; its count is reported under `name` in the sweep's result."""
    _sweep_steps[name] = step


def sweep_steps() -> dict[str, SweepStep]:
    return dict(_sweep_steps)


def enqueue_delivery(notification_ids: Iterable[int], *, always_try: bool = False) -> bool:
    """Hand rows to Celery. A broker outage is logged (once), never raised.

    The rows are already committed; if the broker does not get the task, the
    periodic sweep finds the rows and sends them later. The sweep itself
    passes `always_try`, so the first sweep after an outage sends them.
    """
    ids = list(notification_ids)
    if not ids:
        return True
    if enqueue(task_named("notifications.tasks.deliver_notifications"), ids, always_try=always_try):
        return True
    logger.debug("delivery of notifications %s left to the sweep", ids)
    return False
