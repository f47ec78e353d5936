"""Fixtures for the public/ tests: a C2PA test certificate and public tracks made from real audio files."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from public.tests.factories import copy_granted_public_track, set_third_party

FIXTURES = Path(__file__).resolve().parents[2] / "tracks" / "tests" / "fixtures"


@pytest.fixture(scope="session")
def c2pa_credentials(tmp_path_factory):
    """A local test CA and signing certificate, made once per test run (as the quick start does)."""
    from public import devcert

    return devcert.generate(tmp_path_factory.mktemp("c2pa"))


@pytest.fixture(autouse=True)
def _c2pa_settings(settings, c2pa_credentials):
    settings.PUBLIC_C2PA_CERT_CHAIN = str(c2pa_credentials.chain_path)
    settings.PUBLIC_C2PA_PRIVATE_KEY = str(c2pa_credentials.key_path)
    settings.SITE_URL = "http://testserver"


@pytest.fixture
def change_answer(django_capture_on_commit_callbacks):
    """Grant or withdraw, running the on-commit work (the rebuild task, eagerly) as a commit would."""

    def change(track, granted: bool, *, run_on_commit: bool = True):
        with django_capture_on_commit_callbacks(execute=run_on_commit):
            set_third_party(track.owner, track, granted)

    return change


@pytest.fixture
def make_public_track(artist, django_capture_on_commit_callbacks):
    """Upload a fixture file through the real service, process it, optionally grant, then make it public."""
    from public import services
    from tests.utils import wait_until
    from tracks import services as track_services
    from tracks.models import Track

    def make(name: str = "good.mp3", *, owner=None, granted: bool = False, public: bool = True) -> Track:
        owner = owner or artist
        upload = SimpleUploadedFile(name, (FIXTURES / name).read_bytes())
        with django_capture_on_commit_callbacks(execute=True):
            track = track_services.create_track(owner=owner, upload=upload)
        # Processed in-process, or by the test's real worker.
        wait_until(lambda: Track.objects.get(pk=track.pk).is_settled, timeout=60, message="the track to be processed")
        track.refresh_from_db()
        assert track.status == Track.Status.READY, track.failure_reason
        if granted:
            with django_capture_on_commit_callbacks(execute=True):
                set_third_party(owner, track, True)
        if public:
            with django_capture_on_commit_callbacks(execute=True):
                services.set_track_public(actor=owner, track=track, public=True)
        return track

    return make


@pytest.fixture
def many_granted_public_tracks(artist, make_track_row):
    """`count` public tracks whose artist granted AI training by others, set-based.

    One real track is made public and granted through the services; the rest
    are copies of its rows made by INSERT ... SELECT (a handful of statements
    whatever the count): writing 100,000 grants through consent.services, with
    their audit events, is what the consent and label tests and benchmarks
    measure; here only the resulting state matters.
    """
    from public.services import set_track_public
    from tracks.models import Track

    def make(count: int) -> Track:
        first = make_track_row(owner=artist)
        set_third_party(artist, first, True)
        set_track_public(actor=artist, track=first, public=True)
        copy_granted_public_track(first, count - 1)
        return first

    return make


@pytest.fixture
def make_track_row(make_track):
    """A ready MP3 Track row without a stored file (for tests of the site-wide files only)."""

    def make(*, owner, **fields):
        return make_track(owner=owner, **{"container": "MPEG audio", **fields})

    return make
