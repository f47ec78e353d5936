import hashlib
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def message_id_for(dedupe_key: str) -> str:
    """A Message-ID that is the same for every attempt to send one notice.

    If a send is ever repeated (a worker killed between handing the message to
    SMTP and recording it), mail systems see one message, not two.
    """
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:40]
    domain = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"<{digest}@{domain}>"


class Notification(models.Model):
    """One email in the transactional outbox.

    Written in the same transaction as the change it reports, so a notice
    exists if and only if the change does; delivered afterwards by Celery.
    """

    class Kind(models.TextChoices):
        CONSENT_RECEIPT = "consent_receipt", _("Consent receipt")
        CHANGED_ON_BEHALF = "changed_on_behalf", _("Change made on your behalf")
        POLICY_CHANGE = "policy_change", _("Policy change")
        ACCOUNT_EMAIL = "account_email", _("Account email")
        DELEGATION_CHANGED = "delegation_changed", _("Label delegation changed")
        LABEL_INVITATION = "label_invitation", _("Label invitation")
        CONSENT_PROPOSAL = "consent_proposal", _("Consent proposal from a label")
        API_ACK_OVERDUE = "api_ack_overdue", _("Downstream system late to apply a withdrawal (staff)")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    to_email = models.EmailField()
    kind = models.CharField(max_length=32, choices=Kind.choices)
    context = models.JSONField(default=dict, blank=True)
    dedupe_key = models.CharField(max_length=200, unique=True)
    # Groups the notices of one announcement (a policy version) for progress.
    campaign = models.CharField(max_length=64, blank=True, db_index=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Not a column: the error of the delivery attempt in progress, kept on the row between sending and recording.
    error: str

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The sweep's question: what is due?
            models.Index(fields=["status", "next_attempt_at"], name="notif_status_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.to_email} ({self.status})"

    @property
    def message_id(self) -> str:
        # Derived, not stored: rows written by INSERT ... SELECT get it too.
        return message_id_for(self.dedupe_key)
