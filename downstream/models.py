"""Downstream systems and what they tell the portal.

`ApiClient` is one registered system (its token stored only as a hash).
Acknowledgements, manifests and the usage ledger record what those systems did
with the artists' answers; none of them ever changes consent.
"""

from __future__ import annotations

import hashlib
from typing import NoReturn, Self

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "ccp_"  # noqa: S105 -- a prefix that marks our tokens in secret scanners, not a secret


def hash_token(token: str) -> str:
    """Tokens are 256 random bits, so one SHA-256 is as strong as a slow hash and costs nothing per request."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class ApiClientQuerySet(models.QuerySet["ApiClient"]):
    def active(self) -> Self:
        return self.filter(revoked_at__isnull=True)


class ApiClient(models.Model):
    """A downstream system (recommender, fraud model, training pipeline) with its own token."""

    name = models.CharField(max_length=120, unique=True)
    contact = models.CharField(max_length=254, help_text="Who runs this system: a team or an email address.")
    purposes = models.ManyToManyField(
        "consent.Purpose", blank=True, related_name="+", help_text="The purposes this system may read."
    )
    can_write_manifests = models.BooleanField(default=False, help_text="May create signed training manifests.")
    can_write_usage = models.BooleanField(default=False, help_text="May report use of tracks to the usage ledger.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_hint = models.CharField(
        max_length=16, editable=False, help_text="The token's first characters, to recognise it; never the token."
    )
    rate_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per rate-limit window; empty: the site default."
    )
    webhook_url = models.URLField(blank=True, max_length=500, help_text="HTTPS endpoint told of every change.")
    # The Standard Webhooks signing secret. Signing needs the secret itself, so
    # it is kept (unlike the API token); it is shown once and never logged.
    webhook_secret = models.CharField(max_length=80, blank=True, editable=False)
    # The feed position up to which changes have been turned into deliveries.
    webhook_after_horizon = models.BigIntegerField(default=0, editable=False)
    webhook_after_event = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiClientQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "API client"

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AckState(models.Model):
    """How far a client has applied the change feed of one purpose."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="ack_states")
    purpose = models.ForeignKey("consent.Purpose", on_delete=models.CASCADE, related_name="+")
    after_horizon = models.BigIntegerField(default=0)
    after_event = models.BigIntegerField(default=0)
    acknowledged_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "purpose"], name="downstream_ackstate_unique")]

    def __str__(self) -> str:
        return f"{self.client} at {self.after_horizon}.{self.after_event} for {self.purpose}"


class WithdrawalAck(models.Model):
    """A withdrawal (or track deletion) that a client said it has applied, and when it first said so."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="withdrawal_acks")
    purpose = models.ForeignKey("consent.Purpose", on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey("consent.AuditEvent", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    acknowledged_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "purpose", "event"], name="downstream_withdrawalack_unique")
        ]
        indexes = [models.Index(fields=["event"], name="downstream_wack_event_idx")]

    def __str__(self) -> str:
        return f"{self.client} applied event {self.event_id}"


class SigningKey(models.Model):
    """The public half of every key that ever signed a manifest, so old manifests stay verifiable."""

    kid = models.CharField(max_length=64, primary_key=True)
    public_jwk = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.kid


class Manifest(models.Model):
    """A signed list of tracks a run may use for a purpose; its id is the SHA-256 of its canonical JSON."""

    id = models.CharField(max_length=64, primary_key=True)
    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="manifests")
    purpose = models.ForeignKey("consent.Purpose", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField()
    # Exactly the bytes that were hashed and signed (RFC 8785).
    canonical = models.TextField()
    signature = models.TextField()
    key = models.ForeignKey(SigningKey, on_delete=models.PROTECT, related_name="+")
    track_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id[:12]})"


class ManifestTrack(models.Model):
    """One track a manifest cites, with the grant it relied on."""

    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="entries")
    # The track may be deleted later; the manifest is a record and keeps its uuid.
    track = models.ForeignKey(
        "tracks.Track", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    track_uuid = models.UUIDField(db_index=True)
    sha256 = models.CharField(max_length=64)
    artist_id = models.BigIntegerField()
    consent_event = models.ForeignKey(
        "consent.AuditEvent", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    # The artist's chain length when the manifest was made: any withdrawal after
    # it has a higher seq.
    chain_seq = models.PositiveBigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["manifest", "track_uuid"], name="downstream_manifesttrack_unique")
        ]

    def __str__(self) -> str:
        return f"{self.track_uuid} in {self.manifest_id[:12]}"


class UsageRecordImmutable(Exception):
    """Raised by any attempt to change or remove a usage record through the ORM."""


class UsageQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise UsageRecordImmutable("The usage ledger is append-only.")

    def delete(self) -> NoReturn:
        raise UsageRecordImmutable("The usage ledger is append-only.")

    def _raw_delete(self, using: str | None) -> NoReturn:
        raise UsageRecordImmutable("The usage ledger is append-only.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise UsageRecordImmutable("The usage ledger is append-only.")


class UsageRecord(models.Model):
    """One use of one track for one purpose by one system. Append-only (the database refuses changes)."""

    client = models.ForeignKey(ApiClient, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    track = models.ForeignKey(
        "tracks.Track", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    track_uuid = models.UUIDField()
    artist = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    purpose = models.ForeignKey("consent.Purpose", on_delete=models.PROTECT, related_name="+")
    manifest = models.ForeignKey(
        Manifest, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    consent_event = models.ForeignKey(
        "consent.AuditEvent", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    description = models.CharField(max_length=500)
    recorded_at = models.DateTimeField()

    objects = UsageQuerySet.as_manager()

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [
            models.Index(fields=["track_uuid", "recorded_at"], name="downstream_usage_track_idx"),
            models.Index(fields=["artist", "recorded_at"], name="downstream_usage_artist_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} used {self.track_uuid} for {self.purpose_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise UsageRecordImmutable("The usage ledger is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise UsageRecordImmutable("The usage ledger is append-only.")


class IdempotencyRecord(models.Model):
    """The answer to a POST made with an Idempotency-Key, replayed for a retry of the same request."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    status_code = models.PositiveSmallIntegerField()
    content_type = models.CharField(max_length=100)
    body = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "key"], name="downstream_idempotency_unique")]

    def __str__(self) -> str:
        return f"{self.client_id}: {self.key}"


class WebhookDelivery(models.Model):
    """One change to tell one client's endpoint: the webhook outbox."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="webhook_deliveries")
    event = models.ForeignKey("consent.AuditEvent", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    purpose = models.ForeignKey("consent.Purpose", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["client", "event", "purpose"], name="downstream_webhookdelivery_unique")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="downstream_webhook_due_idx")]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"change {self.event_id} to {self.client} ({self.status})"
