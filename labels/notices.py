"""Builders of the labels' notices: each takes the domain objects and returns the outbox rows.

Kinds: label_invitation (to a manager or to an artist), delegation_changed (to
both sides), consent_proposal; templates under templates/emails/<kind>/.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext

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


class DelegationEvent:
    """What happened to a delegation: the outbox stores this key, the email says it in the recipient's language."""

    REQUESTED = "requested"
    JOINED = "joined"
    APPROVED = "approved"
    DECLINED = "declined"
    SCOPES_CHANGED = "scopes_changed"
    ENDED = "ended"
    ACCOUNT_DELETED = "account_deleted"


def delegation_headline(event: str, *, artist: str, label: str) -> str:
    """The headline of a delegation email, in the active language (the recipient's, at render time)."""
    words = {
        DelegationEvent.REQUESTED: gettext("%(artist)s asked to join the roster of %(label)s"),
        DelegationEvent.JOINED: gettext("%(artist)s joined the roster of %(label)s"),
        DelegationEvent.APPROVED: gettext("%(label)s approved %(artist)s's request to join its roster"),
        DelegationEvent.DECLINED: gettext("The delegation between %(artist)s and %(label)s was declined"),
        DelegationEvent.SCOPES_CHANGED: gettext("%(artist)s changed what %(label)s may do"),
        DelegationEvent.ENDED: gettext("%(artist)s ended the delegation to %(label)s"),
        DelegationEvent.ACCOUNT_DELETED: gettext(
            "%(artist)s deleted their account: the delegation to %(label)s has ended"
        ),
    }
    if event not in words:
        raise ValueError(f"Unknown delegation event {event!r}.")
    return words[event] % {"artist": artist, "label": label}


def delegation_status_words(status: str) -> str:
    """A delegation status in the active language; a status stored as words (older rows) is shown as stored."""
    words: dict[str, str] = {
        Delegation.Status.INVITED: gettext("Invited by the label"),
        Delegation.Status.REQUESTED: gettext("Requested by the artist"),
        Delegation.Status.ACTIVE: gettext("Active"),
        Delegation.Status.DECLINED: gettext("Declined"),
        Delegation.Status.ENDED: gettext("Ended"),
    }
    return words.get(status, status)


def scope_words(scope: str) -> str:
    """A scope value in the active language; one stored as words (older rows) is shown as stored."""
    if scope in Delegation.Scope.values:
        return str(Delegation.Scope(scope).label)
    return scope


def delegation_notices(
    delegation: Delegation, *, event: str, receipt_id: Any, actor: User | None
) -> list[NewNotification]:
    """Both sides hear of every delegation event: the artist and each member of the label.

    The context holds facts (the event, names, status and scope values), never
    sentences: each recipient's email is worded in their own language when it
    is rendered (notifications.rendering).
    """
    delegation_headline(event, artist="", label="")  # an unknown event fails here, not in the worker
    names = dict(Purpose.objects.values_list("slug", "name"))
    scope_lines = [
        {"name": names.get(slug, slug), "scope": value} for slug, value in delegation.scopes.items() if slug in names
    ]
    key = receipt_id or uuid.uuid4()
    context = {
        "event": event,
        "label_name": delegation.label.name,
        "artist_name": _name(delegation.artist),
        "actor_name": _name(actor),
        "status": delegation.status,
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
