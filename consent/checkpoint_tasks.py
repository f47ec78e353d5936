"""Beat: a signed checkpoint of every audit chain head, every AUDIT_CHECKPOINT_INTERVAL_SECONDS."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="consent.create_audit_checkpoint", ignore_result=True)
def create_audit_checkpoint() -> int | None:
    """Writes the next checkpoint; refuses (and logs every problem) when the chains do not verify."""
    from consent.audit_verify import CheckpointRefused, create_checkpoint

    try:
        checkpoint = create_checkpoint()
    except CheckpointRefused as refused:
        for problem in refused.breaks:
            logger.error("audit checkpoint refused: %s", problem)
        return None
    logger.info("audit checkpoint %s written (%s chains)", checkpoint.number, checkpoint.statement["chains"])
    return checkpoint.number
