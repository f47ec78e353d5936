from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

import pytest

from platformkit.request_meta import RequestMeta

ARTIST_REQUEST = {"ip": "203.0.113.7", "user_agent": "ArtistBrowser/1.0", "request_id": "req-artist"}
MANAGER_REQUEST = {"ip": "198.51.100.9", "user_agent": "ManagerBrowser/2.0", "request_id": "req-manager"}


@pytest.fixture
def reauthenticated_client(client, password):
    """Factory: the test client signed in as `user`, who has just re-entered the password."""
    from django.urls import reverse

    def sign_in(user):
        client.force_login(user)
        response = client.post(reverse("account_reauthenticate"), {"password": password})
        assert response.status_code == 302, response.content
        return client

    return sign_in


@dataclass
class History:
    artist: object
    manager: object
    label: object
    tracks: list
    files: list[str]


@pytest.fixture
def artist_with_history(artist, make_user):
    """An artist with what deletion must take care of: stored files, grants, a default, a label delegation.

    Every write goes through the services, with request data, so the audit
    log holds personal data of the artist and of the label's manager.
    """
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from consent import services as consent
    from labels import services as labels
    from tracks.models import Track

    artist_meta = RequestMeta(**ARTIST_REQUEST)
    tracks, files = [], []
    for n in range(2):
        audio = default_storage.save(f"audio/{uuid.uuid4().hex}.flac", ContentFile(b"fLaC audio"))
        art = default_storage.save(f"artwork/{uuid.uuid4().hex}.jpg", ContentFile(b"jpeg"))
        track = Track.objects.create(
            owner=artist,
            title=f"Song for Ada {n}",
            audio_file=audio,
            artwork=art,
            sha256=hashlib.sha256(audio.encode()).hexdigest(),
            status=Track.Status.READY,
        )
        consent.record_track_uploaded(actor=artist, track=track, request_meta=artist_meta)
        tracks.append(track)
        files += [audio, art]
    consent.change_consent(
        actor=artist,
        tracks=Track.objects.filter(owner=artist),
        changes={"recommendation": True, "generative_training": True},
        source="web",
        request_meta=artist_meta,
        confirmed_purposes=["generative_training"],
    )
    consent.set_upload_defaults(
        actor=artist, artist=artist, choices={"fraud_detection": True}, request_meta=artist_meta
    )
    manager = make_user(display_name="Mia Manager")
    label = labels.create_label(owner=manager, name="Northern Records")
    delegation = labels.request_to_join(
        artist=artist, label=label, scopes={"recommendation": "grant_withdraw"}, request_meta=artist_meta
    )
    labels.approve_request(actor=manager, delegation=delegation, request_meta=RequestMeta(**MANAGER_REQUEST))
    # The manager withdraws one grant for the artist: their request data lands in the artist's chain.
    consent.change_consent(
        actor=manager,
        tracks=Track.objects.filter(pk=tracks[0].pk),
        changes={"recommendation": False},
        source="web",
        request_meta=RequestMeta(**MANAGER_REQUEST),
    )
    return History(artist=artist, manager=manager, label=label, tracks=tracks, files=files)
