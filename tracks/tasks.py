"""Background processing of uploaded tracks."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.locale import user_locale
from tracks import artwork, metadata, selectors, services
from tracks.models import Track

logger = logging.getLogger(__name__)

TIMEOUT_REASON = gettext_noop("Processing took too long and was stopped. Delete the track and upload it again.")
MISSING_REASON = gettext_noop("The uploaded file could not be found in storage. Delete the track and upload it again.")
INTERNAL_REASON = gettext_noop(
    "Something went wrong on our side while processing this file. Delete the track and try again."
)


@shared_task(name="tracks.process_track", acks_late=True, ignore_result=True)
def process_track(track_id: int) -> str:
    """Read tags and artwork of an uploaded track and mark it ready, or failed with a reason.

    Safe to run any number of times: only a track still `processing` (and not
    being worked on by a live worker) is touched. It never raises for a bad
    file; the outcome is recorded on the track.
    """
    track = services.claim_for_processing(track_id=track_id)
    if track is None:
        return "skipped"
    # The reason a track failed is stored as the artist will read it: in their language.
    with user_locale(track.owner):
        try:
            return _process(track)
        except SoftTimeLimitExceeded:
            logger.warning("track %s: soft time limit reached", track_id)
            services.fail_processing(track_id=track_id, code="timeout", reason=gettext(TIMEOUT_REASON))
            return "failed"
        except metadata.MetadataError as exc:
            services.fail_processing(track_id=track_id, code=exc.code, reason=exc.reason)
            return "failed"
        except FileNotFoundError:
            services.fail_processing(track_id=track_id, code="missing_file", reason=gettext(MISSING_REASON))
            return "failed"
        except Exception:
            logger.exception("track %s: processing failed unexpectedly", track_id)
            services.fail_processing(track_id=track_id, code="internal_error", reason=gettext(INTERNAL_REASON))
            return "failed"


@shared_task(name="tracks.requeue_stalled_tracks", ignore_result=True)
def requeue_stalled_tracks() -> int:
    """Queue processing again for tracks stuck in "processing" (run by beat)."""
    now = timezone.now()
    ids = selectors.stalled_track_ids(
        uploaded_before=now - timedelta(seconds=settings.TRACKS_SWEEP_GRACE_SECONDS),
        claimed_before=services.claim_expired_before(),
    )
    for track_id in ids:
        process_track.delay(track_id)
    if ids:
        logger.info("requeued %d stalled track(s)", len(ids))
    return len(ids)


def _process(track: Track) -> str:
    with default_storage.open(track.audio_file.name or "", "rb") as stored:
        audio = metadata.read(
            stored,
            min_duration=settings.TRACKS_MIN_DURATION_SECONDS,
            max_duration=settings.TRACKS_MAX_DURATION_SECONDS,
        )
    renditions = None
    if audio.picture is not None:
        try:
            renditions = artwork.make_renditions(audio.picture.data)
        except artwork.ArtworkError as exc:
            # The recording is fine; only its embedded cover is not. The artist
            # can add artwork on the edit page.
            logger.info("track %s: embedded artwork skipped (%s): %s", track.pk, exc.code, exc.reason)
    done = services.complete_processing(track=track, audio=audio, renditions=renditions)
    return "ready" if done else "skipped"
