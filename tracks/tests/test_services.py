from __future__ import annotations

import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from tracks import selectors, services
from tracks.models import Track
from tracks.tests.conftest import as_upload, fixture_bytes, stored_files
from tracks.uploads import HashingUploadHandler
from tracks.validators import normalise_isrc, normalise_isrc_or_blank


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("song.mp3", "song.mp3"),
        ("../../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("/abs/path/take 1.flac", "take 1.flac"),
        ("..", "unnamed file"),
        ("", "unnamed file"),
        (None, "unnamed file"),
        ("bell\x07\x1b[31mred.wav", "bell[31mred.wav"),
        ("zero\u200bwidth\u202eevil.mp3", "zerowidthevil.mp3"),
        ("Cafe\u0301 del Mar.ogg", "Café del Mar.ogg"),
        ("東京の夜.m4a", "東京の夜.m4a"),
    ],
)
def test_clean_filename_keeps_only_a_displayable_base_name(raw, shown):
    assert services.clean_filename(raw) == shown


def test_clean_filename_shortens_very_long_names_keeping_the_extension():
    cleaned = services.clean_filename("x" * 400 + ".flac")
    assert len(cleaned) <= 200
    assert cleaned.endswith("….flac")


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("GB-AYE-25-00001", "GBAYE2500001"),
        ("gbaye2500001", "GBAYE2500001"),
        (" US-S1Z-99-00001 ", "USS1Z9900001"),
        ("ISRC: GB AYE 25 00001", "GBAYE2500001"),
        ("GB.AYE.25.00001", "GBAYE2500001"),
        ("GB\u2013AYE\u201325\u201300001", "GBAYE2500001"),  # en dashes, as word processors write hyphens
        ("".join(chr(ord(c) + 0xFEE0) for c in "GBAYE2500001"), "GBAYE2500001"),  # full-width, pasted from CJK text
    ],
)
def test_isrc_is_normalised(raw, normalised):
    assert normalise_isrc(raw) == normalised


@pytest.mark.parametrize("raw", ["GB-AYE-25", "GBAYE25000012", "12AYE2500001", "GB-AYE-2A-00001", "GB-A!E-25-00001"])
def test_invalid_isrc_is_refused_or_dropped_from_tags(raw):
    with pytest.raises(ValidationError):
        normalise_isrc(raw)
    assert normalise_isrc_or_blank(raw) == ""


class _FakeRequest:
    META: dict = {}


def _feed(handler: HashingUploadHandler, data: bytes, chunk: int = 1000):
    handler.new_file("files", "x.bin", "application/octet-stream", len(data))
    for start in range(0, len(data), chunk):
        handler.receive_data_chunk(data[start : start + chunk], start)
    return handler.file_complete(len(data))


def test_upload_handler_hashes_while_spooling_to_disk():
    data = fixture_bytes("good.flac")
    uploaded = _feed(HashingUploadHandler(_FakeRequest(), max_bytes=10**6), data)
    assert uploaded.sha256 == hashlib.sha256(data).hexdigest()
    assert uploaded.over_limit is False
    assert uploaded.size == len(data)
    assert uploaded.temporary_file_path()
    uploaded.seek(0)
    assert uploaded.read() == data


def test_upload_handler_stops_writing_past_the_limit_but_reports_the_real_size():
    data = fixture_bytes("good.flac")
    uploaded = _feed(HashingUploadHandler(_FakeRequest(), max_bytes=5000), data)
    assert uploaded.over_limit is True
    assert uploaded.sha256 is None
    assert uploaded.size == len(data)
    uploaded.seek(0)
    assert uploaded.read() == b""  # nothing kept on disk


@pytest.mark.django_db
def test_create_track_stores_under_a_generated_name_and_queues_processing(
    artist, media, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        track = services.create_track(owner=artist, upload=as_upload("good.opus", upload_name="../evil.opus"))
    assert len(callbacks) == 1
    assert track.status == Track.Status.PROCESSING
    assert track.original_filename == "evil.opus"
    assert track.title == "evil"
    assert track.sha256 == hashlib.sha256(fixture_bytes("good.opus")).hexdigest()
    assert stored_files(media) == [track.audio_file.name]


@pytest.mark.django_db
def test_create_track_hashes_uploads_that_did_not_come_through_the_handler(artist):
    upload = SimpleUploadedFile("a.wav", fixture_bytes("good.wav"))
    assert not hasattr(upload, "sha256")
    track = services.create_track(owner=artist, upload=upload)
    assert track.sha256 == hashlib.sha256(fixture_bytes("good.wav")).hexdigest()


@pytest.mark.django_db
def test_a_duplicate_that_wins_a_race_is_still_refused_and_its_file_removed(artist, monkeypatch, media):
    first = services.create_track(owner=artist, upload=as_upload("good.mp3"))
    real_find = selectors.find_duplicate
    calls = []

    def miss_the_first_check(**kwargs):
        calls.append(kwargs)
        return None if len(calls) == 1 else real_find(**kwargs)

    monkeypatch.setattr(selectors, "find_duplicate", miss_the_first_check)

    with pytest.raises(services.UploadRejected) as caught:
        services.create_track(owner=artist, upload=as_upload("good.mp3"))

    assert caught.value.code == "duplicate"
    assert caught.value.existing_track == first
    assert len(calls) == 2
    assert Track.objects.count() == 1
    assert stored_files(media) == [first.audio_file.name]


@pytest.mark.django_db
def test_rejections_carry_a_code_and_store_nothing(artist, media):
    with pytest.raises(services.UploadRejected) as caught:
        services.create_track(owner=artist, upload=as_upload("truncated.flac"))
    assert caught.value.code == "truncated"
    assert stored_files(media) == []
    assert not Track.objects.exists()
