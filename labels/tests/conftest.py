from __future__ import annotations

import hashlib
import itertools

import pytest

_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_tracks(db):
    """Many tracks for one owner in one INSERT."""
    from tracks.models import Track

    def make(count: int, *, owner, isrc_prefix: str | None = None, **fields) -> list[Track]:
        start = next(_numbers) * 100_000
        fields.setdefault("status", Track.Status.READY)
        return Track.objects.bulk_create(
            [
                Track(
                    owner=owner,
                    title=f"Track {start + i}",
                    isrc=f"{isrc_prefix}{i:07d}" if isrc_prefix else "",
                    audio_file=f"audio/label-{start + i}.flac",
                    sha256=hashlib.sha256(f"label-{start + i}".encode()).hexdigest(),
                    **fields,
                )
                for i in range(count)
            ]
        )

    return make


@pytest.fixture
def all_none(db) -> dict[str, str]:
    """Every purpose, read from the database so that a new one is covered too, delegated as nothing."""
    from consent.models import Purpose

    return dict.fromkeys(Purpose.objects.values_list("slug", flat=True), "none")


@pytest.fixture
def purpose_slugs(db) -> list[str]:
    """Every purpose's slug in the order pages and CSV columns show them."""
    from consent.models import Purpose

    return list(Purpose.objects.order_by("ordering", "id").values_list("slug", flat=True))


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
