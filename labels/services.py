"""Writes for labels: memberships, delegations, proposals and bulk changes.

Consent itself is still written only by consent.services; this module decides
what to ask of it and records the label's side (delegations, bulk changes).
"""

from __future__ import annotations

import secrets
import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping

from allauth.account.models import EmailAddress
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Delegation, Label, LabelInvitation, LabelMembership, User
from consent import services as consent_services
from consent.models import AuditEvent, ConsentProposal, Purpose
from consent.services import RequestMeta
from labels.models import ArtistInvitation
from notifications.models import Notification
from notifications.services import queue_notification
from tracks.models import Track

RESERVED_SLUGS = {"delegations", "proposals", "invitations", "join"}
Scope = Delegation.Scope
Status = Delegation.Status


class LabelError(Exception):
    """A request refused with a message fit to show the person who made it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- Labels and managers ------------------------------------------------------------------


def create_label(*, owner: User, name: str) -> Label:
    name = (name or "").strip()
    if not name:
        raise LabelError("A label needs a name.")
    base = slugify(name)[:60] or "label"
    # These are paths of their own under /labels/.
    if base in RESERVED_SLUGS:
        base = f"{base}-label"
    slug = base
    with transaction.atomic():
        n = 1
        while Label.objects.filter(slug=slug).exists():
            n += 1
            slug = f"{base}-{n}"
        label = Label.objects.create(name=name[:150], slug=slug)
        LabelMembership.objects.create(label=label, user=owner, role=LabelMembership.Role.OWNER)
    return label


def invite_manager(*, actor: User, label: Label, email: str) -> LabelInvitation:
    """Only a label owner invites; the email carries a one-time link."""
    if not LabelMembership.objects.filter(label=label, user=actor, role=LabelMembership.Role.OWNER).exists():
        raise LabelError("Only an owner of the label can invite managers.")
    email = User.objects.normalize_email((email or "").strip())
    if LabelMembership.objects.filter(label=label, user__email__iexact=email).exists():
        raise LabelError(f"{email} already manages this label.")
    with transaction.atomic():
        invitation = LabelInvitation.objects.create(
            label=label, email=email, token=secrets.token_urlsafe(32), invited_by=actor
        )
        queue_notification(
            kind=Notification.Kind.LABEL_INVITATION,
            to_email=email,
            dedupe_key=f"label-invitation:{invitation.pk}",
            context={
                "label_name": label.name,
                "inviter": actor.display_name or actor.email,
                "accept_path": reverse("labels:accept_manager", args=[invitation.token]),
            },
        )
    return invitation


def accept_manager_invitation(*, user: User, token: str) -> LabelMembership:
    with transaction.atomic():
        invitation = LabelInvitation.objects.select_for_update().select_related("label").filter(token=token).first()
        if invitation is None or invitation.accepted_at is not None:
            raise LabelError("This invitation link is not valid any more.")
        if invitation.email.lower() != user.email.lower():
            raise LabelError("This invitation was sent to another email address; sign in with that address.")
        membership, _ = LabelMembership.objects.get_or_create(
            label=invitation.label, user=user, defaults={"role": invitation.role}
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def labels_of(user: User) -> QuerySet[Label]:
    return Label.objects.filter(memberships__user=user)


# --- Delegations --------------------------------------------------------------------------


def clean_scopes(
    raw: Mapping[str, str], *, confirmed: Collection[str] = (), previous: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every purpose gets a valid scope; letting the label grant a confirmation purpose needs its own confirmation.

    A power the artist already confirmed (in `previous`) is not asked again.
    """
    previous = previous or {}
    purposes = list(Purpose.objects.all())
    scopes: dict[str, str] = {}
    for purpose in purposes:
        value = raw.get(purpose.slug, Scope.NONE) or Scope.NONE
        if value not in Scope.values:
            raise LabelError(f"{value!r} is not a choice for {purpose.name}.")
        if (
            value == Scope.GRANT_WITHDRAW
            and purpose.requires_confirmation
            and purpose.slug not in confirmed
            and previous.get(purpose.slug) != Scope.GRANT_WITHDRAW
        ):
            raise LabelError(f"Letting a label grant {purpose.name} needs its own confirmation.")
        scopes[purpose.slug] = value
    unknown = set(raw) - {p.slug for p in purposes}
    if unknown:
        raise LabelError(f"Unknown purpose: {', '.join(sorted(unknown))}.")
    return scopes


def _scope_changes(old: Mapping[str, str], new: Mapping[str, str]) -> list[tuple[str, str, str]]:
    slugs = list(Purpose.objects.values_list("slug", flat=True))
    return [(s, old.get(s, Scope.NONE), new.get(s, Scope.NONE)) for s in slugs]


def _notify_delegation(delegation: Delegation, *, headline: str, receipt_id, actor: User | None) -> None:
    """Both sides hear of every delegation event: the artist and each member of the label."""
    names = dict(Purpose.objects.values_list("slug", "name"))
    scope_lines = [
        {"name": names.get(slug, slug), "scope": Scope(value).label}
        for slug, value in delegation.scopes.items()
        if slug in names
    ]
    key = receipt_id or uuid.uuid4()
    context = {
        "headline": headline,
        "label_name": delegation.label.name,
        "artist_name": delegation.artist.display_name or delegation.artist.email,
        "actor_name": (actor.display_name or actor.email) if actor else "the portal",
        "status": delegation.get_status_display(),
        "scopes": scope_lines if delegation.status == Status.ACTIVE else [],
        "artist_path": reverse("labels:delegations"),
        "label_path": reverse("labels:roster", args=[delegation.label.slug]),
    }
    queue_notification(
        kind=Notification.Kind.DELEGATION_CHANGED,
        to_email=delegation.artist.email,
        dedupe_key=f"delegation:{key}:{delegation.artist_id}",
        context={**context, "for_artist": True},
        recipient=delegation.artist,
    )
    for member in User.objects.filter(label_memberships__label=delegation.label, is_active=True):
        queue_notification(
            kind=Notification.Kind.DELEGATION_CHANGED,
            to_email=member.email,
            dedupe_key=f"delegation:{key}:{member.pk}",
            context={**context, "for_artist": False},
            recipient=member,
        )


def _transition(
    *,
    actor: User | None,
    delegation: Delegation,
    status: str,
    scopes: Mapping[str, str] | None,
    headline: str,
    request_meta: RequestMeta | None,
    end: bool = False,
    accepted: bool = False,
    created: bool = False,
) -> Delegation:
    """Change a delegation under the artist's chain lock, audit it and tell both sides.

    `created`: the row was just inserted; its first event starts from no status.
    """
    old_status, old_scopes = ("" if created else delegation.status), dict(delegation.scopes)
    new_scopes = dict(scopes) if scopes is not None else old_scopes
    # Only an active delegation confers power, so the audit shows power moving
    # when it becomes active and when it stops.
    power_before = old_scopes if old_status == Status.ACTIVE else {}
    power_after = {} if end or status != Status.ACTIVE else new_scopes
    changes = [(None, old_status, status), *_scope_changes(power_before, power_after)]

    def apply() -> None:
        fresh = Delegation.objects.select_for_update().get(pk=delegation.pk)
        if not created and (fresh.status != old_status or fresh.ended_at is not None):
            raise LabelError("This delegation changed in the meantime; reload the page.")
        delegation.status = status
        delegation.scopes = new_scopes
        now = timezone.now()
        if accepted:
            delegation.accepted_at = now
        if end:
            delegation.ended_at = now
        delegation.save(update_fields=["status", "scopes", "accepted_at", "ended_at"])

    with transaction.atomic():
        result = consent_services.record_delegation_events(
            actor=actor,
            artist_id=delegation.artist_id,
            label_id=delegation.label_id,
            changes=changes,
            request_meta=request_meta,
            apply=apply,
        )
        _notify_delegation(delegation, headline=headline, receipt_id=result.receipt_id, actor=actor)
    return delegation


def _open_delegation_exists(artist: User, label: Label) -> bool:
    return Delegation.objects.open().filter(artist=artist, label=label).exists()


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
        raise LabelError("Only a member of the label can invite artists.")
    email = User.objects.normalize_email((email or "").strip())
    if "@" not in email or len(email) > 254:
        raise LabelError("Enter a valid email address.")
    try:
        with transaction.atomic():
            invitation = ArtistInvitation.objects.create(
                label=label, email=email, token=secrets.token_urlsafe(32), invited_by=actor
            )
            queue_notification(
                kind=Notification.Kind.LABEL_INVITATION,
                to_email=email,
                dedupe_key=f"artist-invitation:{invitation.pk}",
                context={
                    "for_artist": True,
                    "label_name": label.name,
                    "inviter": actor.display_name or actor.email,
                    "accept_path": reverse("labels:artist_invitation", args=[invitation.token]),
                },
            )
    except IntegrityError:
        # The one-pending-invitation constraint: the label's own earlier invitation.
        raise LabelError(f"{email} already has an invitation from this label waiting.") from None
    return invitation


def _verified_emails(user: User) -> QuerySet:
    return EmailAddress.objects.filter(user=user, verified=True).annotate(address=Lower("email")).values("address")


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
        raise LabelError("This invitation was already answered.")
    if not invitations_for(user).filter(pk=fresh.pk).exists():
        raise LabelError(
            "This invitation was sent to another email address; sign in with that address "
            "(or add and verify it in your account settings)."
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
        if LabelMembership.objects.filter(label=label, user=artist).exists():
            raise LabelError("Members of the label cannot be on its roster.")
        if _open_delegation_exists(artist, label):
            raise LabelError("You already have an open delegation, invitation or request with this label.")
        # Saved as invited (which confers nothing) and made active by the
        # transition, under the artist's chain lock like every delegation change.
        delegation = Delegation(artist=artist, label=label, status=Status.INVITED, created_by=fresh.invited_by)
        delegation.save()
        _transition(
            created=True,
            actor=artist,
            delegation=delegation,
            status=Status.ACTIVE,
            scopes=clean,
            headline=f"{artist} joined the roster of {label.name}",
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


def request_to_join(
    *,
    artist: User,
    label: Label,
    scopes: Mapping[str, str],
    confirmed: Collection[str] = (),
    request_meta: RequestMeta | None = None,
) -> Delegation:
    """An artist asks to join a roster, saying up front what the label may do."""
    clean = clean_scopes(scopes, confirmed=confirmed)
    if LabelMembership.objects.filter(label=label, user=artist).exists():
        raise LabelError("Members of the label cannot be on its roster.")
    if _open_delegation_exists(artist, label):
        raise LabelError("You already have an open delegation, invitation or request with this label.")
    delegation = Delegation(artist=artist, label=label, status=Status.REQUESTED, scopes=clean, created_by=artist)
    with transaction.atomic():
        delegation.save()
        _transition(
            created=True,
            actor=artist,
            delegation=delegation,
            status=Status.REQUESTED,
            scopes=clean,
            headline=f"{artist} asked to join the roster of {label.name}",
            request_meta=request_meta,
        )
    return delegation


def accept_invitation(
    *,
    artist: User,
    delegation: Delegation,
    scopes: Mapping[str, str],
    confirmed: Collection[str] = (),
    request_meta: RequestMeta | None = None,
) -> Delegation:
    if delegation.artist_id != artist.pk or delegation.status != Status.INVITED:
        raise LabelError("There is no open invitation to accept.")
    clean = clean_scopes(scopes, confirmed=confirmed)
    return _transition(
        actor=artist,
        delegation=delegation,
        status=Status.ACTIVE,
        scopes=clean,
        headline=f"{artist} joined the roster of {delegation.label.name}",
        request_meta=request_meta,
        accepted=True,
    )


def approve_request(*, actor: User, delegation: Delegation, request_meta: RequestMeta | None = None) -> Delegation:
    if delegation.status != Status.REQUESTED:
        raise LabelError("There is no open request to approve.")
    return _transition(
        actor=actor,
        delegation=delegation,
        status=Status.ACTIVE,
        scopes=delegation.scopes,
        headline=f"{delegation.label.name} approved {delegation.artist}'s request to join its roster",
        request_meta=request_meta,
        accepted=True,
    )


def decline(*, actor: User, delegation: Delegation, request_meta: RequestMeta | None = None) -> Delegation:
    if delegation.status not in (Status.INVITED, Status.REQUESTED):
        raise LabelError("Only an open invitation or request can be declined.")
    return _transition(
        actor=actor,
        delegation=delegation,
        status=Status.DECLINED,
        scopes=delegation.scopes,
        headline=f"The delegation between {delegation.artist} and {delegation.label.name} was declined",
        request_meta=request_meta,
        end=True,
    )


def change_scopes(
    *,
    artist: User,
    delegation: Delegation,
    scopes: Mapping[str, str],
    confirmed: Collection[str] = (),
    request_meta: RequestMeta | None = None,
) -> Delegation:
    if delegation.artist_id != artist.pk or delegation.status != Status.ACTIVE:
        raise LabelError("Only an active delegation can be changed.")
    clean = clean_scopes(scopes, confirmed=confirmed, previous=delegation.scopes)
    return _transition(
        actor=artist,
        delegation=delegation,
        status=Status.ACTIVE,
        scopes=clean,
        headline=f"{artist} changed what {delegation.label.name} may do",
        request_meta=request_meta,
    )


def end_delegation(*, artist: User, delegation: Delegation, request_meta: RequestMeta | None = None) -> Delegation:
    """One step, at once, and no consent state changes: what was granted stays granted."""
    if delegation.artist_id != artist.pk or delegation.ended_at is not None:
        raise LabelError("This delegation is not open.")
    return _transition(
        actor=artist,
        delegation=delegation,
        status=Status.ENDED,
        scopes=delegation.scopes,
        headline=f"{artist} ended the delegation to {delegation.label.name}",
        request_meta=request_meta,
        end=True,
    )


# --- The roster -------------------------------------------------------------------------------


def roster_tracks(label: Label) -> QuerySet[Track]:
    """Every track of every artist with an active delegation to `label`."""
    return Track.objects.filter(owner_id__in=Delegation.objects.active().filter(label=label).values("artist_id"))


# --- Proposals --------------------------------------------------------------------------------


def propose_grant(
    *, actor: User, label: Label, tracks: QuerySet[Track], purpose_slug: str, message: str = ""
) -> list[ConsentProposal]:
    """One proposal per artist for the tracks not yet granted; the artist decides."""
    purpose = Purpose.objects.filter(slug=purpose_slug).first()
    if purpose is None:
        raise LabelError("Unknown purpose.")
    scoped = (
        roster_tracks(label)
        .filter(pk__in=tracks.values("pk"))
        .exclude(consents__purpose=purpose, consents__granted=True)
    )
    by_owner: dict[int, list[int]] = defaultdict(list)
    for pk, owner_id in scoped.values_list("pk", "owner_id"):
        by_owner[owner_id].append(pk)
    if not by_owner:
        raise LabelError(f"Every selected track already allows {purpose.name}; there is nothing to propose.")
    artists = User.objects.in_bulk(list(by_owner))
    created = []
    with transaction.atomic():
        for owner_id, track_ids in by_owner.items():
            proposal = ConsentProposal.objects.create(
                label=label, artist_id=owner_id, proposed_by=actor, purpose=purpose, message=message[:2000]
            )
            ConsentProposal.tracks.through.objects.bulk_create(
                [ConsentProposal.tracks.through(consentproposal_id=proposal.pk, track_id=t) for t in track_ids]
            )
            artist = artists[owner_id]
            queue_notification(
                kind=Notification.Kind.CONSENT_PROPOSAL,
                to_email=artist.email,
                dedupe_key=f"proposal:{proposal.pk}",
                context={
                    "artist_name": artist.display_name or artist.email,
                    "label_name": label.name,
                    "purpose_name": purpose.name,
                    "track_count": len(track_ids),
                    "message": message[:2000],
                    "proposal_path": reverse("labels:proposal", args=[proposal.pk]),
                },
                recipient=artist,
            )
            created.append(proposal)
    return created


def decide_proposal(
    *,
    artist: User,
    proposal: ConsentProposal,
    accept: bool,
    confirmed: bool = False,
    request_meta: RequestMeta | None = None,
):
    """Accepting is the artist's own grant, through the consent service; declining changes nothing."""
    if proposal.artist_id != artist.pk or proposal.status != ConsentProposal.Status.PENDING:
        raise LabelError("This proposal is not waiting for an answer.")
    with transaction.atomic():
        claimed = ConsentProposal.objects.filter(pk=proposal.pk, status=ConsentProposal.Status.PENDING).update(
            status=ConsentProposal.Status.ACCEPTED if accept else ConsentProposal.Status.DECLINED,
            decided_at=timezone.now(),
        )
        if not claimed:
            raise LabelError("This proposal is not waiting for an answer.")
        result = None
        if accept:
            slug = proposal.purpose.slug
            result = consent_services.change_consent(
                actor=artist,
                tracks=Track.objects.filter(owner=artist, pk__in=proposal.tracks.values("pk")),
                changes={slug: True},
                source=AuditEvent.Source.WEB,
                request_meta=request_meta,
                confirmed_purposes=[slug] if confirmed else [],
            )
    proposal.refresh_from_db()
    return result
