"""Writers of the outbox. Called by other services inside their transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import translation

from creatorportal.queueing import enqueue
from notifications.models import Notification

logger = logging.getLogger(__name__)


def queue_notification(
    *,
    kind: str,
    to_email: str,
    dedupe_key: str,
    context: dict,
    recipient=None,
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


def enqueue_delivery(notification_ids: Iterable[int], *, always_try: bool = False) -> bool:
    """Hand rows to Celery. A broker outage is logged (once), never raised.

    The rows are already committed; if the broker does not get the task, the
    periodic sweep finds the rows and sends them later. The sweep itself
    passes `always_try`, so the first sweep after an outage sends them.
    """
    from notifications.tasks import deliver_notifications

    ids = list(notification_ids)
    if not ids:
        return True
    if enqueue(deliver_notifications, ids, always_try=always_try):
        return True
    logger.debug("delivery of notifications %s left to the sweep", ids)
    return False
