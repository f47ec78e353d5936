"""Writes for labels: memberships, delegations, proposals and bulk changes.

Consent itself is still written only by consent.services; this module decides
what to ask of it and records the label's side (delegations, bulk changes).
"""

from __future__ import annotations

import secrets
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Delegation, Label, LabelInvitation, LabelMembership, User
from consent import services as consent_services
from consent.models import AuditEvent, BulkChange, ConsentProposal, Purpose
from consent.services import (
    ConsentError,
    ConsentPermissionDenied,
    RequestMeta,
    can_change_consent,
    delegated_scopes,
)
from notifications.models import Notification
from notifications.services import queue_notification
from tracks.models import Track

RESERVED_SLUGS = {"delegations", "proposals", "invitations"}
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
    actor: User,
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


def invite_artist(*, actor: User, label: Label, email: str, request_meta: RequestMeta | None = None) -> Delegation:
    """A label asks an artist to join its roster; nothing is delegated until the artist accepts."""
    artist = User.objects.filter(email__iexact=(email or "").strip(), is_active=True).first()
    if artist is None:
        raise LabelError("No artist has an account with that email address; ask them to sign up first.")
    if LabelMembership.objects.filter(label=label, user=artist).exists():
        raise LabelError("Members of the label cannot be on its roster.")
    if _open_delegation_exists(artist, label):
        raise LabelError(f"{artist} is already on the roster or has an open invitation or request.")
    delegation = Delegation(artist=artist, label=label, status=Status.INVITED, created_by=actor)
    with transaction.atomic():
        delegation.save()
        _transition(
            created=True,
            actor=actor,
            delegation=delegation,
            status=Status.INVITED,
            scopes={},
            headline=f"{label.name} invited {artist} to its roster",
            request_meta=request_meta,
        )
    return delegation


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


# --- Bulk changes -----------------------------------------------------------------------------


def _reason(scope: str, granted: bool) -> str:
    if scope == Scope.WITHDRAW and granted:
        return "may only withdraw"
    return "not delegated"


def _edit_counts(actor, label, tracks, changes, purposes) -> tuple[int, int, int, list[dict]]:
    """(will change, already so, refused, refusals per artist and purpose), from one aggregate query."""
    annotations = {
        f"g_{slug}": Count("consents", filter=Q(consents__purpose_id=p.pk, consents__granted=True))
        for slug, p in purposes.items()
    }
    per_owner = list(
        roster_tracks(label)
        .filter(pk__in=tracks.values("pk"))
        .order_by()
        .values("owner_id")
        .annotate(total=Count("pk", distinct=True), **annotations)
    )
    delegations = delegated_scopes(actor, [row["owner_id"] for row in per_owner], label_id=label.pk)
    names = dict(User.objects.filter(pk__in=[r["owner_id"] for r in per_owner]).values_list("pk", "display_name"))
    will_change = already = refused = 0
    detail = []
    for row in per_owner:
        owner = row["owner_id"]
        for slug, granted in changes.items():
            have = row[f"g_{slug}"]
            moving = row["total"] - have if granted else have
            already += row["total"] - moving
            if not moving:
                continue
            if can_change_consent(actor, owner_id=owner, granted=granted, purpose_slug=slug, delegations=delegations):
                will_change += moving
            else:
                refused += moving
                scope = delegations.get(owner, {}).get(slug, Scope.NONE)
                detail.append(
                    {
                        "artist": names.get(owner, ""),
                        "purpose": purposes[slug].name,
                        "tracks": moving,
                        "reason": _reason(scope, granted),
                    }
                )
    return will_change, already, refused, detail


def preview_bulk_edit(
    *,
    actor: User,
    label: Label,
    tracks: QuerySet[Track],
    changes: Mapping[str, bool],
    filter_params: Mapping[str, str],
    selection: list[str] | None,
    confirmed: Collection[str] = (),
) -> BulkChange:
    """Count what a bulk edit would do, per artist, in one aggregate query; save it as a draft."""
    purposes = {p.slug: p for p in Purpose.objects.filter(slug__in=list(changes))}
    if not purposes or set(changes) - purposes.keys():
        raise LabelError("Choose at least one known purpose.")
    missing = [
        p.name for slug, p in purposes.items() if changes[slug] and p.requires_confirmation and slug not in confirmed
    ]
    if missing:
        raise LabelError(f"Granting {', '.join(missing)} needs its own confirmation: tick the box that says so.")
    will_change, already, refused, detail = _edit_counts(actor, label, tracks, changes, purposes)
    return BulkChange.objects.create(
        label=label,
        created_by=actor,
        kind=BulkChange.Kind.EDIT,
        filter=dict(filter_params),
        selection=selection,
        changes=dict(changes),
        confirmed_purposes=list(confirmed),
        will_change=will_change,
        already=already,
        refused=refused,
        refused_detail=detail,
        progress_total=will_change,
    )


def confirm_bulk_change(*, actor: User, bulk_change: BulkChange) -> bool:
    """Queue or run a previewed change. Returns True when it was handed to Celery."""
    from labels.tasks import apply_bulk_change_task

    if bulk_change.status != BulkChange.Status.DRAFT:
        raise LabelError("This change was already confirmed.")
    if bulk_change.created_by_id != actor.pk:
        raise LabelError("Only the manager who previewed a change can confirm it.")
    queued = bulk_change.will_change > settings.LABELS_BULK_SYNC_MAX_CELLS
    updated = BulkChange.objects.filter(pk=bulk_change.pk, status=BulkChange.Status.DRAFT).update(
        status=BulkChange.Status.QUEUED
    )
    if not updated:
        raise LabelError("This change was already confirmed.")
    if queued:
        transaction.on_commit(lambda: apply_bulk_change_task.delay(bulk_change.pk))
        return True
    apply_bulk_change(bulk_change.pk)
    return False


def _chunks_of_artists(counts: Iterable[tuple[int, int]], limit: int) -> list[list[int]]:
    """Whole artists per chunk, so each artist is in exactly one consent call (one email)."""
    chunks: list[list[int]] = []
    current: list[int] = []
    size = 0
    for owner, n in counts:
        if current and size + n > limit:
            chunks.append(current)
            current, size = [], 0
        current.append(owner)
        size += n
    if current:
        chunks.append(current)
    return chunks


def apply_bulk_change(bulk_change_id: int, *, request_meta: RequestMeta | None = None) -> BulkChange | None:
    """Apply a confirmed change, artist chunk by artist chunk, committing progress after each.

    The roster and the delegations are read again now, not at preview time: an
    artist who ended a delegation since the preview is refused, not changed.
    """
    claimed = BulkChange.objects.filter(pk=bulk_change_id, status=BulkChange.Status.QUEUED).update(
        status=BulkChange.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    bulk = BulkChange.objects.select_related("label", "created_by").get(pk=bulk_change_id)
    actor = bulk.created_by
    try:
        if actor is None or not actor.is_active:
            # Without this, a deleted manager would become actor None: the system,
            # which may withdraw anything.
            raise LabelError("The manager who confirmed this change no longer has an active account.")
        if bulk.kind == BulkChange.Kind.EDIT:
            _apply_edit(bulk, actor, request_meta)
        else:
            _apply_states(bulk, actor, request_meta)
    except (ConsentError, LabelError) as exc:
        BulkChange.objects.filter(pk=bulk.pk).update(
            status=BulkChange.Status.FAILED, error=exc.message, finished_at=timezone.now()
        )
    except Exception as exc:
        BulkChange.objects.filter(pk=bulk.pk).update(
            status=BulkChange.Status.FAILED, error=f"Unexpected error: {type(exc).__name__}", finished_at=timezone.now()
        )
        raise
    else:
        # Cells that became "already so" since the preview are not counted on
        # the way; the bar ends full all the same.
        BulkChange.objects.filter(pk=bulk.pk).update(
            status=BulkChange.Status.DONE, finished_at=timezone.now(), progress_done=F("progress_total")
        )
    bulk.refresh_from_db()
    return bulk


def _record_progress(bulk: BulkChange, result, refused_cells: int, refused_detail: list, notified: int) -> None:
    bulk.applied += result.event_count if result else 0
    bulk.progress_done += (result.event_count if result else 0) + refused_cells
    bulk.artists_notified += notified
    bulk.refused += refused_cells
    if refused_detail:
        bulk.refused_detail = [*bulk.refused_detail, *refused_detail]
    bulk.save(update_fields=["applied", "progress_done", "artists_notified", "refused", "refused_detail"])


def _apply_edit(bulk: BulkChange, actor: User, request_meta) -> None:
    from labels.selectors import catalogue_tracks

    label = bulk.label
    changes = {slug: bool(v) for slug, v in bulk.changes.items()}
    selected = catalogue_tracks(label, bulk.filter, selection=bulk.selection)
    # Refusals are counted again now: a delegation may have narrowed or ended
    # since the preview, and the record must say what was refused when applied.
    previewed_cells = bulk.will_change + bulk.already + bulk.refused
    purposes = {p.slug: p for p in Purpose.objects.filter(slug__in=list(changes))}
    _, _, bulk.refused, bulk.refused_detail = _edit_counts(actor, label, selected, changes, purposes)
    bulk.save(update_fields=["refused", "refused_detail"])
    counts = list(selected.order_by("owner_id").values("owner_id").annotate(n=Count("pk")).values_list("owner_id", "n"))
    previewed_tracks = previewed_cells // max(1, len(changes))
    left = previewed_tracks - sum(n for _, n in counts)
    if left > 0:
        bulk.refused_detail = [
            *bulk.refused_detail,
            {"artist": "", "purpose": "", "tracks": left, "reason": "no longer in the roster"},
        ]
        bulk.save(update_fields=["refused_detail"])
    for owners in _chunks_of_artists(counts, settings.LABELS_BULK_CHUNK_TRACKS):
        delegations = delegated_scopes(actor, owners, label_id=label.pk)
        # Artists who allow the same subset of the change share one consent call.
        groups: dict[tuple, list[int]] = defaultdict(list)
        for owner in owners:
            allowed = tuple(
                sorted(
                    (slug, granted)
                    for slug, granted in changes.items()
                    if can_change_consent(
                        actor, owner_id=owner, granted=granted, purpose_slug=slug, delegations=delegations
                    )
                )
            )
            groups[allowed].append(owner)
        for allowed, group_owners in groups.items():
            if not allowed:
                continue
            try:
                with transaction.atomic():
                    result = consent_services.change_consent(
                        actor=actor,
                        tracks=selected.filter(owner_id__in=group_owners),
                        changes=dict(allowed),
                        source=AuditEvent.Source.BULK,
                        request_meta=request_meta,
                        confirmed_purposes=bulk.confirmed_purposes,
                        bulk_change=bulk,
                    )
                    _record_progress(bulk, result, 0, [], len(result.chain_heads))
            except ConsentPermissionDenied:
                _record_race(bulk, group_owners, dict(counts))


def _record_race(bulk: BulkChange, owners: list[int], track_counts: dict[int, int]) -> None:
    """A delegation narrowed or ended between our check and the service's locked one.

    The service refused the whole call and wrote nothing; say so and go on with
    the other artists.
    """
    bulk.refresh_from_db(fields=["refused", "refused_detail"])
    names = dict(User.objects.filter(pk__in=owners).values_list("pk", "display_name"))
    _record_progress(
        bulk,
        None,
        0,
        [
            {
                "artist": names.get(o, ""),
                "purpose": "",
                "tracks": track_counts.get(o, 0),
                "reason": "the artist changed the delegation while this was applied; nothing changed for them",
            }
            for o in owners
        ],
        0,
    )


def _apply_states(bulk: BulkChange, actor: User, request_meta) -> None:
    """CSV imports and undos: a possibly different answer per track."""
    label = bulk.label
    bulk.refused, bulk.refused_detail = 0, []
    states: dict[str, dict[str, bool]] = bulk.changes
    tracks = roster_tracks(label)
    owner_of: dict[str, int] = {}
    uuids = list(states)
    for start in range(0, len(uuids), 5000):
        batch = uuids[start : start + 5000]
        owner_of.update((str(u), o) for u, o in tracks.filter(uuid__in=batch).values_list("uuid", "owner_id"))
    per_owner: dict[int, list[str]] = defaultdict(list)
    for key in uuids:
        if key in owner_of:
            per_owner[owner_of[key]].append(key)
    gone = len(uuids) - len(owner_of)
    if gone:
        _record_progress(
            bulk, None, gone, [{"artist": "", "purpose": "", "tracks": gone, "reason": "no longer in the roster"}], 0
        )
    counts = sorted((owner, len(keys)) for owner, keys in per_owner.items())
    names = dict(User.objects.filter(pk__in=list(per_owner)).values_list("pk", "display_name"))
    for owners in _chunks_of_artists(counts, settings.LABELS_BULK_CHUNK_TRACKS):
        delegations = delegated_scopes(actor, owners, label_id=label.pk)
        wanted: dict[str, dict[str, bool]] = {}
        refused: dict[tuple[int, str, str], int] = defaultdict(int)
        for owner in owners:
            for key in per_owner[owner]:
                cells = {}
                for slug, granted in states[key].items():
                    if can_change_consent(
                        actor, owner_id=owner, granted=granted, purpose_slug=slug, delegations=delegations
                    ):
                        cells[slug] = granted
                    else:
                        scope = delegations.get(owner, {}).get(slug, Scope.NONE)
                        refused[(owner, slug, _reason(scope, granted))] += 1
                if cells:
                    wanted[key] = cells
        detail = [
            {"artist": names.get(o, ""), "purpose": slug, "tracks": n, "reason": reason}
            for (o, slug, reason), n in refused.items()
        ]
        try:
            with transaction.atomic():
                result = None
                if wanted:
                    result = consent_services.set_track_consents(
                        actor=actor,
                        tracks=tracks.filter(owner_id__in=owners),
                        states=wanted,
                        source=AuditEvent.Source.CSV if bulk.kind == BulkChange.Kind.CSV else AuditEvent.Source.BULK,
                        request_meta=request_meta,
                        confirmed_purposes=bulk.confirmed_purposes,
                        bulk_change=bulk,
                    )
                _record_progress(bulk, result, sum(refused.values()), detail, len(result.chain_heads) if result else 0)
        except ConsentPermissionDenied:
            _record_race(bulk, owners, dict(counts))


def undo_bulk_change(*, actor: User, bulk_change: BulkChange, confirmed: Collection[str] = ()) -> BulkChange:
    """Apply the reverse of every cell the change wrote, as a new bulk change (audited like any other).

    A cell changed again since (by the artist or anyone) is left as it is now.
    """
    window = settings.LABELS_UNDO_WINDOW_SECONDS
    if bulk_change.kind == BulkChange.Kind.UNDO:
        raise LabelError("An undo cannot itself be undone; make a new change instead.")
    if bulk_change.status != BulkChange.Status.DONE or bulk_change.finished_at is None:
        raise LabelError("Only a finished change can be undone.")
    if BulkChange.objects.filter(undo_of=bulk_change).exists():
        raise LabelError("This change was already undone.")
    if (timezone.now() - bulk_change.finished_at).total_seconds() > window:
        raise LabelError(f"The undo window ({window // 60} minutes) has passed.")
    reverse_states: dict[str, dict[str, bool]] = defaultdict(dict)
    touched = 0
    events = AuditEvent.objects.filter(bulk_change=bulk_change, kind=AuditEvent.Kind.CONSENT_CHANGED).values_list(
        "track_id", "track_uuid", "purpose_slug", "old_value"
    )
    latest = _latest_event_ids(bulk_change)
    for track_id, track_uuid, slug, old in events.iterator(chunk_size=5000):
        if (track_id, slug) in latest:
            continue
        reverse_states[str(track_uuid)][slug] = old == consent_services.GRANTED
        touched += 1
    needs = Purpose.objects.filter(requires_confirmation=True).exclude(slug__in=list(confirmed))
    for purpose in needs:
        if any(cells.get(purpose.slug) is True for cells in reverse_states.values()):
            raise LabelError(f"This undo grants {purpose.name} again; tick the box to confirm that before undoing.")
    with transaction.atomic():
        undo = BulkChange.objects.create(
            label=bulk_change.label,
            created_by=actor,
            kind=BulkChange.Kind.UNDO,
            status=BulkChange.Status.QUEUED,
            filter=bulk_change.filter,
            changes=dict(reverse_states),
            confirmed_purposes=list(confirmed),
            will_change=touched,
            progress_total=touched,
            undo_of=bulk_change,
        )
    if touched > settings.LABELS_BULK_SYNC_MAX_CELLS:
        from labels.tasks import apply_bulk_change_task

        apply_bulk_change_task.delay(undo.pk)
    else:
        apply_bulk_change(undo.pk)
        undo.refresh_from_db()
    return undo


def _latest_event_ids(bulk_change: BulkChange) -> set[tuple[int, str]]:
    """(track, purpose) cells changed again after the bulk change: an undo must not overwrite them."""
    own = AuditEvent.objects.filter(bulk_change=bulk_change).order_by("pk")
    first = own.values_list("pk", flat=True).first()
    if first is None:
        return set()
    later = AuditEvent.objects.filter(
        kind=AuditEvent.Kind.CONSENT_CHANGED, track_id__in=own.values("track_id"), pk__gt=first
    ).exclude(bulk_change=bulk_change)
    return set(later.values_list("track_id", "purpose_slug"))
