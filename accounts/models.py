import uuid
from typing import ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.hooks import delete_through_service


class UserQuerySet(models.QuerySet["User"]):
    def delete(self):
        """Each account through the deletion service, never a bare SQL cascade.

        An admin bulk action, a script or a shell that deletes users gets the
        same withdrawals, audit events, file removal and notices as the
        settings page (with the system as the actor).
        """
        count = 0
        for user in self.order_by("pk"):
            delete_through_service(user)
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

    # Removed columns: django-stubs types them as str on AbstractUser, which cannot express removal.
    username = None  # type: ignore[assignment]
    first_name = None  # type: ignore[assignment]
    last_name = None  # type: ignore[assignment]
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

    objects: ClassVar[UserManager] = UserManager()

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
        delete_through_service(self)
        return 1, {self._meta.label: 1}


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
