from __future__ import annotations

from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.storage import FileSystemStorage, default_storage
from django.utils import timezone

from tracks import artwork, services, tasks
from tracks.models import Track
from tracks.tests.conftest import as_upload, fixture_bytes, stored_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def processing_track(artist):
    """A stored upload whose processing has not run yet (on-commit work never runs in these tests)."""

    def make(name: str = "good.flac") -> Track:
        track = services.create_track(owner=artist, upload=as_upload(name))
        assert track.status == Track.Status.PROCESSING
        return track

    return make


def test_processing_fills_tags_artwork_and_marks_ready(processing_track, media):
    track = processing_track("good.m4a")

    assert tasks.process_track(track.pk) == "ready"

    track.refresh_from_db()
    assert track.status == Track.Status.READY
    assert (track.title, track.artist_name, track.album, track.year) == (
        "Fixture Tone",
        "Ada Artist",
        "Test Sessions",
        2024,
    )
    assert track.codec == "AAC" and track.container == "MP4"
    assert track.processed_at is not None and track.claimed_at is None
    assert sorted(stored_files(media)) == sorted(
        [track.audio_file.name, track.artwork.name, track.artwork_thumbnail.name]
    )


def test_running_processing_twice_is_harmless(processing_track, media):
    track = processing_track("good.mp3")
    assert tasks.process_track.delay(track.pk).get() == "ready"
    track.refresh_from_db()
    files_after_first = stored_files(media)
    first = (track.status, track.title, track.artwork.name, track.processed_at)

    assert tasks.process_track.delay(track.pk).get() == "skipped"

    track.refresh_from_db()
    assert (track.status, track.title, track.artwork.name, track.processed_at) == first
    assert stored_files(media) == files_after_first


def test_a_track_claimed_by_a_live_worker_is_left_alone(processing_track):
    track = processing_track()
    Track.objects.filter(pk=track.pk).update(claimed_at=timezone.now())

    assert tasks.process_track(track.pk) == "skipped"
    track.refresh_from_db()
    assert track.status == Track.Status.PROCESSING


def test_a_claim_left_by_a_dead_worker_is_taken_over(processing_track, settings):
    track = processing_track()
    long_ago = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 120)
    Track.objects.filter(pk=track.pk).update(claimed_at=long_ago)

    assert tasks.process_track(track.pk) == "ready"


def test_a_deleted_track_is_skipped(processing_track):
    track = processing_track()
    Track.objects.filter(pk=track.pk).delete()
    assert tasks.process_track(track.pk) == "skipped"


def test_a_file_damaged_in_storage_fails_with_its_reason(processing_track):
    track = processing_track("good.flac")
    with default_storage.open(track.audio_file.name, "wb") as stored:
        stored.write(fixture_bytes("truncated.flac"))

    assert tasks.process_track(track.pk) == "failed"

    track.refresh_from_db()
    assert track.status == Track.Status.FAILED
    assert track.failure_code == "truncated"
    assert track.failure_reason == "The FLAC file was cut short: its last audio frame is missing or incomplete."


def test_a_file_missing_from_storage_fails_with_its_reason(processing_track):
    track = processing_track()
    default_storage.delete(track.audio_file.name)

    assert tasks.process_track(track.pk) == "failed"

    track.refresh_from_db()
    assert track.failure_code == "missing_file"
    assert "could not be found in storage" in track.failure_reason


def test_an_unexpected_error_is_recorded_not_raised(processing_track, monkeypatch):
    track = processing_track()

    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(services, "complete_processing", broken)

    assert tasks.process_track(track.pk) == "failed"
    track.refresh_from_db()
    assert (track.status, track.failure_code) == (Track.Status.FAILED, "internal_error")
    assert track.failure_reason == tasks.INTERNAL_REASON


def test_the_soft_time_limit_is_recorded_as_a_timeout(processing_track, monkeypatch):
    track = processing_track()

    def too_slow(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(tasks.metadata, "read", too_slow)

    assert tasks.process_track(track.pk) == "failed"
    track.refresh_from_db()
    assert (track.status, track.failure_code, track.failure_reason) == (
        Track.Status.FAILED,
        "timeout",
        tasks.TIMEOUT_REASON,
    )


def test_a_decompression_bomb_embedded_as_cover_leaves_a_ready_track_without_artwork(processing_track, media, caplog):
    track = processing_track("bomb-cover.mp3")  # a 30,000 x 30,000 PNG in its APIC frame

    assert tasks.process_track(track.pk) == "ready"

    track.refresh_from_db()
    assert (track.status, track.title) == (Track.Status.READY, "Bomb Cover")
    assert not track.artwork and not track.artwork_thumbnail
    assert stored_files(media) == [track.audio_file.name]
    assert "embedded artwork skipped (artwork_too_many_pixels)" in caplog.text


def test_edits_made_while_processing_win_over_tags(processing_track):
    track = processing_track("good.flac")
    Track.objects.filter(pk=track.pk).update(title="My Own Title", album="Live at Home")

    tasks.process_track(track.pk)

    track.refresh_from_db()
    assert (track.title, track.album, track.artist_name) == ("My Own Title", "Live at Home", "Ada Artist")


def test_artwork_uploaded_while_processing_is_kept_and_the_embedded_one_discarded(processing_track, media):
    track = processing_track("good.flac")
    mine = services.store_artwork(renditions=artwork.make_renditions(fixture_bytes("cover.webp")))
    Track.objects.filter(pk=track.pk).update(artwork=mine.display, artwork_thumbnail=mine.thumbnail)

    tasks.process_track(track.pk)

    track.refresh_from_db()
    assert (track.artwork.name, track.artwork_thumbnail.name) == (mine.display, mine.thumbnail)


def test_a_retried_processing_finds_the_artwork_a_killed_worker_stored_instead_of_storing_another(
    processing_track, media
):
    from django.core.files.storage import default_storage

    track = processing_track("good.flac")
    renditions = artwork.make_renditions(fixture_bytes("cover.webp"))
    # The first worker stored the pictures and died before recording them; the retry stores them again.
    first = services.store_artwork(renditions=renditions, processing=track)
    again = services.store_artwork(renditions=renditions, processing=track)

    assert (again.display, again.thumbnail) == (first.display, first.thumbnail)
    _, stored = default_storage.listdir("artwork")
    assert sorted(stored) == sorted(name.rsplit("/", 1)[-1] for name in (first.display, first.thumbnail))
    # An artist's own upload still gets fresh names.
    mine = services.store_artwork(renditions=renditions)
    assert mine.display not in (first.display, first.thumbnail)


def test_processing_without_a_title_tag_keeps_the_file_name_title(processing_track):
    track = processing_track("good.wav")

    tasks.process_track(track.pk)

    track.refresh_from_db()
    assert track.title == "good"
    assert track.status == Track.Status.READY


def test_a_picture_that_fails_to_store_does_not_leave_half_the_renditions(processing_track, monkeypatch, media):
    track = processing_track("good.mp3")
    real_save = FileSystemStorage.save
    calls = []

    def save_then_fail(storage, name, content, *args, **kwargs):
        calls.append(name)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_save(storage, name, content, *args, **kwargs)

    monkeypatch.setattr(FileSystemStorage, "save", save_then_fail)

    assert tasks.process_track(track.pk) == "failed"
    assert stored_files(media) == [track.audio_file.name]


def test_stored_names_are_generated(processing_track, media):
    track = processing_track("good.ogg")
    tasks.process_track(track.pk)
    track.refresh_from_db()
    for name in (track.audio_file.name, track.artwork.name, track.artwork_thumbnail.name):
        folder, _, filename = name.partition("/")
        assert folder in {"audio", "artwork"}
        assert filename.split(".")[0].removesuffix("-thumb").isalnum()


def test_the_sweep_requeues_tracks_whose_task_never_ran(processing_track, settings):
    settings.TRACKS_SWEEP_GRACE_SECONDS = 60
    stuck = processing_track("good.flac")
    fresh = processing_track("good.mp3")
    held = processing_track("good.ogg")
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Track.objects.filter(pk__in=[stuck.pk, held.pk]).update(created_at=an_hour_ago)
    Track.objects.filter(pk=held.pk).update(claimed_at=timezone.now())

    assert tasks.requeue_stalled_tracks() == 1  # eager: the requeued task runs at once

    statuses = dict(Track.objects.values_list("pk", "status"))
    assert statuses == {stuck.pk: "ready", fresh.pk: "processing", held.pk: "processing"}


def test_a_broker_outage_does_not_fail_a_committed_upload(
    artist, monkeypatch, media, django_capture_on_commit_callbacks
):
    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker unreachable")

    monkeypatch.setattr(tasks.process_track, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        track = services.create_track(owner=artist, upload=as_upload("good.flac"))

    track.refresh_from_db()
    assert track.status == Track.Status.PROCESSING  # waits for the sweep
    assert stored_files(media) == [track.audio_file.name]
