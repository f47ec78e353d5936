"""Celery tasks of the downstream app. Each takes ids and claims its work with a conditional update."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from downstream import webhooks
from downstream.models import ApiClient, IdempotencyRecord

logger = logging.getLogger(__name__)


@shared_task(bind=True, ignore_result=True, max_retries=None)
def deliver_webhooks(self: Task[..., Any], delivery_ids: list[int]) -> dict[str, int]:
    counts, retry_ids, countdown = webhooks.deliver(delivery_ids)
    if retry_ids:
        # One retry for the batch, when its earliest row is due; the sweep
        # picks up any row this retry never reaches.
        raise self.retry(args=(retry_ids,), countdown=countdown)
    return counts


@shared_task(ignore_result=True)
def sweep_webhooks() -> dict[str, int]:
    """Fan new changes out to every webhook, release abandoned claims, hand out what is due."""
    fanned = 0
    for client_id in ApiClient.objects.active().exclude(webhook_url="").values_list("id", flat=True):
        fanned += len(webhooks.fan_out(client_id=client_id))
    released, due = webhooks.release_and_find_due()
    webhooks.enqueue(due)
    IdempotencyRecord.objects.filter(
        created_at__lt=timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_TTL_HOURS)
    ).delete()
    return {"fanned_out": fanned, "released": released, "enqueued": len(due)}


@shared_task(ignore_result=True)
def check_ack_deadlines() -> dict[str, int]:
    """Tell staff about every client that has left a withdrawal unacknowledged past the deadline."""
    from downstream.services import notify_overdue_acks

    return {"notices": notify_overdue_acks()}
