"""Writes for accounts: deleting an account and asking for a copy of one's data.

Both flows span every app. accounts, the lowest app, imports none of them: it
runs the steps and sections they registered in accounts.hooks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from accounts import hooks
from accounts.models import DataExport, User
from accounts.notices import account_deleted_notice, data_export_ready_notice
from platformkit.queueing import enqueue, task_named

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger(__name__)

# Who deleted an account, as the farewell notice words it.
VIA_SETTINGS = "settings"
VIA_ADMIN = "admin"
VIA_SYSTEM = "system"
_VIAS = {VIA_SETTINGS, VIA_ADMIN, VIA_SYSTEM}


class AccountError(Exception):
    """A request refused with a message fit to show the person who made it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class DeletionReport:
    user_id: int
    email: str
    summary: dict[str, Any] = field(default_factory=dict)


def deletion_plan(user: User) -> list[str]:
    """What deleting this account will do, step by step, in words (for the confirmation pages)."""
    lines = []
    for step in hooks.erasure_steps:
        if step.describe is not None:
            line = step.describe(user)
            if line:
                lines.append(line)
    return lines


def delete_account(
    *, user: User, actor: User | None, via: str = VIA_SYSTEM, request: HttpRequest | None = None
) -> DeletionReport:
    """Delete an account the one way: every registered step, then the row, in one transaction.

    The steps (see accounts.hooks and each app's account_hooks) withdraw every
    grant through the consent service, end delegations and tell the labels,
    delete tracks with their audit events (files after commit), clear the
    outbox, close the artist's audit chain and erase the personal data in it.
    A step that fails rolls everything back: nothing is half deleted. The
    foreign keys that lead to consent, tracks and delegations are PROTECT, so
    a step that is missing fails loudly instead of cascading silently.
    """
    if via not in _VIAS:
        raise ValueError(f"Unknown deletion path {via!r}.")
    with transaction.atomic():
        # Locked first: an upload or consent save of this account waits for the
        # deletion to finish and then finds no account, instead of racing it.
        locked = User.objects.select_for_update().filter(pk=user.pk).first()
        if locked is None:
            raise AccountError("This account has already been deleted.")
        if actor is not None and actor.pk == locked.pk:
            actor = locked
        deletion = hooks.AccountDeletion(user=locked, actor=actor, via=via, request=request)
        report = DeletionReport(user_id=locked.pk, email=locked.email, summary=deletion.summary)
        for step in hooks.erasure_steps:
            step.run(deletion)
        _send_farewell(deletion)
        # Model.delete, not locked.delete(): that one routes back here.
        models.Model.delete(locked)
    logger.info("account %s deleted via %s by %s", report.user_id, via, actor.pk if actor else "the system")
    return report


def _send_farewell(deletion: hooks.AccountDeletion) -> None:
    hooks.send_notice(account_deleted_notice(deletion))


# --- Download my data -----------------------------------------------------------------------


def request_data_export(*, user: User) -> tuple[DataExport, bool]:
    """(export, created): a new archive for a worker to build, or the one already on its way."""
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        open_export = (
            DataExport.objects.filter(user=user, status__in=[DataExport.Status.PENDING, DataExport.Status.BUILDING])
            .order_by("-created_at")
            .first()
        )
        if open_export is not None:
            return open_export, False
        export = DataExport.objects.create(user=user)
        transaction.on_commit(partial(enqueue_export_build, export.pk), robust=True)
    return export, True


def enqueue_export_build(export_id: int) -> None:
    """Hand the build to Celery; if the broker is down, the sweep enqueues it later."""
    enqueue(task_named("accounts.build_data_export"), export_id)


def claim_export(*, export_id: int) -> DataExport | None:
    """Take a pending export (or one whose builder died) for building; None if there is nothing to do."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.ACCOUNTS_EXPORT_BUILD_LEASE_SECONDS)
    claimed = (
        DataExport.objects.filter(pk=export_id)
        .filter(
            Q(status=DataExport.Status.PENDING) | Q(status=DataExport.Status.BUILDING, claimed_at__lt=stale),
        )
        .update(status=DataExport.Status.BUILDING, claimed_at=now)
    )
    if not claimed:
        return None
    return DataExport.objects.select_related("user").get(pk=export_id)


def finish_export(*, export: DataExport, storage_name: str, size_bytes: int) -> bool:
    """Mark the archive ready and email its link, or throw the file away if the export stopped being ours."""
    now = timezone.now()
    with transaction.atomic():
        done = DataExport.objects.filter(
            pk=export.pk, status=DataExport.Status.BUILDING, claimed_at=export.claimed_at
        ).update(
            status=DataExport.Status.READY,
            storage_name=storage_name,
            size_bytes=size_bytes,
            ready_at=now,
            expires_at=now + timedelta(seconds=settings.ACCOUNTS_EXPORT_TTL_SECONDS),
            error="",
        )
        if not done:
            delete_stored_on_commit(storage_name)
            return False
        export.refresh_from_db()
        _send_export_ready(export)
    return True


def fail_export(*, export: DataExport, error: str) -> None:
    DataExport.objects.filter(pk=export.pk, status=DataExport.Status.BUILDING, claimed_at=export.claimed_at).update(
        status=DataExport.Status.FAILED, error=error[:2000]
    )


def _send_export_ready(export: DataExport) -> None:
    hooks.send_notice(data_export_ready_notice(export))


def expire_data_exports(*, now: datetime | None = None) -> int:
    """Expire every archive past its date and remove its file once that is committed."""
    now = now or timezone.now()
    expired = 0
    with transaction.atomic():
        rows = list(
            DataExport.objects.select_for_update(skip_locked=True)
            .filter(status=DataExport.Status.READY, expires_at__lte=now)
            .values_list("pk", "storage_name")
        )
        if rows:
            expired = DataExport.objects.filter(pk__in=[pk for pk, _ in rows], status=DataExport.Status.READY).update(
                status=DataExport.Status.EXPIRED, storage_name=""
            )
            delete_stored_on_commit(*(name for _, name in rows))
    return expired


def stalled_exports(*, now: datetime | None = None) -> list[int]:
    """Exports the broker may never have delivered, or whose builder died."""
    now = now or timezone.now()
    grace = now - timedelta(seconds=settings.ACCOUNTS_EXPORT_SWEEP_GRACE_SECONDS)
    stale = now - timedelta(seconds=settings.ACCOUNTS_EXPORT_BUILD_LEASE_SECONDS)
    return list(
        DataExport.objects.filter(
            Q(status=DataExport.Status.PENDING, created_at__lt=grace)
            | Q(status=DataExport.Status.BUILDING, claimed_at__lt=stale)
        ).values_list("pk", flat=True)[:500]
    )


def delete_user_exports(deletion: hooks.AccountDeletion) -> None:
    """Erasure step: the account's archives and their files (after commit)."""
    exports = DataExport.objects.filter(user=deletion.user)
    delete_stored_on_commit(*exports.exclude(storage_name="").values_list("storage_name", flat=True))
    exports.delete()


def _delete_stored(*names: str) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:
            # Garbage to find in the log, not a reason to fail the caller.
            logger.exception("could not delete stored file %s", name)


def delete_stored_on_commit(*names: str) -> None:
    names = tuple(name for name in names if name)
    if names:
        transaction.on_commit(partial(_delete_stored, *names))
