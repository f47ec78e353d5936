from celery import shared_task

from consent import services
from consent.policy import versions_due_to_lapse


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


# Registered here so the worker's autodiscovery finds the beat task.
from consent.checkpoint_tasks import create_audit_checkpoint  # noqa: E402, F401
