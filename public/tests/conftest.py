"""Fixtures for the public/ tests: a C2PA test certificate and public tracks made from real audio files."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

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


def set_third_party(artist, track, granted: bool) -> None:
    """Change the answer as the artist does, through consent.services (confirmed, as the page asks)."""
    from consent import services
    from consent.models import AuditEvent, Purpose
    from tracks.models import Track

    services.change_consent(
        actor=artist,
        tracks=Track.objects.filter(pk=track.pk),
        changes={Purpose.THIRD_PARTY_AI_TRAINING: granted},
        source=AuditEvent.Source.WEB,
        confirmed_purposes=[Purpose.THIRD_PARTY_AI_TRAINING],
    )


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
    from tracks import services as track_services
    from tracks.models import Track

    def make(name: str = "good.mp3", *, owner=None, granted: bool = False, public: bool = True) -> Track:
        owner = owner or artist
        upload = SimpleUploadedFile(name, (FIXTURES / name).read_bytes())
        with django_capture_on_commit_callbacks(execute=True):
            track = track_services.create_track(owner=owner, upload=upload)
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
