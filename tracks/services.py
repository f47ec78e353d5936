"""Every write to tracks and their stored files goes through here.

Files and rows must never disagree: a stored file without a row is a leak, a
row without its file is a broken page. So files are written before the row
and deleted again if the row's transaction fails, and files of a deleted row
go only once that deletion has committed.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import posixpath
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Field, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import User
from platformkit.queueing import enqueue, task_named
from platformkit.request_meta import RequestMeta
from tracks import hooks, metadata, selectors
from tracks.artwork import Rendition, human_size
from tracks.models import Track
from tracks.validators import plausible_year

logger = logging.getLogger(__name__)

_HASH_CHUNK = 1024 * 1024


class UploadRejected(Exception):
    """An upload the portal will not keep, with a reason for the artist."""

    def __init__(self, reason: str, *, code: str, existing_track: Track | None = None):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.existing_track = existing_track


@dataclass(frozen=True)
class ArtworkFiles:
    display: str
    thumbnail: str


# --- names ---------------------------------------------------------------------------------


def clean_filename(name: str | None) -> str:
    """The user's file name, fit for display only: no folders, no control characters."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/")
    name = posixpath.basename(name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip().strip(".").strip()
    if not name:
        return "unnamed file"
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = f"{stem[: 190 - len(ext)]}…{dot}{ext}" if dot and len(ext) <= 10 else name[:199] + "…"
    return name


def _title_from_filename(name: str) -> str:
    stem, dot, _ext = name.rpartition(".")
    return (stem if dot and stem else name).replace("_", " ").strip()[:300]


def _audio_storage_name(fmt: metadata.AudioFormat) -> str:
    return f"audio/{uuid.uuid4().hex}.{fmt.extension}"


def _delete_stored(*names: str) -> None:
    for name in names:
        if not name:
            continue
        try:
            default_storage.delete(name)
        except Exception:
            # A file we failed to delete is garbage, not a reason to fail the
            # user's request; the log makes it findable.
            logger.exception("could not delete stored file %s", name)


def delete_files_on_commit(*names: str | None) -> None:
    stored = [n for n in names if n]
    if stored:
        transaction.on_commit(partial(_delete_stored, *stored))


def sha256_of(upload: UploadedFile[bytes]) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks(_HASH_CHUNK):
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


# --- upload --------------------------------------------------------------------------------


def validate_upload(*, upload: UploadedFile[bytes]) -> metadata.AudioInfo:
    """Judge an uploaded file by its content; raise UploadRejected with the reason."""
    size = upload.size or 0
    if getattr(upload, "over_limit", False) or size > settings.TRACKS_MAX_UPLOAD_BYTES:
        limit = human_size(settings.TRACKS_MAX_UPLOAD_BYTES)
        raise UploadRejected(
            gettext("The file is %(size)s; the largest file accepted is %(limit)s.")
            % {"size": human_size(size), "limit": limit},
            code="too_large",
        )
    upload.seek(0)
    try:
        info = metadata.probe(
            metadata.CountingReader(upload),
            min_duration=settings.TRACKS_MIN_DURATION_SECONDS,
            max_duration=settings.TRACKS_MAX_DURATION_SECONDS,
        )
    except metadata.MetadataError as exc:
        raise UploadRejected(exc.reason, code=exc.code) from exc
    finally:
        upload.seek(0)
    return info


@dataclass
class UploadOutcome:
    """What became of one file of an upload: its track, or why it was not kept."""

    filename: str
    track: Track | None = None
    rejection: UploadRejected | None = None
    # Trouble on our side (storage, database): nothing of the file is kept.
    error: Exception | None = None


@dataclass(frozen=True)
class _StoredUpload:
    index: int
    filename: str
    stored_name: str
    info: metadata.AudioInfo
    sha256: str


def create_track(
    *,
    owner: User,
    upload: UploadedFile[bytes],
    consent_choices: Mapping[str, bool] | None = None,
    request_meta: RequestMeta | None = None,
) -> Track:
    """Validate, store and record one uploaded recording, then queue its processing.

    Raises UploadRejected (nothing stored, no row) for anything the portal will
    not keep, including a file this artist has already uploaded.
    """
    [outcome] = create_tracks(owner=owner, uploads=[upload], consent_choices=consent_choices, request_meta=request_meta)
    if outcome.rejection is not None:
        raise outcome.rejection
    if outcome.error is not None:
        raise outcome.error
    assert outcome.track is not None
    return outcome.track


def create_tracks(
    *,
    owner: User,
    uploads: Sequence[UploadedFile[bytes]],
    consent_choices: Mapping[str, bool] | None = None,
    request_meta: RequestMeta | None = None,
) -> list[UploadOutcome]:
    """One upload action: each file judged and stored on its own, the kept ones recorded together.

    A refused file, or one whose storage fails, leaves nothing behind and does
    not stop the others. The tracks of the files that passed are created in one
    transaction with their audit entries and one consent save (the artist's
    upload defaults and the form's choices): a track never exists without the
    consent its artist chose, and one upload sends one receipt listing every file.
    """
    outcomes = [UploadOutcome(filename=clean_filename(upload.name)) for upload in uploads]
    stored: list[_StoredUpload] = []
    for index, upload in enumerate(uploads):
        try:
            stored.append(_store_upload(owner=owner, upload=upload, index=index, filename=outcomes[index].filename))
        except UploadRejected as exc:
            outcomes[index].rejection = exc
        except Exception as exc:
            logger.exception("upload of %r could not be stored", outcomes[index].filename)
            outcomes[index].error = exc
    if not stored:
        return outcomes
    try:
        with transaction.atomic(durable=True):
            created = _record_tracks(owner=owner, stored=stored, outcomes=outcomes, request_meta=request_meta)
            if created:
                hooks.tracks_uploaded(
                    hooks.TracksUploaded(
                        owner=owner, tracks=created, consent_choices=consent_choices, request_meta=request_meta
                    )
                )
            for track in created:
                # robust: a broker that is down must not turn a committed upload
                # into an error (the sweep queues the track later).
                transaction.on_commit(partial(_enqueue_processing, track.pk), robust=True)
    except Exception as exc:
        kept = [o.track.pk for o in outcomes if o.track is not None]
        if kept and Track.objects.filter(pk=kept[0]).exists():
            # The rows were committed and a hook that runs after commit failed:
            # the upload stands.
            logger.exception("an on-commit hook of an upload failed")
            return outcomes
        _delete_stored(*(item.stored_name for item in stored))
        logger.exception("upload of %d file(s) could not be recorded", len(stored))
        for item in stored:
            outcome = outcomes[item.index]
            outcome.track = None
            if outcome.rejection is None:
                outcome.error = exc
    except BaseException:
        _delete_stored(*(item.stored_name for item in stored))
        raise
    return outcomes


def _store_upload(*, owner: User, upload: UploadedFile[bytes], index: int, filename: str) -> _StoredUpload:
    info = validate_upload(upload=upload)
    digest = getattr(upload, "sha256", None) or sha256_of(upload)
    existing = selectors.find_duplicate(owner=owner, sha256=digest)
    if existing is not None:
        raise _duplicate(existing)
    stored_name = default_storage.save(_audio_storage_name(info.format), upload)
    return _StoredUpload(index=index, filename=filename, stored_name=stored_name, info=info, sha256=digest)


def _record_tracks(
    *, owner: User, stored: list[_StoredUpload], outcomes: list[UploadOutcome], request_meta: RequestMeta | None
) -> list[Track]:
    """The rows of the stored files, each with its audit entry; a duplicate that raced is refused alone."""
    created = []
    for item in stored:
        try:
            with transaction.atomic():  # a savepoint: a refused file leaves the others' rows usable
                track = Track.objects.create(
                    owner=owner,
                    title=_title_from_filename(item.filename),
                    audio_file=item.stored_name,
                    original_filename=item.filename,
                    container=item.info.format.container,
                    codec=item.info.codec,
                    duration_seconds=item.info.duration_seconds,
                    bitrate=item.info.bitrate,
                    sample_rate=item.info.sample_rate,
                    channels=item.info.channels,
                    size_bytes=item.info.size_bytes,
                    sha256=item.sha256,
                    status=Track.Status.PROCESSING,
                )
        except IntegrityError:
            # The same file twice in this upload, or two uploads raced; the other one won.
            existing = selectors.find_duplicate(owner=owner, sha256=item.sha256)
            if existing is None:
                raise
            _delete_stored(item.stored_name)
            outcomes[item.index].rejection = _duplicate(existing)
            continue
        outcomes[item.index].track = track
        created.append(track)
    return created


def _duplicate(existing: Track) -> UploadRejected:
    return UploadRejected(
        gettext("You already uploaded this exact file as “%(title)s”.") % {"title": existing.display_title},
        code="duplicate",
        existing_track=existing,
    )


def _enqueue_processing(track_id: int) -> None:
    # A broker that is down is logged once; the stalled-tracks sweep queues it later.
    enqueue(task_named("tracks.process_track"), track_id)


# --- processing ----------------------------------------------------------------------------


def claim_expired_before() -> datetime.datetime:
    return timezone.now() - timedelta(seconds=settings.TRACKS_CLAIM_TIMEOUT_SECONDS)


def claim_for_processing(*, track_id: int) -> Track | None:
    """Mark a processing track as being worked on; None if there is nothing to do.

    A conditional update, so two deliveries of the same task cannot both
    proceed; a claim older than the task's hard time limit belonged to a worker
    that died, and may be taken over.
    """
    claimed = (
        Track.objects.filter(pk=track_id, status=Track.Status.PROCESSING)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=claim_expired_before()))
        .update(claimed_at=timezone.now())
    )
    if not claimed:
        return None
    return Track.objects.get(pk=track_id)


def store_artwork(*, renditions: dict[str, Rendition], processing: Track | None = None) -> ArtworkFiles:
    """Store both renditions under new names; or, for the track being processed, under names fixed by the
    track and the picture, so that a worker killed after storing them and before recording them leaves
    nothing behind: the retry finds the same files and records them instead of storing a second pair."""
    display = renditions["display"]
    thumbnail = renditions["thumbnail"]
    if processing is None:
        stem, save = uuid.uuid4().hex, _save_new
    else:
        picture = hashlib.sha256(display.content).hexdigest()[:16]
        stem, save = f"{processing.uuid.hex}{picture}", _save_once
    display_name = save(f"artwork/{stem}.{display.extension}", display.content)
    try:
        thumbnail_name = save(f"artwork/{stem}-thumb.{thumbnail.extension}", thumbnail.content)
    except BaseException:
        _delete_stored(display_name)
        raise
    return ArtworkFiles(display=display_name, thumbnail=thumbnail_name)


def _save_new(name: str, content: bytes) -> str:
    return default_storage.save(name, ContentFile(content))


def _save_once(name: str, content: bytes) -> str:
    # The name is fixed by the content, so a file already there is this one.
    if default_storage.exists(name):
        return name
    return default_storage.save(name, ContentFile(content))


def _concrete_field(name: str) -> Field[Any, Any]:
    field = Track._meta.get_field(name)
    if not isinstance(field, Field):  # a relation seen from the other side has no column to fill
        raise TypeError(f"Track.{name} is not a column")
    return field


def _fill_if_blank(field: str, value: object, *, blank: str = "") -> F | Case:
    if value in (None, ""):
        return F(field)
    return Case(When(**{field: blank}, then=Value(value)), default=F(field), output_field=_concrete_field(field))


def complete_processing(
    *, track: Track, audio: metadata.AudioMetadata, renditions: dict[str, Rendition] | None
) -> bool:
    """Record what processing found and mark the track ready.

    Tags fill only fields the artist left empty, checked in the UPDATE itself
    so that an edit made while the worker ran is never overwritten.
    Returns False if the track stopped being ours meanwhile (deleted, or
    claimed by someone else).
    """
    artwork_files = store_artwork(renditions=renditions, processing=track) if renditions else None
    tags = audio.tags
    info = audio.info
    updates = {
        "title": _fill_if_blank("title", tags.title),
        "artist_name": _fill_if_blank("artist_name", tags.artist),
        "album": _fill_if_blank("album", tags.album),
        "isrc": _fill_if_blank("isrc", tags.isrc),
        "container": info.format.container,
        "codec": info.codec,
        "duration_seconds": info.duration_seconds,
        "bitrate": info.bitrate,
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "status": Track.Status.READY,
        "failure_code": "",
        "failure_reason": "",
        "claimed_at": None,
        "processed_at": timezone.now(),
    }
    year = plausible_year(tags.year)
    if year is not None:
        updates["year"] = Case(
            When(year__isnull=True, then=Value(year)), default=F("year"), output_field=Track._meta.get_field("year")
        )
    if tags.title and track.title == _title_from_filename(track.original_filename):
        # The title the upload guessed from the file name gives way to a real tag.
        updates["title"] = Case(
            When(title=track.title, then=Value(tags.title)),
            default=F("title"),
            output_field=Track._meta.get_field("title"),
        )
    if artwork_files:
        updates["artwork"] = _fill_if_blank("artwork", artwork_files.display)
        updates["artwork_thumbnail"] = _fill_if_blank("artwork_thumbnail", artwork_files.thumbnail)

    with transaction.atomic():
        done = Track.objects.filter(pk=track.pk, status=Track.Status.PROCESSING, claimed_at=track.claimed_at).update(
            **updates
        )
        kept_artwork = (
            done and artwork_files and Track.objects.filter(pk=track.pk, artwork=artwork_files.display).exists()
        )
        if artwork_files and not kept_artwork:
            delete_files_on_commit(artwork_files.display, artwork_files.thumbnail)
    return bool(done)


def fail_processing(*, track_id: int, code: str, reason: str) -> bool:
    return bool(
        Track.objects.filter(pk=track_id, status=Track.Status.PROCESSING).update(
            status=Track.Status.FAILED,
            failure_code=code[:64],
            failure_reason=reason,
            claimed_at=None,
            processed_at=timezone.now(),
        )
    )


# --- editing and deleting ------------------------------------------------------------------


def update_track(
    *,
    track: Track,
    title: str,
    artist_name: str,
    album: str,
    year: int | None,
    isrc: str,
    new_artwork: dict[str, Rendition] | None = None,
    remove_artwork: bool = False,
) -> Track:
    """Save the artist's edits; `isrc` must already be normalised (see validators)."""
    artwork_files = store_artwork(renditions=new_artwork) if new_artwork else None
    old_files = (track.artwork.name, track.artwork_thumbnail.name)
    try:
        with transaction.atomic():
            track.title = title
            track.artist_name = artist_name
            track.album = album
            track.year = year
            track.isrc = isrc
            if artwork_files:
                track.artwork = artwork_files.display
                track.artwork_thumbnail = artwork_files.thumbnail
            elif remove_artwork:
                track.artwork = ""
                track.artwork_thumbnail = ""
            track.save()
            if artwork_files or remove_artwork:
                delete_files_on_commit(*old_files)
    except BaseException:
        if artwork_files:
            _delete_stored(artwork_files.display, artwork_files.thumbnail)
        raise
    return track


def delete_track(
    *, track: Track, actor: User | None = None, request_meta: RequestMeta | None = None, from_admin: bool = False
) -> None:
    """Delete a track; its stored files go once the deletion commits (see signals)."""
    with transaction.atomic():
        # Consent withdraws and logs the track's grants first (tracks.hooks), in this transaction.
        hooks.track_deleting(
            hooks.TrackDeleting(track=track, actor=actor, request_meta=request_meta, from_admin=from_admin)
        )
        track.delete()
