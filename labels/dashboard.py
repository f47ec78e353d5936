"""What waits for an artist on the dashboard from the labels side (registered with consent.hooks)."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import User
from consent.selectors import WaitingItem
from labels.models import ConsentProposal, Delegation

# The dashboard lists the newest proposals; the rest are one click away on the proposals page.
PROPOSALS_SHOWN = 10


def waiting_for_artist(user: User) -> list[WaitingItem]:
    waiting: list[WaitingItem] = []
    proposals = ConsentProposal.objects.filter(artist=user, status=ConsentProposal.Status.PENDING).select_related(
        "label", "purpose"
    )
    for proposal in proposals.order_by("-id")[:PROPOSALS_SHOWN]:
        count = proposal.tracks.count()
        waiting.append(
            WaitingItem(
                "proposal",
                ngettext(
                    "%(label)s asks you to allow %(use)s on %(count)d track.",
                    "%(label)s asks you to allow %(use)s on %(count)d tracks.",
                    count,
                )
                % {"label": proposal.label.name, "use": proposal.purpose.name, "count": count},
                reverse("labels:proposal", args=[proposal.pk]),
            )
        )
    invitations = Delegation.objects.filter(artist=user, status=Delegation.Status.INVITED, ended_at__isnull=True)
    for delegation in invitations.select_related("label"):
        waiting.append(
            WaitingItem(
                "delegation",
                _("%(label)s invites you to its roster.") % {"label": delegation.label.name},
                reverse("labels:delegations"),
            )
        )
    return waiting
