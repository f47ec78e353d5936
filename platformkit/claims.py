"""Claiming queued rows for a worker with a conditional update: the outbox's emails, the webhooks' deliveries."""

from __future__ import annotations

import datetime
from collections.abc import Collection
from typing import Any

from django.db import transaction
from django.db.models import F, Model, QuerySet


def claim_due[RowT: Model](
    rows: QuerySet[RowT], ids: Collection[int], *, pending: str, sending: str, now: datetime.datetime
) -> list[RowT]:
    """Take the due, pending rows among `ids` (status, next_attempt_at, claimed_at, attempts columns).

    Rows another worker holds are skipped, not waited for; the rows taken are
    marked as being sent, with the attempt counted, before the lock is let go.
    """
    with transaction.atomic():
        taken = list(
            rows.select_for_update(skip_locked=True, of=("self",))
            .filter(id__in=list(ids), status=pending, next_attempt_at__lte=now)
            .order_by("id")
        )
        if taken:
            update: dict[str, Any] = {"status": sending, "claimed_at": now, "attempts": F("attempts") + 1}
            rows.model._default_manager.filter(id__in=[row.pk for row in taken]).update(**update)
    for row in taken:
        row.attempts += 1  # type: ignore[attr-defined]
    return taken
