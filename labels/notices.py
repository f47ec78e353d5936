"""Builders of the labels' notices: each takes the domain objects and returns the outbox rows.

Kinds: label_invitation (to a manager or to an artist), delegation_changed (to
both sides), consent_proposal; templates under templates/emails/<kind>/.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.urls import reverse

from accounts.models import User
from consent.models import Purpose
from labels.models import ArtistInvitation, ConsentProposal, Delegation, LabelInvitation
from notifications.models import Notification
from notifications.services import NewNotification


def _name(user: User | None) -> str:
    return (user.display_name or user.email) if user else "the portal"


def invitation_notice(invitation: LabelInvitation | ArtistInvitation) -> NewNotification:
    """To a future manager of the label, or to an artist invited to its roster."""
    for_artist = isinstance(invitation, ArtistInvitation)
    if for_artist:
        key, accept_path = "artist-invitation", reverse("labels:artist_invitation", args=[invitation.token])
    else:
        key, accept_path = "label-invitation", reverse("labels:accept_manager", args=[invitation.token])
    context: dict[str, Any] = {"for_artist": True} if for_artist else {}
    context.update(label_name=invitation.label.name, inviter=_name(invitation.invited_by), accept_path=accept_path)
    return NewNotification(
        kind=Notification.Kind.LABEL_INVITATION,
        to_email=invitation.email,
        dedupe_key=f"{key}:{invitation.pk}",
        context=context,
    )


def delegation_notices(
    delegation: Delegation, *, headline: str, receipt_id: Any, actor: User | None
) -> list[NewNotification]:
    """Both sides hear of every delegation event: the artist and each member of the label."""
    names = dict(Purpose.objects.values_list("slug", "name"))
    scope_lines = [
        # The outbox stores JSON: the scope's words as text (in the language active when it is queued).
        {"name": names.get(slug, slug), "scope": str(Delegation.Scope(value).label)}
        for slug, value in delegation.scopes.items()
        if slug in names
    ]
    key = receipt_id or uuid.uuid4()
    context = {
        "headline": headline,
        "label_name": delegation.label.name,
        "artist_name": _name(delegation.artist),
        "actor_name": _name(actor),
        "status": delegation.get_status_display(),
        "scopes": scope_lines if delegation.status == Delegation.Status.ACTIVE else [],
        "artist_path": reverse("labels:delegations"),
        "label_path": reverse("labels:roster", args=[delegation.label.slug]),
    }
    artist = delegation.artist
    members = User.objects.filter(label_memberships__label=delegation.label, is_active=True)
    return [
        NewNotification(
            kind=Notification.Kind.DELEGATION_CHANGED,
            to_email=person.email,
            dedupe_key=f"delegation:{key}:{person.pk}",
            context={**context, "for_artist": for_artist},
            recipient=person,
        )
        for person, for_artist in [(artist, True), *((member, False) for member in members)]
    ]


def proposal_notice(proposal: ConsentProposal, *, artist: User, track_count: int) -> NewNotification:
    return NewNotification(
        kind=Notification.Kind.CONSENT_PROPOSAL,
        to_email=artist.email,
        dedupe_key=f"proposal:{proposal.pk}",
        context={
            "artist_name": _name(artist),
            "label_name": proposal.label.name,
            "purpose_name": proposal.purpose.name,
            "track_count": track_count,
            "message": proposal.message,
            "proposal_path": reverse("labels:proposal", args=[proposal.pk]),
        },
        recipient=artist,
    )
