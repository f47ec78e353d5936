"""Consent state and the append-only audit log.

`Consent` holds the current answer for one (track, purpose); no row means not
granted. `AuditEvent` holds every change, hash-chained per artist. Both are
written only by `consent.services`.
"""

from __future__ import annotations

from typing import NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from consent import vocabulary

GENESIS_HASH = "0" * 64


class Purpose(models.Model):
    """One use the platform may make of a track, only with the artist's opt-in."""

    RECOMMENDATION = "recommendation"
    FRAUD_DETECTION = "fraud_detection"
    GENERATIVE_TRAINING = "generative_training"
    # A licence to other companies, separate from the platform's own uses; the
    # answer every public signal to AI crawlers carries (see public/).
    THIRD_PARTY_AI_TRAINING = "third_party_ai_training"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(help_text="What this use means for the artist, in plain language.")
    requires_confirmation = models.BooleanField(
        default=False,
        help_text="Granting this purpose needs a separate, explicit confirmation step.",
    )
    ordering = models.PositiveSmallIntegerField(default=0)
    # The purpose's bit in TrackConsentSummary's masks (1 << mask_bit): on PostgreSQL a trigger gives a new
    # purpose the lowest free bit (consent.summary_sql); ids are not used, they grow past 62 over a life.
    mask_bit = models.PositiveSmallIntegerField(null=True, blank=True, unique=True, editable=False)

    class Meta:
        ordering = ["ordering", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(mask_bit__lte=62), name="consent_purpose_mask_bit_fits")
        ]

    def __str__(self) -> str:
        return self.name


class PolicyVersionQuerySet(models.QuerySet):
    def published(self) -> PolicyVersionQuerySet:
        return self.filter(published_at__isnull=False)

    def in_force(self, at=None) -> PolicyVersion | None:
        """The published version whose effective date has come, latest first."""
        at = at or timezone.now()
        return (
            self.published()
            .filter(models.Q(effective_at__isnull=True) | models.Q(effective_at__lte=at))
            .order_by("-version")
            .first()
        )


class PolicyVersion(models.Model):
    version = models.PositiveIntegerField(unique=True)
    summary = models.TextField()
    full_text = models.TextField()
    published_at = models.DateTimeField(null=True, blank=True)
    effective_at = models.DateTimeField(null=True, blank=True)
    is_material = models.BooleanField(
        default=False, help_text="A material change needs prominent notice to every artist."
    )
    purposes_changed = models.ManyToManyField(Purpose, blank=True, related_name="policy_versions")

    objects = PolicyVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"Version {self.version}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("consent:policy", args=[self.version])


class Consent(models.Model):
    """The current answer for one track and one purpose."""

    # PROTECT: a track's consent goes only through consent.services (withdrawn,
    # audited, then removed), never as a silent side effect of deleting the track.
    # No index of their own: (track, purpose) is unique and (purpose, granted) is indexed, and each
    # serves its leading column's lookups; two more indexes only slowed every consent write.
    track = models.ForeignKey("tracks.Track", on_delete=models.PROTECT, related_name="consents", db_index=False)
    # purpose, changed_by and policy_version hold one value per write: their keys are checked once per
    # statement by triggers (consent/statement_keys_sql.py), not once per row.
    purpose = models.ForeignKey(
        Purpose, on_delete=models.PROTECT, related_name="consents", db_index=False, db_constraint=False
    )
    granted = models.BooleanField(default=False)
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="+",
    )
    changed_by_kind = models.CharField(max_length=16, blank=True)
    # Not indexed: nothing looks consent rows up by their terms (policy versions are never deleted: the admin
    # offers no delete, and the statement-level guard refuses one still referenced, at the cost of a scan),
    # and every consent write that changes a cell would pay for the index entry.
    policy_version = models.ForeignKey(
        PolicyVersion, on_delete=models.PROTECT, db_constraint=False, db_index=False, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["track", "purpose"], name="consent_consent_track_purpose_unique"),
        ]
        indexes = [models.Index(fields=["purpose", "granted"], name="consent_purpose_granted_idx")]

    def __str__(self) -> str:
        state = "granted" if self.granted else "not granted"
        return f"{self.purpose} for track {self.track_id}: {state}"


class UploadDefault(models.Model):
    """What an artist chose to grant to every future upload. No row means off."""

    # PROTECT: switched off and removed by the account-deletion service, audited.
    artist = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="upload_defaults")
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="+")
    granted = models.BooleanField(default=False)
    changed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["artist", "purpose"], name="consent_uploaddefault_artist_purpose_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} default for {self.artist_id}: {self.granted}"


class AuditChainHead(models.Model):
    """The last link of one artist's chain.

    Locked with SELECT ... FOR UPDATE by every writer, which serialises writes
    per artist (no lost update, no fork); its hash is what receipts carry.
    """

    artist = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"Chain of {self.artist_id} at {self.seq}"


class TransactionHorizon(models.Func):
    """The database default of `AuditEvent.xid_horizon`.

    On PostgreSQL: the larger of the inserting statement's snapshot xmax and the
    writing transaction's own id + 1. Every transaction still running when a
    reader takes its snapshot has an id at or above that snapshot's xmin, so an
    event whose horizon is at or below the reader's xmin can only come from a
    transaction that has already finished; and an event written after another
    committed gets a horizon no lower than that one's. Ordering by
    (xid_horizon, id) is therefore a commit-consistent order that never lets a
    late commit slip in behind a position already handed out (downstream's
    change feed depends on it). On SQLite writers are serialised, so id order
    is commit order and the horizon is 0.
    """

    output_field = models.BigIntegerField()

    def as_sql(self, compiler, connection, function=None, template=None, arg_joiner=None, **extra_context):
        return "0", []

    def as_postgresql(self, compiler, connection, **extra_context):
        return (
            "GREATEST(pg_snapshot_xmax(pg_current_snapshot())::text::bigint, pg_current_xact_id()::text::bigint + 1)",
            [],
        )


class AuditLogImmutable(Exception):
    """Raised by any attempt to change or remove an audit event through the ORM."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditLogImmutable("Audit events are never updated.")

    def delete(self) -> NoReturn:
        raise AuditLogImmutable("Audit events are never deleted.")

    def _raw_delete(self, using: str | None) -> NoReturn:
        raise AuditLogImmutable("Audit events are never deleted.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditLogImmutable("Audit events are never updated.")

    def bulk_create(self, objs, *args, **kwargs):
        # Only consent.services can append: it alone assigns seq and the hashes.
        raise AuditLogImmutable("Audit events are written only by consent.services.")


class AuditEvent(models.Model):
    """One fact in an artist's history. Append-only; hash-chained per artist."""

    ActorKind = vocabulary.ActorKind
    Source = vocabulary.Source

    class Kind(models.TextChoices):
        CONSENT_CHANGED = "consent_changed", _("Consent changed")
        DEFAULTS_CHANGED = "defaults_changed", _("Upload default changed")
        TRACK_UPLOADED = "track_uploaded", _("Track uploaded")
        TRACK_DELETED = "track_deleted", _("Track deleted")
        POLICY_ACKNOWLEDGED = "policy_acknowledged", _("Policy acknowledged")
        CONSENT_RECONFIRMED = "consent_reconfirmed", _("Consent confirmed again")
        DELEGATION_CHANGED = "delegation_changed", _("Label delegation changed")
        ACCOUNT_DELETED = "account_deleted", _("Account deleted")

    # Users and tracks are referenced without a database constraint and with
    # DO_NOTHING: the history must outlive them, and a cascade or SET NULL would
    # be an UPDATE/DELETE that the triggers refuse.
    artist = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, related_name="audit_events"
    )
    seq = models.PositiveBigIntegerField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    source = models.CharField(max_length=32, choices=Source.choices)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    track = models.ForeignKey(
        "tracks.Track", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    track_uuid = models.UUIDField(null=True, blank=True, db_index=True)
    # Checked once per statement, as on Consent (consent/statement_keys_sql.py).
    purpose = models.ForeignKey(
        Purpose, null=True, blank=True, on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    purpose_slug = models.CharField(max_length=64, blank=True)
    old_value = models.CharField(max_length=32, blank=True)
    new_value = models.CharField(max_length=32, blank=True)
    policy_version = models.ForeignKey(
        PolicyVersion, null=True, blank=True, on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    request_id = models.CharField(max_length=64, blank=True)
    receipt_id = models.UUIDField(null=True, blank=True, db_index=True)
    # The label a delegation event concerns, and the bulk change that wrote a
    # consent event; both hashed when set (see consent.chain).
    label = models.ForeignKey(
        "labels.Label", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    bulk_change = models.ForeignKey(
        "labels.BulkChange",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="events",
    )
    created_at = models.DateTimeField()
    # Which canonical form the hash covers (consent.chain). Version 2 keeps the
    # personal data (IP, user agent, track title) out of the hashed body, in
    # AuditActorData and AuditSubjectData, and hashes a keyed digest of each.
    chain_version = models.PositiveSmallIntegerField()
    actor_data_digest = models.CharField(max_length=64, blank=True)
    subject_data_digest = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    # Set by the database on insert (see TransactionHorizon); not hashed, so it
    # changes nothing in the chain. Events from before the column exist have 0.
    xid_horizon = models.BigIntegerField(db_default=TransactionHorizon(), editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["artist", "seq"], name="consent_auditevent_artist_seq_unique"),
        ]
        indexes = [
            models.Index(fields=["artist", "created_at"], name="consent_audit_artist_time_idx"),
            models.Index(fields=["xid_horizon", "id"], name="consent_audit_commit_order_idx"),
            # A track's history newest first (the API's per-track reads and as_of).
            models.Index(fields=["track_uuid", "-seq"], name="consent_audit_track_seq_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.get_kind_display()} for {self.artist_id}"

    def save(self, *args, **kwargs):
        # Rows are appended by consent.services in bulk, with their hashes; a
        # save() could only produce an unchained row or rewrite an old one.
        raise AuditLogImmutable("Audit events are written only by consent.services.")

    def delete(self, *args, **kwargs):
        raise AuditLogImmutable("Audit events are never deleted.")

    # The personal parts, read from their erasable rows ("" once erased). Views
    # that list many events select_related("actor_data", "subject_data").
    @property
    def ip(self) -> str:
        return _erasable(self, "actor_data", "ip")

    @property
    def user_agent(self) -> str:
        return _erasable(self, "actor_data", "user_agent")

    @property
    def track_title(self) -> str:
        return _erasable(self, "subject_data", "track_title")

    @property
    def delegation_words(self) -> tuple[str, str]:
        """A delegation event's old and new value in words (a scope, or the delegation's status)."""
        words = {"": "—", **{scope.value: scope.label.lower() for scope in vocabulary.Scope}}
        return words.get(self.old_value, self.old_value), words.get(self.new_value, self.new_value)

    @property
    def actor_label(self) -> str:
        if self.actor_kind == self.ActorKind.ARTIST and self.actor_id == self.artist_id:
            return gettext("You")
        return self.get_actor_kind_display()


def _erasable(event: AuditEvent, relation: str, field: str) -> str:
    try:
        return getattr(getattr(event, relation), field)
    except models.ObjectDoesNotExist:
        return ""


class AuditActorData(models.Model):
    """Where an event's request came from: personal data of the person who acted.

    Outside the hashed body, so it can be erased (the row deleted) without
    breaking the chain. For a version-2 event the body holds
    HMAC-SHA256(key, ip and user agent); the key dies with the row. For a
    version-1 event (key blank) the body hashed the values themselves.
    """

    event = models.OneToOneField(
        AuditEvent, to_field="hash", primary_key=True, on_delete=models.DO_NOTHING, related_name="actor_data"
    )
    key = models.CharField(max_length=64, blank=True)
    # Kept as text, not inet: the digest covers exactly the string that was stored.
    ip = models.CharField("IP address", max_length=45, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)

    def __str__(self) -> str:
        return f"Request data of event {self.event_id[:12]}"


class AuditSubjectData(models.Model):
    """What an event was about, in words a person may be named in (the track title).

    Erasable like AuditActorData; deleted for the whole chain when the artist's
    account is deleted.
    """

    event = models.OneToOneField(
        AuditEvent, to_field="hash", primary_key=True, on_delete=models.DO_NOTHING, related_name="subject_data"
    )
    key = models.CharField(max_length=64, blank=True)
    track_title = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"Subject data of event {self.event_id[:12]}"


class AuditErasure(models.Model):
    """A deliberate erasure of personal data from the audit log.

    The verifier accepts a missing AuditActorData/AuditSubjectData row only
    where an erasure covers it, so a row deleted behind the service's back is
    reported rather than passed off as an erasure.
    """

    class Scope(models.TextChoices):
        # Every personal part of the events in this artist's chain.
        CHAIN = "chain", "The artist's whole chain"
        # The request data of every event this user acted in, in any chain.
        ACTOR = "actor", "Requests made by this user"

    user_id = models.BigIntegerField(db_index=True)
    scope = models.CharField(max_length=16, choices=Scope.choices)
    reason = models.CharField(max_length=200)
    erased_at = models.DateTimeField()
    actor_rows = models.PositiveIntegerField(default=0)
    subject_rows = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-erased_at", "-id"]

    def __str__(self) -> str:
        return f"Erasure ({self.scope}) for user {self.user_id} at {self.erased_at:%Y-%m-%d %H:%M}"


class TrackConsentSummary(models.Model):
    """Where each track's consent stands, one row per track, for filtering and sorting the catalogue.

    A copy, never the record: PostgreSQL triggers (consent.summary_sql) keep it
    in the transaction of every write to the consent table and to the tracks
    table, whoever makes it, and verify_audit_log checks it against the consent
    rows. A purpose is the bit ``1 << purpose.id`` of each mask; "never" is a bit
    set in none of them. Only on PostgreSQL (consent.summary.available()).
    """

    # No foreign key constraint: the trigger that deletes a track's row is what keeps them together.
    track = models.OneToOneField(
        "tracks.Track",
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="consent_summary",
    )
    # Copies of the track's own columns, so that "filter by state, sort by title or date" is one index scan.
    # Indexed once, by consent_summary_owner_idx below (the field's own index would be its twin).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    title = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    granted = models.BigIntegerField(default=0)
    withdrawn = models.BigIntegerField(default=0)  # not granted, changed by the artist, a label or staff
    lapsed = models.BigIntegerField(default=0)  # not granted, withdrawn by the system under new terms

    class Meta:
        # No index holds a mask: a consent write then changes only unindexed columns, and PostgreSQL updates
        # the row in place (a HOT update, the table keeps free space for it: fillfactor 60 in migration 0012)
        # instead of inserting into every index; a bulk chunk of 20,000 rows costs about a tenth.
        indexes = [
            models.Index(fields=["title", "track"], include=["owner"], name="consent_summary_title_idx"),
            models.Index(fields=["created_at", "track"], include=["owner"], name="consent_summary_created_idx"),
            models.Index(fields=["owner"], name="consent_summary_owner_idx"),
        ]

    def __str__(self) -> str:
        return f"Consent summary of track {self.track_id}"


class OwnerGrantCount(models.Model):
    """How many of an artist's tracks have exactly the grants `granted` (a TrackConsentSummary mask, never 0).

    Kept by a trigger on TrackConsentSummary, so the catalogue counts a roster
    filtered by state from a few rows per artist instead of every track. Only
    consent writes change it, and they hold the artist's chain head, so two
    transactions never wait on each other's rows here.
    """

    # The unique (owner, granted) index serves the owner's lookups; the field's own index would be its prefix.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    granted = models.BigIntegerField()
    tracks = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "granted"], name="consent_ownergrantcount_unique")]

    def __str__(self) -> str:
        return f"{self.tracks} track(s) of artist {self.owner_id} with grants {self.granted:#x}"
