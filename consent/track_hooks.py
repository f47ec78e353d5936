"""Consent's part of a track's upload and deletion (registered with tracks.hooks)."""

from __future__ import annotations

from django.utils.translation import gettext

from consent import services
from consent.confirmation import needs_own_confirmation
from consent.models import AuditEvent, Purpose
from tracks.hooks import TrackDeleting, TracksUploaded, register_track_listeners
from tracks.models import Track


def tracks_uploaded(event: TracksUploaded) -> None:
    """Each new track enters the artist's audit chain, then one consent save applies defaults and choices."""
    for track in event.tracks:
        services.record_track_uploaded(actor=event.owner, track=track, request_meta=event.request_meta)
    services.apply_upload_consent(
        actor=event.owner,
        tracks=Track.objects.filter(pk__in=[track.pk for track in event.tracks]),
        choices=event.consent_choices,
        request_meta=event.request_meta,
    )


def track_deleting(event: TrackDeleting) -> None:
    # The audit entry is written first, in the deletion's transaction; audit events stay.
    services.record_track_deleted(
        actor=event.actor,
        track=event.track,
        request_meta=event.request_meta,
        source=AuditEvent.Source.ADMIN if event.from_admin else AuditEvent.Source.WEB,
    )


def upload_choices() -> list[tuple[str, str]]:
    # Purposes that need their own confirmation (generative training) are not offered on the upload form.
    # Seeded purpose names are in the translation catalogue (consent/seeded_text.py).
    return [(p.slug, gettext(p.name)) for p in Purpose.objects.all() if not needs_own_confirmation(p)]


def register() -> None:
    register_track_listeners(
        "consent", uploaded=tracks_uploaded, deleting=track_deleting, upload_choices=upload_choices
    )
