"""One artist's history for screenshots and browser tests: grants by the artist and by a label,
a withdrawal, a policy lapse, a proposal waiting. Written through the services, as the site would."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from allauth.account.models import EmailAddress
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from consent import services
from consent.models import AuditEvent, PolicyVersion, Purpose
from consent.policy import publish_policy_version
from labels import services as label_services
from tracks.models import Track

TITLES = [
    "Harbour Lights",
    "Salt and Iron",
    "Northbound",
    "Paper Moons",
    "Glasshouse",
    "Low Tide",
    "The Long Field",
    "Copper Wire",
    "Night Ferry",
    "Winter Orchard",
    "Signal Fires",
    "Afterglow",
]


@dataclass
class Demo:
    artist: User
    manager: User
    label: Any  # labels.Label (its module is moving)
    tracks: list[Track]
    lapse_version: PolicyVersion


def make_user(email: str, display_name: str, password: str, **extra) -> User:
    user = User.objects.create_user(email=email, password=password, display_name=display_name, **extra)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


def make_tracks(owner: User, titles: list[str], *, isrc_prefix: str) -> list[Track]:
    return Track.objects.bulk_create(
        Track(
            owner=owner,
            title=title,
            isrc=f"{isrc_prefix}{n:05d}",
            audio_file=f"audio/demo-{owner.pk}-{n}.flac",
            sha256=hashlib.sha256(f"demo-{owner.pk}-{n}".encode()).hexdigest(),
            container="FLAC",
            codec="FLAC",
            duration_seconds=180 + n,
            status=Track.Status.READY,
        )
        for n, title in enumerate(titles)
    )


def change(actor: User | None, tracks: list[Track], changes: dict[str, bool], **extra) -> services.ChangeResult:
    return services.change_consent(
        actor=actor,
        tracks=Track.objects.filter(pk__in=[t.pk for t in tracks]),
        changes=changes,
        source=extra.pop("source", AuditEvent.Source.WEB),
        **extra,
    )


def lapse_now(purpose_slug: str, summary: str) -> PolicyVersion:
    """Publish a version that changes what a purpose means, and let its grants lapse at once.

    Publishing refuses an effective date in the past (artists get time to
    confirm); the demo moves the date afterwards so that the lapse shows now.
    """
    latest = PolicyVersion.objects.order_by("-version").first()
    version = PolicyVersion.objects.create(
        version=(latest.version if latest else 0) + 1, summary=summary, full_text=summary, is_material=True
    )
    version.purposes_changed.add(Purpose.objects.get(slug=purpose_slug))
    publish_policy_version(version=version, effective_at=timezone.now() + timedelta(days=30))
    PolicyVersion.objects.filter(pk=version.pk).update(effective_at=timezone.now())
    version.refresh_from_db()
    services.lapse_unconfirmed_grants(version=version)
    return version


def seed_demo(*, password: str, email_domain: str = "localhost") -> Demo:
    artist = make_user(f"demo-artist@{email_domain}", "Rosa Demo", password)
    manager = make_user(f"demo-manager@{email_domain}", "Mia Manager", password)
    tracks = make_tracks(artist, TITLES, isrc_prefix="GBDEM26")
    change(artist, tracks[:8], {"recommendation": True})
    change(artist, tracks[:3], {"generative_training": True}, confirmed_purposes={"generative_training"})
    with transaction.atomic():
        label = label_services.create_label(owner=manager, name="Northern Records")
        # Through the relation, so this does not depend on which app holds the model.
        label.delegations.create(
            artist=artist,
            status="active",
            scopes={"recommendation": "grant_withdraw", "fraud_detection": "grant_withdraw"},
        )
    change(manager, tracks[2:7], {"fraud_detection": True}, source=AuditEvent.Source.BULK)
    change(artist, tracks[6:8], {"recommendation": False})
    version = lapse_now("generative_training", "Generative training now includes voice models.")
    # Granted again after the new terms: this one stands.
    change(artist, tracks[:1], {"generative_training": True}, confirmed_purposes={"generative_training"})
    label_services.propose_grant(
        actor=manager,
        label=label,
        tracks=Track.objects.filter(pk__in=[t.pk for t in tracks[8:]]),
        purpose_slug="recommendation",
        message="For the autumn playlists.",
    )
    return Demo(artist=artist, manager=manager, label=label, tracks=tracks, lapse_version=version)
