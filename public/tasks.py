"""Rebuilding distribution copies: tasks take track ids, claim rows, and are safe to run twice."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded

from public import services

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="public.build_distribution_copies", ignore_result=True, max_retries=None)
def build_distribution_copies(self: Task[..., dict[str, int]], track_ids: list[int]) -> dict[str, int]:
    """Build the copies of these tracks that are due; retry the ones that failed, with backoff."""
    counts: dict[str, int] = {}
    retry: list[tuple[int, float]] = []
    for position, track_id in enumerate(track_ids):
        try:
            outcome = services.build_one(track_id)
        except SoftTimeLimitExceeded:
            # The rows not reached stay pending for the sweep; the one in hand
            # is released by its lease.
            logger.warning("copy builds stopped by the time limit at track %s", track_id)
            counts["left_for_sweep"] = len(track_ids) - position
            break
        counts[outcome.result] = counts.get(outcome.result, 0) + 1
        if outcome.retry_in is not None:
            retry.append((track_id, outcome.retry_in))
    if retry:
        raise self.retry(args=([track_id for track_id, _ in retry],), countdown=min(delay for _, delay in retry))
    return counts


@shared_task(name="public.sweep_distribution_copies", ignore_result=True)
def sweep_distribution_copies() -> dict[str, int]:
    """Run by beat: release expired claims, repair copies that disagree with consent, enqueue what is due."""
    return services.sweep()
