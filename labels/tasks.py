from celery import shared_task


# A bulk change of a whole catalogue may run longer than ordinary tasks.
@shared_task(name="labels.apply_bulk_change", acks_late=True, soft_time_limit=3600, time_limit=3700)
def apply_bulk_change_task(bulk_change_id: int) -> int | None:
    """Idempotent: only a queued change is claimed, so a redelivered task does nothing."""
    from labels.services import apply_bulk_change

    result = apply_bulk_change(bulk_change_id)
    return result.applied if result else None
