"""Writers of the outbox. Called by other services inside their transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction

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
