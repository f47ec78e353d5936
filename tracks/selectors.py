"""Reads of tracks that are more than a one-line lookup."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Q, QuerySet

from accounts.models import User
from tracks.models import Track

# URL value → ORM ordering; the id breaks ties so pages never overlap.
SORTS: dict[str, tuple[str, ...]] = {
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
    "title": ("title", "original_filename", "id"),
    "-title": ("-title", "-original_filename", "-id"),
    "duration": ("duration_seconds", "id"),
    "-duration": ("-duration_seconds", "-id"),
    "status": ("status", "-created_at", "-id"),
}
DEFAULT_SORT = "newest"


def tracks_for_owner(*, owner: User, search: str = "", status: str = "", sort: str = DEFAULT_SORT) -> QuerySet[Track]:
    tracks = Track.objects.filter(owner=owner)
    if search:
        tracks = tracks.filter(Q(title__icontains=search) | Q(title="", original_filename__icontains=search))
    if status in Track.Status.values:
        tracks = tracks.filter(status=status)
    return tracks.order_by(*SORTS.get(sort, SORTS[DEFAULT_SORT]))


def track_summary(*, owner: User) -> dict[str, int]:
    """Counts by status, in one query."""
    return Track.objects.filter(owner=owner).aggregate(
        total=Count("id"),
        **{value: Count("id", filter=Q(status=value)) for value in Track.Status.values},
    )


def stalled_track_ids(*, uploaded_before: datetime, claimed_before: datetime, limit: int = 500) -> list[int]:
    """Tracks still processing that no live worker holds: never queued, or their worker died."""
    return list(
        Track.objects.filter(status=Track.Status.PROCESSING, created_at__lt=uploaded_before)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=claimed_before))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


def find_duplicate(*, owner: User, sha256: str) -> Track | None:
    return Track.objects.filter(owner=owner, sha256=sha256).first()
