"""Proposals: a label asks an artist to grant a purpose; only the artist's answer changes consent."""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import User
from consent import services as consent_services
from consent.models import AuditEvent, Purpose
from labels.models import ConsentProposal, Label
from labels.notices import proposal_notice
from labels.selectors import roster_tracks
from labels.services.errors import LabelError
from notifications.services import queue_notice
from platformkit.request_meta import RequestMeta
from tracks.models import Track


def propose_grant(
    *, actor: User, label: Label, tracks: QuerySet[Track], purpose_slug: str, message: str = ""
) -> list[ConsentProposal]:
    """One proposal per artist for the tracks not yet granted; the artist decides."""
    purpose = Purpose.objects.filter(slug=purpose_slug).first()
    if purpose is None:
        raise LabelError(gettext("Unknown purpose."))
    scoped = (
        roster_tracks(label)
        .filter(pk__in=tracks.values("pk"))
        .exclude(consents__purpose=purpose, consents__granted=True)
    )
    by_owner: dict[int, list[int]] = defaultdict(list)
    for pk, owner_id in scoped.values_list("pk", "owner_id"):
        by_owner[owner_id].append(pk)
    if not by_owner:
        raise LabelError(
            gettext("Every selected track already allows %(purpose)s; there is nothing to propose.")
            % {"purpose": gettext(purpose.name)}
        )
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
            queue_notice(proposal_notice(proposal, artist=artists[owner_id], track_count=len(track_ids)))
            created.append(proposal)
    return created


def decide_proposal(
    *,
    artist: User,
    proposal: ConsentProposal,
    accept: bool,
    confirmed: bool = False,
    request_meta: RequestMeta | None = None,
) -> consent_services.ChangeResult | None:
    """Accepting is the artist's own grant, through the consent service; declining changes nothing."""
    if proposal.artist_id != artist.pk or proposal.status != ConsentProposal.Status.PENDING:
        raise LabelError(gettext("This proposal is not waiting for an answer."))
    with transaction.atomic():
        claimed = ConsentProposal.objects.filter(pk=proposal.pk, status=ConsentProposal.Status.PENDING).update(
            status=ConsentProposal.Status.ACCEPTED if accept else ConsentProposal.Status.DECLINED,
            decided_at=timezone.now(),
        )
        if not claimed:
            raise LabelError(gettext("This proposal is not waiting for an answer."))
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
