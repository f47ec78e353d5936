"""Delegations: what an artist lets a label do with consent, each change audited in the artist's chain."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from accounts.models import User
from consent import services as consent_services
from consent.confirmation import needs_own_confirmation
from consent.models import Purpose
from consent.services import DelegationChange
from labels.models import Delegation, Label, LabelMembership
from labels.notices import DelegationEvent, delegation_notices
from labels.services.errors import LabelError
from notifications.services import queue_notice
from platformkit.request_meta import RequestMeta

Scope = Delegation.Scope
Status = Delegation.Status


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
            raise LabelError(
                gettext("%(value)r is not a choice for %(purpose)s.")
                % {"value": value, "purpose": gettext(purpose.name)}
            )
        if (
            value == Scope.GRANT_WITHDRAW
            and needs_own_confirmation(purpose)
            and purpose.slug not in confirmed
            and previous.get(purpose.slug) != Scope.GRANT_WITHDRAW
        ):
            raise LabelError(
                gettext("Letting a label grant %(purpose)s needs its own confirmation.")
                % {"purpose": gettext(purpose.name)}
            )
        scopes[purpose.slug] = value
    unknown = set(raw) - {p.slug for p in purposes}
    if unknown:
        raise LabelError(
            ngettext("Unknown purpose: %(slugs)s.", "Unknown purposes: %(slugs)s.", len(unknown))
            % {"slugs": ", ".join(sorted(unknown))}
        )
    return scopes


def _scope_changes(old: Mapping[str, str], new: Mapping[str, str]) -> list[DelegationChange]:
    slugs = list(Purpose.objects.values_list("slug", flat=True))
    return [DelegationChange(s, old.get(s, Scope.NONE), new.get(s, Scope.NONE)) for s in slugs]


def transition(
    *,
    actor: User | None,
    delegation: Delegation,
    status: str,
    scopes: Mapping[str, str] | None,
    event: str,
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
    changes = [DelegationChange(None, old_status, status), *_scope_changes(power_before, power_after)]

    def apply() -> None:
        fresh = Delegation.objects.select_for_update().get(pk=delegation.pk)
        if not created and (fresh.status != old_status or fresh.ended_at is not None):
            raise LabelError(gettext("This delegation changed in the meantime; reload the page."))
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
        for notice in delegation_notices(delegation, event=event, receipt_id=result.receipt_id, actor=actor):
            queue_notice(notice)
    return delegation


def open_delegation_exists(artist: User, label: Label) -> bool:
    return Delegation.objects.open().filter(artist=artist, label=label).exists()


def check_can_join(artist: User, label: Label) -> None:
    """Raise LabelError unless the artist may start a delegation with the label (by request or invitation)."""
    if LabelMembership.objects.filter(label=label, user=artist).exists():
        raise LabelError(gettext("Members of the label cannot be on its roster."))
    if open_delegation_exists(artist, label):
        raise LabelError(gettext("You already have an open delegation, invitation or request with this label."))


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
    check_can_join(artist, label)
    delegation = Delegation(artist=artist, label=label, status=Status.REQUESTED, scopes=clean, created_by=artist)
    with transaction.atomic():
        delegation.save()
        transition(
            created=True,
            actor=artist,
            delegation=delegation,
            status=Status.REQUESTED,
            scopes=clean,
            event=DelegationEvent.REQUESTED,
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
        raise LabelError(gettext("There is no open invitation to accept."))
    clean = clean_scopes(scopes, confirmed=confirmed)
    return transition(
        actor=artist,
        delegation=delegation,
        status=Status.ACTIVE,
        scopes=clean,
        event=DelegationEvent.JOINED,
        request_meta=request_meta,
        accepted=True,
    )


def approve_request(*, actor: User, delegation: Delegation, request_meta: RequestMeta | None = None) -> Delegation:
    if delegation.status != Status.REQUESTED:
        raise LabelError(gettext("There is no open request to approve."))
    return transition(
        actor=actor,
        delegation=delegation,
        status=Status.ACTIVE,
        scopes=delegation.scopes,
        event=DelegationEvent.APPROVED,
        request_meta=request_meta,
        accepted=True,
    )


def decline(*, actor: User, delegation: Delegation, request_meta: RequestMeta | None = None) -> Delegation:
    if delegation.status not in (Status.INVITED, Status.REQUESTED):
        raise LabelError(gettext("Only an open invitation or request can be declined."))
    return transition(
        actor=actor,
        delegation=delegation,
        status=Status.DECLINED,
        scopes=delegation.scopes,
        event=DelegationEvent.DECLINED,
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
        raise LabelError(gettext("Only an active delegation can be changed."))
    clean = clean_scopes(scopes, confirmed=confirmed, previous=delegation.scopes)
    return transition(
        actor=artist,
        delegation=delegation,
        status=Status.ACTIVE,
        scopes=clean,
        event=DelegationEvent.SCOPES_CHANGED,
        request_meta=request_meta,
    )


def end_delegation(*, artist: User, delegation: Delegation, request_meta: RequestMeta | None = None) -> Delegation:
    """One step, at once, and no consent state changes: what was granted stays granted."""
    if delegation.artist_id != artist.pk or delegation.ended_at is not None:
        raise LabelError(gettext("This delegation is not open."))
    return transition(
        actor=artist,
        delegation=delegation,
        status=Status.ENDED,
        scopes=delegation.scopes,
        event=DelegationEvent.ENDED,
        request_meta=request_meta,
        end=True,
    )
