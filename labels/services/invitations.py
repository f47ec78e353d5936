"""A label's invitations to artists, addressed to an email (an account need not exist yet)."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping
from typing import Any

from allauth.account.models import EmailAddress
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import User
from labels.models import ArtistInvitation, Delegation, Label, LabelMembership
from labels.notices import DelegationEvent, invitation_notice
from labels.services.delegations import check_can_join, clean_scopes, transition
from labels.services.errors import LabelError
from notifications.services import queue_notice
from platformkit.request_meta import RequestMeta

Status = Delegation.Status


def invite_artist(
    *, actor: User, label: Label, email: str, request_meta: RequestMeta | None = None
) -> ArtistInvitation:
    """Invite an email address to the roster; nothing is delegated until the artist accepts.

    The answer is the same whether or not the address has an account (and
    whether or not its owner is already on the roster): a label must not be
    able to probe who uses the portal. The invitation goes by email; an
    artist who signs up with that address later finds it waiting.
    """
    if not LabelMembership.objects.filter(label=label, user=actor).exists():
        raise LabelError(gettext("Only a member of the label can invite artists."))
    email = User.objects.normalize_email((email or "").strip())
    if "@" not in email or len(email) > 254:
        raise LabelError(gettext("Enter a valid email address."))
    try:
        with transaction.atomic():
            invitation = ArtistInvitation.objects.create(
                label=label, email=email, token=secrets.token_urlsafe(32), invited_by=actor
            )
            queue_notice(invitation_notice(invitation))
    except IntegrityError:
        # The one-pending-invitation constraint: the label's own earlier invitation.
        raise LabelError(
            gettext("%(email)s already has an invitation from this label waiting.") % {"email": email}
        ) from None
    return invitation


def _verified_emails(user: User) -> QuerySet[Any, Any]:
    emails: QuerySet[Any, Any] = (
        EmailAddress.objects.filter(user=user, verified=True).annotate(address=Lower("email")).values("address")
    )
    return emails


def invitations_for(user: User) -> QuerySet[ArtistInvitation]:
    """Pending roster invitations addressed to any of the user's verified email addresses."""
    return (
        ArtistInvitation.objects.pending()
        .annotate(address=Lower("email"))
        .filter(address__in=_verified_emails(user))
        .select_related("label")
    )


def _answerable(user: User, invitation: ArtistInvitation) -> ArtistInvitation:
    """Lock the invitation and check that `user` may answer it now."""
    fresh = ArtistInvitation.objects.select_for_update().select_related("label").filter(pk=invitation.pk).first()
    if fresh is None or not fresh.pending:
        raise LabelError(gettext("This invitation was already answered."))
    if not invitations_for(user).filter(pk=fresh.pk).exists():
        raise LabelError(
            gettext(
                "This invitation was sent to another email address; sign in with that address "
                "(or add and verify it in your account settings)."
            )
        )
    return fresh


def accept_artist_invitation(
    *,
    artist: User,
    invitation: ArtistInvitation,
    scopes: Mapping[str, str],
    confirmed: Collection[str] = (),
    request_meta: RequestMeta | None = None,
) -> Delegation:
    """The artist joins the roster on their own terms: the delegation starts now, audited, both sides told."""
    clean = clean_scopes(scopes, confirmed=confirmed)
    with transaction.atomic():
        fresh = _answerable(artist, invitation)
        label = fresh.label
        check_can_join(artist, label)
        # Saved as invited (which confers nothing) and made active by the
        # transition, under the artist's chain lock like every delegation change.
        delegation = Delegation(artist=artist, label=label, status=Status.INVITED, created_by=fresh.invited_by)
        delegation.save()
        transition(
            created=True,
            actor=artist,
            delegation=delegation,
            status=Status.ACTIVE,
            scopes=clean,
            event=DelegationEvent.JOINED,
            request_meta=request_meta,
            accepted=True,
        )
        ArtistInvitation.objects.filter(pk=fresh.pk).update(
            accepted_at=timezone.now(), answered_by=artist, delegation=delegation
        )
    return delegation


def decline_artist_invitation(*, artist: User, invitation: ArtistInvitation) -> None:
    """Nothing was delegated, so nothing is audited; the invitation simply closes."""
    with transaction.atomic():
        fresh = _answerable(artist, invitation)
        ArtistInvitation.objects.filter(pk=fresh.pk).update(declined_at=timezone.now(), answered_by=artist)
