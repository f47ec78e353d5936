"""Models of the labels app: labels, their managers, delegations, bulk changes, proposals, artist invitations.

The label models came here from accounts and consent (migration labels 0002)
keeping their tables, so each `Meta.db_table` names the table they always had.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from consent import vocabulary


class Label(models.Model):
    """A label that looks after the catalogues its artists delegate to it."""

    name = models.CharField(max_length=150)
    slug = models.SlugField(max_length=80, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "accounts_label"
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class LabelMembership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MANAGER = "manager", "Manager"

    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="label_memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MANAGER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "accounts_labelmembership"
        constraints = [models.UniqueConstraint(fields=["label", "user"], name="accounts_membership_label_user_unique")]

    def __str__(self) -> str:
        return f"{self.user} at {self.label} ({self.role})"


class LabelInvitation(models.Model):
    """A manager invited by email; the token in the link is the only proof needed to accept."""

    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=LabelMembership.Role.choices, default=LabelMembership.Role.MANAGER)
    token = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "accounts_labelinvitation"

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.label}"


class DelegationQuerySet(models.QuerySet["Delegation"]):
    def active(self) -> DelegationQuerySet:
        return self.filter(status=Delegation.Status.ACTIVE, ended_at__isnull=True)

    def open(self) -> DelegationQuerySet:
        return self.filter(ended_at__isnull=True)


class Delegation(models.Model):
    """What an artist lets one label do, purpose by purpose.

    `scopes` maps purpose slug to a Scope; a missing slug is NONE, so a purpose
    added later is delegated to nobody until the artist says so. A JSON column
    (not a row per purpose) lets the permission check load every owner's scopes
    for a bulk change in one query.
    """

    Scope = vocabulary.Scope

    class Status(models.TextChoices):
        INVITED = "invited", "Invited by the label"
        REQUESTED = "requested", "Requested by the artist"
        ACTIVE = "active", "Active"
        DECLINED = "declined", "Declined"
        ENDED = "ended", "Ended"

    # PROTECT: ending a delegation is audited and both sides are told, so it is
    # never a silent side effect of deleting the account (accounts.services does it).
    artist = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="delegations")
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="delegations")
    status = models.CharField(max_length=16, choices=Status.choices)
    scopes = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = DelegationQuerySet.as_manager()

    class Meta:
        db_table = "accounts_delegation"
        ordering = ["-created_at", "-id"]
        constraints = [
            # One open (pending or active) delegation per artist and label.
            models.UniqueConstraint(
                fields=["artist", "label"],
                condition=models.Q(ended_at__isnull=True),
                name="accounts_delegation_one_open",
            )
        ]
        indexes = [models.Index(fields=["label", "status"], name="accounts_delegation_label_idx")]

    def __str__(self) -> str:
        return f"{self.artist} -> {self.label} ({self.status})"

    def scope_for(self, slug: str) -> str:
        return self.scopes.get(slug, self.Scope.NONE)


class BulkChange(models.Model):
    """One change over many tracks: a bulk edit, a CSV import, or the undo of one.

    Made either by a label's manager over the label's roster (`label`), or by an
    artist over their own catalogue (`artist`); exactly one of the two is set.

    Created as a draft by the preview, which lists every (track, purpose) cell
    it showed as a BulkChangeItem; confirmed, exactly those cells are applied
    through consent.services, and every audit event it writes links back here.
    A worker applying it holds a lease (claim_token, lease_expires_at) renewed
    after every committed chunk; a sweep resumes or fails a change whose lease
    ran out.
    """

    class Kind(models.TextChoices):
        EDIT = "edit", "Bulk edit"
        CSV = "csv", "CSV import"
        UNDO = "undo", "Undo"

    class Status(models.TextChoices):
        DRAFT = "draft", "Previewed"
        STALE = "stale", "Out of date"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    label = models.ForeignKey(Label, null=True, blank=True, on_delete=models.PROTECT, related_name="bulk_changes")
    # An artist's change of their own tracks. PROTECT: labels' account-deletion
    # step removes these before the account goes (labels.account_hooks).
    artist = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="own_bulk_changes"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    # The catalogue filter (query parameters) or, for CSV, the file name.
    filter = models.JSONField(default=dict, blank=True)
    # Explicitly selected track uuids; null means every track the filter matches.
    selection = models.JSONField(null=True, blank=True)
    # Bulk edit: purpose slug -> granted. CSV and undo: track uuid -> {slug: granted}.
    changes = models.JSONField(default=dict, blank=True)
    confirmed_purposes = models.JSONField(default=list, blank=True)
    will_change = models.PositiveIntegerField(default=0)
    already = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    refused_detail = models.JSONField(default=list, blank=True)
    applied = models.PositiveIntegerField(default=0)
    artists_notified = models.PositiveIntegerField(default=0)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    undo_of = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="undone_by")
    # What no longer held when the manager confirmed a stale preview, in words.
    drift = models.JSONField(default=list, blank=True)
    # The preview's snapshot time: a cell whose consent changed after it is not
    # the cell the manager saw, so it is reported (at confirm) or left alone (at apply).
    previewed_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # How many times a worker stopped holding this change (killed, out of time).
    lost_count = models.PositiveSmallIntegerField(default=0)
    # Chunks are whole artists in id order; every artist up to this id is done.
    resume_after_artist = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "consent_bulkchange"
        ordering = ["-created_at", "-id"]
        indexes = [
            # The sweep's question: which changes lost their worker?
            models.Index(fields=["status", "lease_expires_at"], name="consent_bulk_status_lease_idx"),
        ]
        constraints = [
            # A label's change or an artist's own, never both or neither: the
            # permission and drift checks read the scope from this.
            models.CheckConstraint(
                condition=models.Q(label__isnull=False, artist__isnull=True)
                | models.Q(label__isnull=True, artist__isnull=False),
                name="labels_bulkchange_label_xor_artist",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} by {self.label or self.artist}"

    @property
    def by_artist(self) -> bool:
        """An artist's change of their own catalogue (not a label's)."""
        return self.artist_id is not None

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)


class BulkChangeItem(models.Model):
    """One (track, purpose) cell of a bulk change, as its preview showed it.

    Written set-based when the preview is made (INSERT ... SELECT, or one
    INSERT from the CSV report); the apply reads these rows, never the filter
    again, so it changes exactly what the manager saw. The key leads with the
    bulk change and the artist because the apply walks whole artists in order.
    """

    class Action(models.TextChoices):
        CHANGE = "change", "Will change"
        ALREADY = "already", "Already so"
        REFUSED = "refused", "Refused"

    # The key is the only index: every read starts from one bulk change, and
    # each extra index would slow the 100,000-row INSERT of a large preview.
    pk = models.CompositePrimaryKey("bulk_change", "artist", "track", "purpose")
    bulk_change = models.ForeignKey(BulkChange, on_delete=models.CASCADE, related_name="items", db_index=False)
    # The track's owner when previewed. Tracks and users are referenced without
    # a constraint: one deleted since the preview is what the confirm reports.
    artist = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    track = models.ForeignKey(
        "tracks.Track", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    purpose = models.ForeignKey("consent.Purpose", on_delete=models.PROTECT, db_index=False, related_name="+")
    shown_granted = models.BooleanField()
    new_granted = models.BooleanField()
    action = models.CharField(max_length=8, choices=Action.choices)
    # CSV rows that named the track by ISRC: the ISRC must still name only it.
    isrc_key = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        db_table = "consent_bulkchangeitem"

    def __str__(self) -> str:
        return f"{self.action} {self.purpose_id} on track {self.track_id} in bulk change {self.bulk_change_id}"


class ConsentProposal(models.Model):
    """A label asking an artist to grant a purpose it may not grant itself."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the artist"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"

    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="proposals")
    artist = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="consent_proposals")
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    purpose = models.ForeignKey("consent.Purpose", on_delete=models.PROTECT, related_name="+")
    tracks = models.ManyToManyField("tracks.Track", related_name="+")
    message = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "consent_consentproposal"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.label} proposes {self.purpose} to {self.artist}"


class ArtistInvitationQuerySet(models.QuerySet["ArtistInvitation"]):
    def pending(self) -> ArtistInvitationQuerySet:
        return self.filter(accepted_at__isnull=True, declined_at__isnull=True)


class ArtistInvitation(models.Model):
    """A label's invitation to an email address to join its roster.

    Addressed to an email, not to an account, so that inviting says nothing
    about whether the address has an account: the label learns who the artist
    is only when the artist, signed in with a verified copy of that address,
    accepts. Nothing is delegated (and nothing is in the artist's audit log)
    before then.
    """

    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="artist_invitations")
    email = models.EmailField()
    token = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    delegation = models.ForeignKey(Delegation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    objects = ArtistInvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                "label",
                condition=models.Q(accepted_at__isnull=True, declined_at__isnull=True),
                name="labels_artistinvitation_one_pending",
            )
        ]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.label}"

    @property
    def pending(self) -> bool:
        return self.accepted_at is None and self.declined_at is None
