"""Fixtures for the tracks tests: the media files in fixtures/ and helpers around them."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

FIXTURES = Path(__file__).parent / "fixtures"

GOOD_AUDIO = ["good.mp3", "good.flac", "good.wav", "good.aiff", "good.ogg", "good.opus", "good.m4a"]


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def as_upload(name: str, *, upload_name: str | None = None, content_type: str = "audio/mpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(upload_name or name, fixture_bytes(name), content_type=content_type)


def stored_files(media: Path) -> list[str]:
    """Every file under the test's media folder, as paths relative to it."""
    return sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file())


@pytest.fixture
def upload_track(artist_client, django_capture_on_commit_callbacks):
    """Upload fixture files through the real view, running on-commit work (the task) as it would."""
    from django.urls import reverse

    def upload(*names: str, client=None, json: bool = False, **extra):
        files = [as_upload(n) if isinstance(n, str) else n for n in names]
        headers = {"HTTP_ACCEPT": "application/json"} if json else {}
        with django_capture_on_commit_callbacks(execute=True):
            return (client or artist_client).post(reverse("tracks:upload"), {"files": files}, **headers, **extra)

    return upload


@pytest.fixture
def ready_track(artist, upload_track):
    """A processed MP3 with tags and artwork, owned by `artist`."""
    from tracks.models import Track

    response = upload_track("good.mp3")
    assert response.status_code == 200, response.content
    track = Track.objects.get(owner=artist)
    assert track.status == Track.Status.READY, track.failure_reason
    return track


@pytest.fixture
def track_rows_fail_to_save(monkeypatch):
    """Every Track.objects.create raises a DatabaseError, as when the disk is full."""
    from django.db import DatabaseError

    from tracks.models import Track

    def broken_create(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(Track.objects, "create", broken_create)
