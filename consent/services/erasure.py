"""Consent's steps in deleting an account: withdraw everything, delete the tracks, close and erase the chain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from consent.models import (
    AuditActorData,
    AuditErasure,
    AuditEvent,
    AuditSubjectData,
    Consent,
    PolicyVersion,
    UploadDefault,
)
from consent.services.audit import (
    append_events,
    event_row,
    head_summary,
    lock_chain_heads,
)
from consent.services.track_events import record_tracks_deleted
from consent.services.uploads import set_upload_defaults
from consent.services.writes import change_consent
from platformkit.request_meta import RequestMeta
from tracks.models import Track

if TYPE_CHECKING:
    from accounts.models import User

Source = AuditEvent.Source
Kind = AuditEvent.Kind


@dataclass
class AccountConsentSummary:
    """What deleting an account did to its consent, for the farewell notice and the final event."""

    withdrawn: dict[str, int] = field(default_factory=dict)
    defaults_switched_off: list[str] = field(default_factory=list)
    receipt_ids: list[str] = field(default_factory=list)


def withdraw_everything_for_deletion(
    *, actor: User | None, artist: User, request_meta: RequestMeta | None = None
) -> AccountConsentSummary:
    """First step of deleting an account: every grant on every track and every upload default, off.

    Through the same writers as any other withdrawal, so each one is an audited
    consent_changed / defaults_changed event that downstream readers of the
    log see. Then the rows, all "not granted" now, are removed.
    """
    summary = AccountConsentSummary()
    with transaction.atomic():
        tracks = Track.objects.filter(owner=artist)
        granted = set(Consent.objects.filter(track__owner=artist, granted=True).values_list("purpose__slug", flat=True))
        if granted:
            result = change_consent(
                actor=actor,
                tracks=tracks,
                changes=dict.fromkeys(sorted(granted), False),
                source=Source.ACCOUNT_DELETION,
                request_meta=request_meta,
            )
            summary.withdrawn = {slug: counts["withdrawn"] for slug, counts in result.counts.items()}
            summary.receipt_ids.append(str(result.receipt_id))
        defaults_on = list(
            UploadDefault.objects.filter(artist=artist, granted=True).values_list("purpose__slug", flat=True)
        )
        if defaults_on:
            result = set_upload_defaults(
                actor=actor,
                artist=artist,
                choices=dict.fromkeys(defaults_on, False),
                request_meta=request_meta,
                source=Source.ACCOUNT_DELETION,
            )
            summary.defaults_switched_off = sorted(defaults_on)
            summary.receipt_ids.append(str(result.receipt_id))
        UploadDefault.objects.filter(artist=artist).delete()
    return summary


def delete_tracks_for_deletion(*, actor: User | None, artist: User, request_meta: RequestMeta | None = None) -> int:
    """Delete every track of the artist, each with its track_deleted event.

    The stored files go once the deletion commits (tracks' post_delete
    receiver); a rollback keeps rows and files together.
    """
    with transaction.atomic():
        tracks = Track.objects.filter(owner=artist)
        record_tracks_deleted(actor=actor, tracks=tracks, request_meta=request_meta, source=Source.ACCOUNT_DELETION)
        _, per_model = tracks.delete()
    return per_model.get(Track._meta.label, 0)


def record_account_deleted(
    *, actor: User | None, artist: User, request_meta: RequestMeta | None = None
) -> dict[str, Any]:
    """The last event of a deleted artist's chain; returns the final chain head.

    The chain itself stays (it is the proof of what was done with the artist's
    work); erase_personal_data removes what in it could name a person.
    """
    with transaction.atomic():
        heads = lock_chain_heads([artist.pk])
        append_events(
            heads,
            [
                event_row(
                    artist_id=artist.pk,
                    actor=actor,
                    kind=Kind.ACCOUNT_DELETED,
                    source=Source.ACCOUNT_DELETION,
                    now=timezone.now(),
                    request_meta=request_meta,
                    policy=PolicyVersion.objects.in_force(),
                    new_value="deleted",
                )
            ],
        )
        return head_summary(heads, [artist.pk])[artist.pk]


def erase_personal_data(*, user_id: int, reason: str) -> list[AuditErasure]:
    """Erase the personal parts of the audit log that concern one person, keeping every chain verifiable.

    Two scopes, both recorded: every personal part of the person's own chain
    (track titles, and the request data of whoever acted there), and the
    request data (IP, user agent) of every event the person acted in, in any
    chain; the track titles of other artists stay theirs. The records are how
    the verifier tells an erasure from a row deleted behind our back.
    """
    now = timezone.now()
    with transaction.atomic():
        acted, _ = AuditActorData.objects.filter(event__actor_id=user_id).delete()
        chain_actor, _ = AuditActorData.objects.filter(event__artist_id=user_id).delete()
        chain_subject, _ = AuditSubjectData.objects.filter(event__artist_id=user_id).delete()
        return AuditErasure.objects.bulk_create(
            [
                AuditErasure(
                    user_id=user_id, scope=AuditErasure.Scope.ACTOR, reason=reason, erased_at=now, actor_rows=acted
                ),
                AuditErasure(
                    user_id=user_id,
                    scope=AuditErasure.Scope.CHAIN,
                    reason=reason,
                    erased_at=now,
                    actor_rows=chain_actor,
                    subject_rows=chain_subject,
                ),
            ]
        )
