from __future__ import annotations

import hashlib
import itertools

import pytest

_numbers = itertools.count(1)


@pytest.fixture
def make_track(db):
    """Create Track rows directly: consent tests do not depend on the upload pipeline."""
    from tracks.models import Track

    def make(*, owner, title: str | None = None, **fields) -> Track:
        n = next(_numbers)
        fields.setdefault("status", Track.Status.READY)
        return Track.objects.create(
            owner=owner,
            title=title if title is not None else f"Track {n}",
            audio_file=f"audio/test-{n}.flac",
            sha256=hashlib.sha256(f"track-{n}".encode()).hexdigest(),
            **fields,
        )

    return make


@pytest.fixture
def make_tracks(db):
    """Many tracks for one owner in one INSERT."""
    from tracks.models import Track

    def make(count: int, *, owner) -> list[Track]:
        start = next(_numbers)
        for _ in range(count):
            next(_numbers)
        return Track.objects.bulk_create(
            [
                Track(
                    owner=owner,
                    title=f"Track {start + i}",
                    audio_file=f"audio/bulk-{start + i}.flac",
                    sha256=hashlib.sha256(f"bulk-{start + i}".encode()).hexdigest(),
                    status=Track.Status.READY,
                )
                for i in range(count)
            ]
        )

    return make


@pytest.fixture
def purposes(db):
    from consent.models import Purpose

    return {p.slug: p for p in Purpose.objects.all()}
