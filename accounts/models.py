from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower


class UserManager(BaseUserManager):
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
    email = models.EmailField("email address", unique=True)
    display_name = models.CharField(
        max_length=150,
        help_text="How your name appears to labels and in emails.",
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

    artist = models.ForeignKey(User, on_delete=models.CASCADE, related_name="delegations")
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
