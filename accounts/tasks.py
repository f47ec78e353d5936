"""Background work for accounts: building data exports and expiring them."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from accounts import services
from accounts.export import build_archive

logger = logging.getLogger(__name__)

FAILED_REASON = "Something went wrong while your archive was being built. Please ask for a new one."


# A large catalogue's archive may take longer than the default task limits;
# these stay below the broker's visibility timeout (settings).
@shared_task(
    name="accounts.build_data_export",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=settings.ACCOUNTS_EXPORT_TIME_LIMIT_SECONDS - 60,
    time_limit=settings.ACCOUNTS_EXPORT_TIME_LIMIT_SECONDS,
)
def build_data_export(export_id: int) -> str:
    """Build one archive and email its link. Safe to run any number of times.

    Only a pending export (or one whose builder died) is claimed; a second
    delivery of the task finds nothing to do.
    """
    export = services.claim_export(export_id=export_id)
    if export is None:
        return "skipped"
    try:
        built = build_archive(export.user)
    except SoftTimeLimitExceeded:
        services.fail_export(export=export, error="The archive took too long to build.")
        return "failed"
    except Exception:
        logger.exception("data export %s failed", export_id)
        services.fail_export(export=export, error=FAILED_REASON)
        return "failed"
    if not services.finish_export(export=export, storage_name=built.storage_name, size_bytes=built.size_bytes):
        return "skipped"
    return "ready"


@shared_task(name="accounts.sweep_data_exports", ignore_result=True)
def sweep_data_exports() -> dict[str, int]:
    """Beat: remove expired archives, and queue again builds the broker lost or a dead worker left."""
    expired = services.expire_data_exports()
    stalled = services.stalled_exports()
    for export_id in stalled:
        services.enqueue_export_build(export_id)
    return {"expired": expired, "requeued": len(stalled)}
