"""consent's Celery tasks: the lapse of unconfirmed grants and the notice of a published policy version."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction

from consent import services
from consent.models import PolicyVersion
from consent.policy import FAN_OUT_BATCH, batch_bounds, fan_out_incomplete, insert_policy_notices, versions_due_to_lapse
from notifications import services as outbox
from platformkit.queueing import enqueue

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def lapse_unconfirmed_grants() -> int:
    """Beat: at each version's effective date, withdraw grants not confirmed again.

    Idempotent: a withdrawn grant is no longer a grant, so later runs find
    nothing more for the same version.
    """
    withdrawn = 0
    for version in versions_due_to_lapse():
        withdrawn += services.lapse_unconfirmed_grants(version=version).event_count
    return withdrawn


def _fan_out(version_id: int) -> dict[str, int]:
    """Write one notice per active user, a batch per INSERT ... SELECT, and deliver them.

    Idempotent: a batch that was already written writes nothing again, so a
    redelivered or restarted fan-out only fills the gaps.
    """
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
            outbox.enqueue_delivery(ids[start : start + batch])
        last_id, count = batch_bounds(version, after_user_id=after)
        if last_id is None or count < FAN_OUT_BATCH:
            break
        after = last_id
    logger.info("policy version %s: %s notices written", version.version, written)
    return {"written": written}


@shared_task(ignore_result=True)
def fan_out_policy_notice(version_id: int) -> dict[str, int]:
    """The notice of a published policy version to every active user (started by publish_policy_version)."""
    return _fan_out(version_id)


# The task's name before it moved here from the outbox: messages already queued under it still run.
@shared_task(name="notifications.tasks.fan_out_policy_notice", ignore_result=True)
def fan_out_policy_notice_queued_before_the_move(version_id: int) -> dict[str, int]:
    return _fan_out(version_id)


def restart_unfinished_fan_outs(now: datetime) -> int:
    """A fan-out cut short (broker down at publication, worker lost) is started again; run by the outbox sweep."""
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


# Registered here so the worker's autodiscovery finds the beat task.
from consent.checkpoint_tasks import create_audit_checkpoint  # noqa: E402, F401
