"""Writes of public state and of the distribution copies' rebuild queue.

The rebuild queue is an outbox on the DistributionCopy rows themselves: the
need for a rebuild is written in the transaction of the consent change that
causes it (through the hook consent offers), a task is enqueued on commit,
tasks claim a row with a conditional update and a lease, failures go back to
pending with exponential backoff, and a periodic sweep hands out anything the
broker lost or a dead worker left, and repairs any copy whose embedded answer
differs from current consent.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext

from consent.hooks import ConsentCellChange
from platformkit.queueing import enqueue, task_named
from platformkit.sql import pk_in
from public import copies
from public.answers import PURPOSE_SLUG, answer_for, granted_consents, signals_for
from public.models import ArtistPage, DistributionCopy, PublicTrack
from tracks.models import Track
from tracks.services import delete_files_on_commit

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)
Status = DistributionCopy.Status


class PublicError(Exception):
    """A request refused, with a message fit for the artist."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- Public or private ------------------------------------------------------------------------


def set_track_public(*, actor: User, track: Track, public: bool) -> bool:
    """Make the artist's own track public or private. Returns False when nothing changed."""
    if actor.pk != track.owner_id:
        raise PublicError(gettext("Only the track's artist can make it public or private."))
    if public and track.status != Track.Status.READY:
        raise PublicError(gettext("Only a processed track can be made public; wait until it is ready."))
    with transaction.atomic():
        state, _ = PublicTrack.objects.select_for_update().get_or_create(track=track)
        if state.is_public == public:
            return False
        state.is_public = public
        state.changed_at = timezone.now()
        state.save(update_fields=["is_public", "changed_at"])
        if public:
            ArtistPage.objects.get_or_create(artist_id=track.owner_id)
            _ensure_copy(track)
    return True


def _ensure_copy(track: Track) -> None:
    support = copies.support_for(track)
    now = timezone.now()
    copy, created = DistributionCopy.objects.select_for_update().get_or_create(
        track=track,
        defaults={"status": Status.PENDING if support.any else Status.UNSUPPORTED, "requested_at": now},
    )
    if created:
        if copy.status == Status.PENDING:
            transaction.on_commit(lambda: enqueue_builds([track.pk]))
        return
    # Made public again: a copy that failed, or says an answer that has changed since, is rebuilt.
    stale = copy.status == Status.CURRENT and copy.embedded_granted is not answer_for(track.pk).granted
    if stale or copy.status == Status.FAILED:
        request_rebuild(track_ids=[track.pk])


# --- Rebuild requests -------------------------------------------------------------------------


def on_consent_changed(changes: Sequence[ConsentCellChange]) -> None:
    """The consent hook: runs inside the consent change's transaction."""
    track_ids = {c.track_id for c in changes if c.purpose_slug == PURPOSE_SLUG}
    if track_ids:
        request_rebuild(track_ids=track_ids)


def request_rebuild(*, track_ids: Iterable[int]) -> int:
    """Mark these tracks' copies for rebuilding, set-based, and enqueue the work on commit."""
    rows = DistributionCopy.objects.filter(track_id__in=pk_in(track_ids)).exclude(status=Status.UNSUPPORTED)
    ids = list(rows.values_list("track_id", flat=True))
    if not ids:
        return 0
    now = timezone.now()
    DistributionCopy.objects.filter(track_id__in=pk_in(ids)).update(
        status=Status.PENDING, attempts=0, next_attempt_at=now, requested_at=now, last_error=""
    )
    transaction.on_commit(lambda: enqueue_builds(ids))
    return len(ids)


def enqueue_builds(track_ids: Sequence[int]) -> bool:
    """Hand rows to Celery in batches. A broker outage is logged, never raised: the sweep finds the rows."""
    # By name: public.tasks imports this module.
    build_distribution_copies = task_named("public.build_distribution_copies")
    batch = settings.PUBLIC_COPY_BATCH_SIZE
    for start in range(0, len(track_ids), batch):
        if not enqueue(build_distribution_copies, list(track_ids[start : start + batch])):
            return False
    return True


# --- Building: claim, finish, fail ------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    track_id: int
    result: str  # built, skipped, superseded, stale, retry, failed
    retry_in: float | None = None


def claim(track_id: int) -> uuid.UUID | None:
    """Take a due, pending row; None if another task holds it or nothing is due."""
    token = uuid.uuid4()
    now = timezone.now()
    taken = DistributionCopy.objects.filter(pk=track_id, status=Status.PENDING, next_attempt_at__lte=now).update(
        status=Status.BUILDING, claimed_at=now, claim_token=token, attempts=F("attempts") + 1
    )
    return token if taken else None


def build_one(track_id: int) -> Outcome:
    """Claim, build and install one copy. Idempotent: a row not pending is left alone."""
    token = claim(track_id)
    if token is None:
        return Outcome(track_id, "skipped")
    track = Track.objects.filter(pk=track_id).first()
    if track is None:
        return Outcome(track_id, "skipped")
    answer = answer_for(track_id)
    try:
        built = copies.build(track, signals_for(answer))
    except SoftTimeLimitExceeded:
        release(track_id, token)
        raise
    except Exception as exc:
        if not isinstance(exc, copies.CopyError | copies.provenance.SigningError):
            logger.exception("copy of track %s failed unexpectedly", track_id)
        return fail(track_id, token, f"{type(exc).__name__}: {exc}")
    return finish(track_id, token, built)


def finish(track_id: int, token: uuid.UUID, built: copies.BuiltCopy) -> Outcome:
    """Install the built copy if this task still holds the row and the answer is still current.

    The row is locked first: a consent change in flight updates the same row
    in its transaction, so either it committed before (and the answer read
    here is the new one) or it marks the row for rebuilding after.
    """
    with transaction.atomic():
        row = DistributionCopy.objects.select_for_update().filter(pk=track_id).first()
        if row is None or row.claim_token != token:
            delete_files_on_commit(built.name)
            return Outcome(track_id, "superseded")
        track = Track.objects.get(pk=track_id)
        current = answer_for(track_id)
        if built.embedded_granted is not current.granted or built.source_sha256 != track.sha256:
            # The answer changed while we built: the copy is already stale.
            delete_files_on_commit(built.name)
            DistributionCopy.objects.filter(pk=track_id).update(
                status=Status.PENDING, next_attempt_at=timezone.now(), claim_token=None, claimed_at=None
            )
            transaction.on_commit(lambda: enqueue_builds([track_id]))
            return Outcome(track_id, "stale")
        delete_files_on_commit(row.file if row.file != built.name else "")
        DistributionCopy.objects.filter(pk=track_id).update(
            status=Status.CURRENT,
            file=built.name,
            embedded_granted=built.embedded_granted,
            source_sha256=built.source_sha256,
            sha256=built.sha256,
            size_bytes=built.size_bytes,
            has_xmp=built.has_xmp,
            has_c2pa=built.has_c2pa,
            verified=built.verified,
            claim_token=None,
            claimed_at=None,
            last_error="",
            built_at=timezone.now(),
        )
    return Outcome(track_id, "built")


def retry_countdown(attempt: int) -> float:
    """Exponential backoff with full jitter, capped below the broker's visibility timeout."""
    ceiling = min(settings.PUBLIC_COPY_RETRY_MAX_SECONDS, settings.PUBLIC_COPY_RETRY_BASE_SECONDS * 2**attempt)
    return random.uniform(ceiling / 2, ceiling)


def fail(track_id: int, token: uuid.UUID, error: str) -> Outcome:
    """Back to pending with backoff, or failed for good after the last attempt."""
    with transaction.atomic():
        row = DistributionCopy.objects.select_for_update().filter(pk=track_id, claim_token=token).first()
        if row is None:
            return Outcome(track_id, "superseded")
        if row.attempts >= settings.PUBLIC_COPY_MAX_ATTEMPTS:
            DistributionCopy.objects.filter(pk=track_id).update(
                status=Status.FAILED, last_error=error[:2000], claim_token=None, claimed_at=None
            )
            logger.error("copy of track %s failed for good: %s", track_id, error)
            return Outcome(track_id, "failed")
        countdown = retry_countdown(row.attempts)
        DistributionCopy.objects.filter(pk=track_id).update(
            status=Status.PENDING,
            last_error=error[:2000],
            next_attempt_at=timezone.now() + timedelta(seconds=countdown),
            claim_token=None,
            claimed_at=None,
        )
    return Outcome(track_id, "retry", retry_in=countdown)


def release(track_id: int, token: uuid.UUID) -> None:
    """Give a claimed row back untouched (the task ran out of time before it)."""
    DistributionCopy.objects.filter(pk=track_id, claim_token=token, status=Status.BUILDING).update(
        status=Status.PENDING, claim_token=None, claimed_at=None, next_attempt_at=timezone.now()
    )


# --- The sweep --------------------------------------------------------------------------------


def stale_copy_ids(limit: int = 10_000) -> list[int]:
    """Current copies whose embedded answer or original no longer matches, whatever missed the hook."""
    granted_now = granted_consents().filter(track_id=OuterRef("track_id"))
    return list(
        DistributionCopy.objects.filter(status=Status.CURRENT)
        .annotate(granted_now=Exists(granted_now))
        .filter(~Q(embedded_granted=F("granted_now")) | ~Q(source_sha256=F("track__sha256")))
        .values_list("track_id", flat=True)[:limit]
    )


def sweep(now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    lease_expired = now - timedelta(seconds=settings.PUBLIC_COPY_CLAIM_LEASE_SECONDS)
    released = DistributionCopy.objects.filter(status=Status.BUILDING, claimed_at__lt=lease_expired).update(
        status=Status.PENDING, claim_token=None, claimed_at=None, next_attempt_at=now
    )
    with transaction.atomic():
        repaired = request_rebuild(track_ids=stale_copy_ids())
    due_before = now - timedelta(seconds=settings.PUBLIC_COPY_SWEEP_GRACE_SECONDS)
    due = list(
        DistributionCopy.objects.filter(status=Status.PENDING, next_attempt_at__lte=due_before)
        .order_by("next_attempt_at", "track_id")
        .values_list("track_id", flat=True)[:10_000]
    )
    enqueue_builds(due)
    return {"released": released, "repaired": repaired, "enqueued": len(due)}
