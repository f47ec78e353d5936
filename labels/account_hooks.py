"""labels' part in deleting an account and in "download my data" (registered in LabelsConfig.ready).

Deletion (step 20, after every grant was withdrawn): each open delegation ends
through the same audited transition as "end delegation", so the label's
members are told and the artist's chain records it; then the artist's
delegation history, label memberships, proposals and pending invitations go.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext, ngettext

from accounts.hooks import AccountDeletion, ErasureStep, ExportSection, erasure_steps, export_sections
from labels.models import BulkChange, ConsentProposal, Delegation, LabelInvitation, LabelMembership
from labels.notices import DelegationEvent
from labels.services.delegations import transition
from platformkit.request_meta import RequestMeta


def end_delegations(deletion: AccountDeletion) -> None:
    user = deletion.user
    meta = RequestMeta.from_request(deletion.request) if deletion.request is not None else None
    ended = []
    for delegation in Delegation.objects.open().filter(artist=user).select_related("label", "artist"):
        transition(
            actor=deletion.actor,
            delegation=delegation,
            status=Delegation.Status.ENDED,
            scopes=delegation.scopes,
            event=DelegationEvent.ACCOUNT_DELETED,
            request_meta=meta,
            end=True,
        )
        ended.append(delegation.label.name)
    Delegation.objects.filter(artist=user).delete()
    # The artist's own bulk changes go with them; undos first, as undo_of protects what they undid.
    own_changes = BulkChange.objects.filter(artist=user)
    own_changes.exclude(undo_of=None).delete()
    own_changes.delete()
    LabelMembership.objects.filter(user=user).delete()
    ConsentProposal.objects.filter(artist=user).delete()
    LabelInvitation.objects.filter(email__iexact=user.email, accepted_at__isnull=True).delete()
    if ended:
        deletion.note(
            gettext("Your delegations ended and each label was told: %(labels)s.")
            % {"labels": ", ".join(sorted(ended))}
        )


def describe_delegations(user) -> str | None:
    labels = sorted(Delegation.objects.open().filter(artist=user).values_list("label__name", flat=True))
    memberships = LabelMembership.objects.filter(user=user).count()
    parts = []
    if labels:
        parts.append(
            gettext("Your delegations to %(labels)s end, and each label is told.") % {"labels": ", ".join(labels)}
        )
    if memberships:
        parts.append(
            ngettext(
                "You leave the %(count)d label you help manage.",
                "You leave the %(count)d labels you help manage.",
                memberships,
            )
            % {"count": memberships}
        )
    return " ".join(parts) or None


def delegations(user) -> dict[str, Any]:
    return {
        "delegations": [
            {
                "label": d.label.name,
                "status": d.status,
                "what_the_label_may_do": d.scopes,
                "created_at": d.created_at,
                "accepted_at": d.accepted_at,
                "ended_at": d.ended_at,
            }
            for d in Delegation.objects.filter(artist=user).select_related("label").order_by("created_at", "pk")
        ],
        "label_memberships": [
            {"label": m.label.name, "role": m.role, "since": m.created_at}
            for m in LabelMembership.objects.filter(user=user).select_related("label").order_by("created_at")
        ],
        "proposals_received": [
            {
                "label": p.label.name,
                "purpose": p.purpose.slug,
                "message": p.message,
                "status": p.status,
                "tracks": [str(track.uuid) for track in p.tracks.all()],
                "created_at": p.created_at,
                "decided_at": p.decided_at,
            }
            for p in ConsentProposal.objects.filter(artist=user)
            .select_related("label", "purpose")
            .prefetch_related("tracks")
            .order_by("created_at")
        ],
    }


def register() -> None:
    erasure_steps.register(
        ErasureStep("labels.end_delegations", end_delegations, order=20, describe=describe_delegations)
    )
    export_sections.register(
        ExportSection(
            "labels/delegations.json",
            delegations,
            order=60,
            description="Your label delegations (what each label may do), the labels you help manage, "
            "and the proposals labels sent you.",
        )
    )
