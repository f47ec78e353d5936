"""What is public, and the distribution copies that carry the artist's answer inside the file.

The state lives here, keyed by track, so that tracks/ and consent/ never
depend on public/.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class PublicTrack(models.Model):
    """Whether a track has a public page. No row means not public."""

    track = models.OneToOneField(
        "tracks.Track", primary_key=True, on_delete=models.CASCADE, related_name="public_state"
    )
    is_public = models.BooleanField(default=False)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["track"], condition=models.Q(is_public=True), name="public_track_is_public_idx"),
        ]

    def __str__(self) -> str:
        return f"Track {self.track_id}: {'public' if self.is_public else 'private'}"


class ArtistPage(models.Model):
    """An artist's stable public address: the uuid never changes once given."""

    artist = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="public_page"
    )
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Public page of {self.artist_id}"

    def get_absolute_url(self) -> str:
        return reverse("public:artist", kwargs={"uuid": self.uuid})


class DistributionCopy(models.Model):
    """The copy of a public track's audio that is served, with the answer embedded.

    `status` is the work (built, waiting to be rebuilt, being rebuilt, failed);
    `embedded_granted` is what the stored `file` says. The audio view serves
    the file only while that equals the current consent, whatever the status,
    so a stale copy is never served between a change and its rebuild.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be rebuilt"
        BUILDING = "building", "Being rebuilt"
        CURRENT = "current", "Current"
        FAILED = "failed", "Failed"
        UNSUPPORTED = "unsupported", "Not supported for this format"

    track = models.OneToOneField(
        "tracks.Track", primary_key=True, on_delete=models.CASCADE, related_name="distribution_copy"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Storage name, generated; empty until a first copy is built.
    file = models.CharField(max_length=255, blank=True)
    embedded_granted = models.BooleanField(null=True, blank=True)
    source_sha256 = models.CharField(max_length=64, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    has_xmp = models.BooleanField(default=False)
    has_c2pa = models.BooleanField(default=False)
    # What the builder read back from the finished file with the crawler-side
    # readers (audio parser, XMP, C2PA), shown to the artist as is.
    verified = models.JSONField(default=dict, blank=True)

    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # When the latest rebuild was asked for and when a copy last landed: the
    # difference is the rebuild latency the benchmark measures.
    requested_at = models.DateTimeField(default=timezone.now)
    built_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="public_copy_status_due_idx")]

    def __str__(self) -> str:
        return f"Copy of track {self.track_id} ({self.status})"
