"""Reads for the public pages and the site-wide files."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from public.answers import PURPOSE_SLUG, Answer
from public.models import DistributionCopy, PublicTrack
from tracks.models import Track


def public_tracks() -> QuerySet[Track]:
    """Tracks anyone may see: made public by their artist and processed."""
    return Track.objects.filter(public_state__is_public=True, status=Track.Status.READY)


def is_public(track: Track) -> bool:
    return track.status == Track.Status.READY and PublicTrack.objects.filter(track=track, is_public=True).exists()


def track_by_uuid(value: uuid.UUID) -> Track | None:
    return Track.objects.select_related("owner").filter(uuid=value).first()


def granted_public_track_uuids(*, limit: int) -> list[uuid.UUID]:
    """The first `limit` public tracks whose artist allowed AI training by others, oldest first.

    A stable order, so the site-wide files change only at their end when
    tracks are added.
    """
    return list(
        public_tracks()
        .filter(consents__purpose__slug=PURPOSE_SLUG, consents__granted=True)
        .order_by("id")
        .values_list("uuid", flat=True)[:limit]
    )


def servable_copy(track: Track, answer: Answer) -> DistributionCopy | None:
    """The distribution copy, only if what it carries is exactly the current answer for this original.

    Checked on every request: between a change of consent and its rebuild,
    the copy says the old answer and is not served.
    """
    copy = DistributionCopy.objects.filter(track=track).first()
    if copy is None or not copy.file:
        return None
    if copy.embedded_granted is not answer.granted or copy.source_sha256 != track.sha256:
        return None
    return copy
