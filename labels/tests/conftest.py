from __future__ import annotations

import pytest


@pytest.fixture
def label_setup(make_user):
    """A label with one owner-manager; `delegate` puts an artist on its roster with given scopes."""
    from labels import services

    manager = make_user(display_name="Mia Manager")
    label = services.create_label(owner=manager, name="Northern Records")

    def delegate(artist, scopes: dict[str, str], *, to=None):
        target = to or label
        inviter = target.memberships.first().user
        invitation = services.invite_artist(actor=inviter, label=target, email=artist.email)
        confirmed = {slug for slug, scope in scopes.items() if scope == "grant_withdraw"}
        return services.accept_artist_invitation(
            artist=artist, invitation=invitation, scopes=scopes, confirmed=confirmed
        )

    return label, manager, delegate


@pytest.fixture
def set_state(db):
    """Put consent in a known state as the artist would (the artist may always do this)."""
    from consent import services
    from consent.models import AuditEvent
    from tracks.models import Track

    def set_(artist, tracks, slug: str, granted: bool):
        services.change_consent(
            actor=artist,
            tracks=Track.objects.filter(pk__in=[t.pk for t in tracks]),
            changes={slug: granted},
            source=AuditEvent.Source.WEB,
            confirmed_purposes=[slug],
        )

    return set_


def granted(track, slug: str) -> bool:
    from consent.models import Consent

    return Consent.objects.filter(track=track, purpose__slug=slug, granted=True).exists()


# Grant and withdraw recommendation, only withdraw fraud detection, nothing of generative training.
REC_SCOPES = {"recommendation": "grant_withdraw", "fraud_detection": "withdraw", "generative_training": "none"}


@pytest.fixture
def make_roster(label_setup, make_user, make_tracks):
    """Factory: artists named "<name> <i>", each with tracks, delegated to the label_setup label."""

    def make(name: str, *, artists: int = 3, tracks_each: int = 5, scopes: dict[str, str] | None = None):
        label, manager, delegate = label_setup
        members = [make_user(display_name=f"{name} {i}") for i in range(artists)]
        for artist in members:
            make_tracks(tracks_each, owner=artist)
            delegate(artist, REC_SCOPES if scopes is None else scopes)
        return label, manager, members

    return make


def preview(manager, label, changes: dict[str, bool], *, tracks=None, selection=None, confirmed=()):
    """The draft of a bulk edit over every track (or `tracks`), with no catalogue filter."""
    from labels import bulk
    from tracks.models import Track

    return bulk.preview_bulk_edit(
        actor=manager,
        label=label,
        tracks=Track.objects.all() if tracks is None else tracks,
        changes=changes,
        filter_params={},
        selection=selection,
        confirmed=confirmed,
    )


@pytest.fixture
def make_direct_roster(make_user, make_tracks):
    """Factory: a new label, and artists delegated to it directly (no invitation, so no email) with tracks.

    `tracks` maps each artist's display name to how many tracks they own.
    """
    from labels import services
    from tests.factories import DelegationFactory

    def make(label_name: str, tracks: dict[str, int], *, scopes: dict[str, str] | None = None):
        manager = make_user(display_name="Mia Manager")
        label = services.create_label(owner=manager, name=label_name)
        artists = []
        for name, count in tracks.items():
            artist = make_user(display_name=name)
            make_tracks(count, owner=artist)
            DelegationFactory(artist=artist, label=label, scopes=REC_SCOPES if scopes is None else scopes)
            artists.append(artist)
        return label, manager, artists

    return make
