"""Webhook delivery: the outbox of changes to tell each client's HTTPS endpoint.

Rows are written by a fan-out that reads the change feed from the client's own
cursor (so a webhook never misses what the feed shows), claimed with a
conditional update, sent signed per Standard Webhooks, and retried with backoff.
The webhook-id is derived from the change, so a receiver can drop a repeat.
"""

from __future__ import annotations

import datetime
import json
import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from consent.models import AuditEvent
from downstream import feed, selectors
from downstream.models import ApiClient, WebhookDelivery
from platformkit.claims import claim_due
from platformkit.queueing import enqueue as enqueue_task
from platformkit.queueing import task_named
from platformkit.sql import insert_rows

logger = logging.getLogger(__name__)

FAN_OUT_BATCH = 500


def message_id(change: selectors.Change) -> str:
    return f"chg_{change.cursor.replace('.', '_')}_{change.purpose}"


def payload(change: selectors.Change, now: datetime.datetime) -> str:
    return json.dumps(
        {
            "type": "consent.change",
            "timestamp": now.isoformat(),
            "data": {
                "cursor": change.cursor,
                "track": str(change.track),
                "purpose": change.purpose,
                "allowed": change.allowed,
                "at": change.at.isoformat(),
                "event": change.event,
                "change": change.change,
            },
        },
        separators=(",", ":"),
    )


# --- Fan-out: feed -> delivery rows ----------------------------------------------------------


def fan_out(*, client_id: int, max_batches: int = 20) -> list[int]:
    """Turn the client's new changes into delivery rows, advancing its cursor in the same transaction."""
    created: list[int] = []
    for _ in range(max_batches):
        with transaction.atomic():
            client = (
                ApiClient.objects.select_for_update(skip_locked=True)
                .filter(pk=client_id, revoked_at__isnull=True)
                .exclude(webhook_url="")
                .first()
            )
            if client is None:
                break
            purposes = {p.pk: p for p in client.purposes.all()}
            position = feed.Position(client.webhook_after_horizon, client.webhook_after_event)
            events = AuditEvent.objects.filter(
                Q(kind=AuditEvent.Kind.CONSENT_CHANGED, purpose_id__in=list(purposes))
                | Q(kind=AuditEvent.Kind.TRACK_DELETED)
            )
            batch = list(
                feed.in_order(feed.after(feed.settled(events), position)).values_list(
                    "id", "xid_horizon", "kind", "purpose_id"
                )[:FAN_OUT_BATCH]
            )
            if not batch:
                break
            rows: list[dict[str, Any]] = []
            for event_id, _horizon, kind, purpose_id in batch:
                targets = purposes if kind == AuditEvent.Kind.TRACK_DELETED else [purpose_id]
                rows.extend({"client_id": client.pk, "event_id": event_id, "purpose_id": p} for p in targets)
            now = timezone.now()
            for row in rows:
                row.update(
                    status=WebhookDelivery.Status.PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    last_error="",
                )
            insert_rows(WebhookDelivery, rows, ignore_conflicts=True)
            ids = list(
                WebhookDelivery.objects.filter(
                    client=client, event_id__in=[b[0] for b in batch], status=WebhookDelivery.Status.PENDING
                ).values_list("id", flat=True)
            )
            last = batch[-1]
            ApiClient.objects.filter(pk=client.pk).update(webhook_after_horizon=last[1], webhook_after_event=last[0])
            transaction.on_commit(partial(enqueue, ids))
            created.extend(ids)
        if len(batch) < FAN_OUT_BATCH:
            break
    return created


def enqueue(delivery_ids: list[int]) -> None:
    """Hand rows to Celery; a broker outage is logged, and the sweep delivers later."""
    # By name: downstream.tasks imports this module.
    deliver_webhooks = task_named("downstream.tasks.deliver_webhooks")
    batch = settings.API_WEBHOOK_BATCH_SIZE
    for start in range(0, len(delivery_ids), batch):
        # A broker outage is logged once by enqueue; the sweep sends what was not handed over.
        if not enqueue_task(deliver_webhooks, delivery_ids[start : start + batch]):
            return


# --- Delivery --------------------------------------------------------------------------------------


def claim(delivery_ids: list[int]) -> list[WebhookDelivery]:
    return claim_due(
        WebhookDelivery.objects.select_related("client", "purpose"),
        delivery_ids,
        pending=WebhookDelivery.Status.PENDING,
        sending=WebhookDelivery.Status.SENDING,
        now=timezone.now(),
    )


@dataclass(frozen=True)
class Outcome:
    sent: bool
    permanent: bool
    status: int | None
    error: str


def _permanent_status(status: int) -> bool:
    # A 4xx other than timeout and rate limit will not get better by retrying.
    return 400 <= status < 500 and status not in (408, 425, 429)


def send(session: requests.Session, delivery: WebhookDelivery, change: selectors.Change) -> Outcome:
    client = delivery.client
    url = client.webhook_url
    if client.revoked_at is not None or not url:
        return Outcome(False, True, None, "client revoked or endpoint removed")
    if not url.lower().startswith("https://"):
        return Outcome(False, True, None, "refused: the endpoint is not HTTPS")
    now = timezone.now()
    body = payload(change, now)
    msg_id = message_id(change)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(client.webhook_secret).sign(msg_id, now, body),
        "user-agent": "CreatorConsentPortal-Webhooks/1",
    }
    try:
        response = session.post(
            url,
            data=body.encode(),
            headers=headers,
            timeout=settings.API_WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
            verify=settings.API_WEBHOOK_CA_BUNDLE or True,
        )
    except requests.RequestException as error:
        return Outcome(False, False, None, f"{type(error).__name__}: {error}"[:2000])
    if 200 <= response.status_code < 300:
        return Outcome(True, False, response.status_code, "")
    return Outcome(False, _permanent_status(response.status_code), response.status_code, f"HTTP {response.status_code}")


def retry_countdown(attempt: int) -> float:
    ceiling = min(settings.API_WEBHOOK_RETRY_MAX_SECONDS, settings.API_WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def record(delivery: WebhookDelivery, outcome: Outcome) -> float | None:
    """Write the outcome; returns the countdown when the row goes back for a retry."""
    mine = WebhookDelivery.objects.filter(id=delivery.id, status=WebhookDelivery.Status.SENDING)
    if outcome.sent:
        mine.update(
            status=WebhookDelivery.Status.SENT, sent_at=timezone.now(), last_status=outcome.status, last_error=""
        )
        return None
    if outcome.permanent or delivery.attempts >= settings.API_WEBHOOK_MAX_ATTEMPTS:
        error = outcome.error if outcome.permanent else f"gave up after {delivery.attempts} attempts: {outcome.error}"
        mine.update(status=WebhookDelivery.Status.FAILED, last_status=outcome.status, last_error=error[:2000])
        logger.warning("webhook delivery %s failed: %s", delivery.id, error)
        return None
    countdown = retry_countdown(delivery.attempts)
    mine.update(
        status=WebhookDelivery.Status.PENDING,
        last_status=outcome.status,
        last_error=outcome.error,
        next_attempt_at=timezone.now() + timedelta(seconds=countdown),
        claimed_at=None,
    )
    return countdown


def deliver(delivery_ids: list[int]) -> tuple[dict[str, int], list[int], float | None]:
    """Send the claimable rows; returns counts, the ids to retry and the earliest retry countdown."""
    rows = claim(delivery_ids)
    counts = {"sent": 0, "retry": 0, "failed": 0}
    changes = selectors.changes_by_ids((r.event_id, r.purpose.slug) for r in rows)
    retry_ids: list[int] = []
    countdowns: list[float] = []
    with requests.Session() as session:
        for row in rows:
            change = changes.get((row.event_id, row.purpose.slug))
            outcome = (
                send(session, row, change) if change else Outcome(False, True, None, "the change no longer exists")
            )
            countdown = record(row, outcome)
            if outcome.sent:
                counts["sent"] += 1
            elif countdown is None:
                counts["failed"] += 1
            else:
                counts["retry"] += 1
                retry_ids.append(row.id)
                countdowns.append(countdown)
    return counts, retry_ids, min(countdowns) if countdowns else None


def release_and_find_due(*, limit: int = 10_000) -> tuple[int, list[int]]:
    now = timezone.now()
    lease_expired = now - timedelta(seconds=settings.API_WEBHOOK_CLAIM_LEASE_SECONDS)
    released = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.SENDING, claimed_at__lt=lease_expired
    ).update(status=WebhookDelivery.Status.PENDING, claimed_at=None, next_attempt_at=now)
    due = list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    return released, due
