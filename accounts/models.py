import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UserQuerySet(models.QuerySet):
    def delete(self):
        """Each account through the deletion service, never a bare SQL cascade.

        An admin bulk action, a script or a shell that deletes users gets the
        same withdrawals, audit events, file removal and notices as the
        settings page (with the system as the actor).
        """
        from accounts.services import delete_account

        count = 0
        for user in self.order_by("pk"):
            delete_account(user=user, actor=None, via="system")
            count += 1
        return count, {self.model._meta.label: count}

    def _raw_delete(self, using):
        raise TypeError("Users are deleted only through accounts.services.delete_account.")


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):  # type: ignore[misc]
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        if not extra_fields["is_staff"] or not extra_fields["is_superuser"]:
            raise ValueError("A superuser must have is_staff and is_superuser set.")
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    """A person who signs in by email. Artists, label managers and staff alike."""

    username = None
    first_name = None
    last_name = None
    email = models.EmailField(_("email address"), unique=True)
    display_name = models.CharField(
        _("display name"),
        max_length=150,
        help_text=_("How your name appears to labels and in emails."),
    )
    # Empty until the user chooses: pages follow the browser (Accept-Language)
    # and emails the language the browser last asked for (browser_language).
    language = models.CharField(
        _("language"),
        max_length=16,
        blank=True,
        choices=settings.LANGUAGES,
        help_text=_("The language of pages and emails. Empty: the language your browser asks for."),
    )
    browser_language = models.CharField(max_length=16, blank=True, editable=False)
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        default="UTC",
        help_text=_("Every time on the pages and in emails is shown in this time zone."),
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = ["display_name"]

    objects = UserManager()

    class Meta:
        constraints = [
            # Case-insensitive uniqueness: Foo@x.org and foo@x.org are one inbox.
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.display_name or self.email

    def get_full_name(self) -> str:
        return self.display_name or self.email

    def get_short_name(self) -> str:
        return self.display_name or self.email

    def delete(self, using=None, keep_parents=False):
        """Routed through the one deletion service (see UserQuerySet.delete)."""
        from accounts.services import delete_account

        delete_account(user=self, actor=None, via="system")
        return 1, {self._meta.label: 1}


# --- Labels -----------------------------------------------------------------------------


class Label(models.Model):
    """A label that looks after the catalogues its artists delegate to it."""

    name = models.CharField(max_length=150)
    slug = models.SlugField(max_length=80, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class LabelMembership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MANAGER = "manager", "Manager"

    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="label_memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MANAGER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["label", "user"], name="accounts_membership_label_user_unique")]

    def __str__(self) -> str:
        return f"{self.user} at {self.label} ({self.role})"


class LabelInvitation(models.Model):
    """A manager invited by email; the token in the link is the only proof needed to accept."""

    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=LabelMembership.Role.choices, default=LabelMembership.Role.MANAGER)
    token = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.label}"


class DelegationQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status=Delegation.Status.ACTIVE, ended_at__isnull=True)

    def open(self):
        return self.filter(ended_at__isnull=True)


class Delegation(models.Model):
    """What an artist lets one label do, purpose by purpose.

    `scopes` maps purpose slug to a Scope; a missing slug is NONE, so a purpose
    added later is delegated to nobody until the artist says so. A JSON column
    (not a row per purpose) lets the permission check load every owner's scopes
    for a bulk change in one query.
    """

    class Scope(models.TextChoices):
        NONE = "none", "Nothing"
        WITHDRAW = "withdraw", "Withdraw only"
        GRANT_WITHDRAW = "grant_withdraw", "Grant and withdraw"

    class Status(models.TextChoices):
        INVITED = "invited", "Invited by the label"
        REQUESTED = "requested", "Requested by the artist"
        ACTIVE = "active", "Active"
        DECLINED = "declined", "Declined"
        ENDED = "ended", "Ended"

    # PROTECT: ending a delegation is audited and both sides are told, so it is
    # never a silent side effect of deleting the account (accounts.services does it).
    artist = models.ForeignKey(User, on_delete=models.PROTECT, related_name="delegations")
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="delegations")
    status = models.CharField(max_length=16, choices=Status.choices)
    scopes = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = DelegationQuerySet.as_manager()

    class Meta:
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


# --- Data export ----------------------------------------------------------------------------


class DataExport(models.Model):
    """One "download my data" archive: built by a worker, linked by email, expiring."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for a worker")
        BUILDING = "building", _("Being built")
        READY = "ready", _("Ready to download")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")

    # In the link; the download is still served only to its owner.
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="data_exports")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    # A generated name in default storage, never anything the user chose.
    storage_name = models.CharField(max_length=255, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "expires_at"], name="accounts_export_due_idx")]

    def __str__(self) -> str:
        return f"Data export {self.uuid} of {self.user_id} ({self.status})"

    def is_expired(self, now=None) -> bool:
        if self.status == self.Status.EXPIRED:
            return True
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())
