"""Fixtures for the consent API tests: registered clients, an authenticated HTTP client, consent changes."""

from __future__ import annotations

import itertools

import pytest
from django.db import transaction
from django.test import Client

_names = itertools.count(1)


@pytest.fixture(autouse=True)
def _signing_key_in_tmp(settings, tmp_path):
    settings.API_SIGNING_KEY_FILE = tmp_path / "keys" / "signing.jwk"


@pytest.fixture(autouse=True)
def _no_rate_limit_leases():
    """The root conftest clears the cache's counters between tests; the leases this process holds go too
    (SQLite gives a later test's client the same id)."""
    from downstream.api import _quota

    _quota.forget()
    yield
    _quota.forget()


class ApiCaller:
    """A Django test client that sends a bearer token and JSON."""

    def __init__(self, token: str | None):
        self.http = Client(headers={"Authorization": f"Bearer {token}"} if token else None)

    def get(self, path: str, **params):
        return self.http.get(f"/api/v1{path}", params)

    def post(self, path: str, body, **headers):
        return self.http.post(f"/api/v1{path}", body, content_type="application/json", **headers)


@pytest.fixture
def make_api_client(db):
    """Register a client through the service; returns (client row, token)."""
    from downstream import services

    def make(*, purposes=("recommendation",), manifests=False, usage=False, name=None, **fields):
        issued = services.create_client(
            name=name or f"System {next(_names)}",
            contact="team@example.test",
            purposes=list(purposes),
            can_write_manifests=manifests,
            can_write_usage=usage,
        )
        if fields:
            for key, value in fields.items():
                setattr(issued.client, key, value)
            issued.client.save()
        return issued.client, issued.token

    return make


@pytest.fixture
def caller():
    return ApiCaller


@pytest.fixture
def api(make_api_client):
    """A client scoped to every purpose, allowed to write manifests and usage."""
    from consent.models import Purpose

    every = Purpose.objects.values_list("slug", flat=True)
    _, token = make_api_client(purposes=every, manifests=True, usage=True)
    return ApiCaller(token)


@pytest.fixture
def set_consent(django_capture_on_commit_callbacks):
    """Change consent the only way it changes: through consent.services, as the artist."""
    from consent import services
    from tracks.models import Track

    def change(track_or_tracks, **states: bool):
        tracks = track_or_tracks if isinstance(track_or_tracks, list) else [track_or_tracks]
        owner = tracks[0].owner
        with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
            return services.change_consent(
                actor=owner,
                tracks=Track.objects.filter(pk__in=[t.pk for t in tracks]),
                changes=states,
                source="web",
                confirmed_purposes=list(states),
            )

    return change


@pytest.fixture
def delete_track():
    from tracks import services

    def delete(track):
        services.delete_track(track=track, actor=track.owner)

    return delete
