"""Bulk changes in the worker.

The apply task has no time limits of its own: the project's soft and hard
limits (CELERY_TASK_SOFT_TIME_LIMIT, CELERY_TASK_TIME_LIMIT) are below the
broker's visibility timeout, so a task is never delivered to a second worker
while the first still runs it. A long change is not one long task: each task
stops after LABELS_BULK_TASK_BUDGET_SECONDS and hands the rest to a fresh one.
"""

from celery import shared_task


@shared_task(name="labels.apply_bulk_change", acks_late=True, ignore_result=True)
def apply_bulk_change_task(bulk_change_id: int) -> int | None:
    """Idempotent: only a queued change is claimed, so a redelivered task does nothing."""
    from labels.bulk import apply_bulk_change

    result = apply_bulk_change(bulk_change_id)
    return result.applied if result else None


@shared_task(name="labels.sweep_bulk_changes", ignore_result=True)
def sweep_bulk_changes_task() -> dict[str, int]:
    """Resume (or fail, visibly) changes whose worker was lost; re-enqueue ones the broker lost."""
    from labels.bulk import sweep_bulk_changes

    result = sweep_bulk_changes()
    return {"resumed": result.resumed, "failed": result.failed, "requeued": result.requeued}
