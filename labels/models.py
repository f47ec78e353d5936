"""Models of the labels app.

Label, LabelMembership, LabelInvitation and Delegation still live in accounts,
BulkChange in consent (a later restructuring moves them here).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower


class ArtistInvitationQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(accepted_at__isnull=True, declined_at__isnull=True)


class ArtistInvitation(models.Model):
    """A label's invitation to an email address to join its roster.

    Addressed to an email, not to an account, so that inviting says nothing
    about whether the address has an account: the label learns who the artist
    is only when the artist, signed in with a verified copy of that address,
    accepts. Nothing is delegated (and nothing is in the artist's audit log)
    before then.
    """

    label = models.ForeignKey("accounts.Label", on_delete=models.CASCADE, related_name="artist_invitations")
    email = models.EmailField()
    token = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    delegation = models.ForeignKey(
        "accounts.Delegation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

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
