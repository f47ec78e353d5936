"""A track's arrival and departure in its artist's audit chain."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from consent.models import (
    AuditEvent,
    Consent,
    PolicyVersion,
)
from consent.services.audit import (
    append_events,
    event_row,
    head_summary,
    lock_chain_heads,
    valid_source,
)
from consent.services.errors import (
    ChangeResult,
)
from consent.services.writes import change_consent
from platformkit.request_meta import RequestMeta
from platformkit.sql import pk_in
from tracks.models import Track

if TYPE_CHECKING:
    from accounts.models import User

Source = AuditEvent.Source
Kind = AuditEvent.Kind


def _record_track_event(
    *, actor: User | None, track: Track, kind: str, source: str, request_meta: RequestMeta | None
) -> None:
    with transaction.atomic():
        heads = lock_chain_heads([track.owner_id])
        append_events(
            heads,
            [
                event_row(
                    artist_id=track.owner_id,
                    actor=actor,
                    kind=kind,
                    source=valid_source(source),
                    now=timezone.now(),
                    request_meta=request_meta,
                    policy=PolicyVersion.objects.in_force(),
                    track_id=track.pk,
                    track_uuid=track.uuid,
                    track_title=track.title or track.original_filename,
                )
            ],
        )


def record_track_uploaded(
    *, actor: User | None, track: Track, request_meta: RequestMeta | None = None, source: str = Source.UPLOAD
) -> None:
    """Note a new track in its artist's log. Call in the transaction that creates it."""
    _record_track_event(actor=actor, track=track, kind=Kind.TRACK_UPLOADED, source=source, request_meta=request_meta)


def record_track_deleted(
    *, actor: User | None, track: Track, request_meta: RequestMeta | None = None, source: str = Source.WEB
) -> ChangeResult:
    """Withdraw what the track still grants, remove its consent rows and note the deletion.

    Call inside the same transaction as ``track.delete()`` and before it, so the
    events and the deletion commit together (and in the lock order of the
    consent writers: chain head first, then the track).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("record_track_deleted must run in the transaction that deletes the track.")
    return record_tracks_deleted(
        actor=actor, tracks=Track.objects.filter(pk=track.pk), request_meta=request_meta, source=source
    )


def record_tracks_deleted(
    *, actor: User | None, tracks: QuerySet[Track], request_meta: RequestMeta | None = None, source: str = Source.WEB
) -> ChangeResult:
    """The set-based form of record_track_deleted, for any number of tracks of any artists.

    Every grant is withdrawn first through change_consent, so the log, the
    artist's receipt and every downstream reader of the log see a withdrawal,
    not a grant that silently stopped existing. Then the (now all "not
    granted") consent rows go and one track_deleted event per track keeps its
    uuid and title in the log. Consent.track is PROTECT: a track deleted
    without this call is refused by the database layer.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("record_tracks_deleted must run in the transaction that deletes the tracks.")
    source = valid_source(source)
    scope = Track.objects.filter(pk__in=tracks.values("pk"))
    granted = set(
        Consent.objects.filter(track__in=scope.values("pk"), granted=True).values_list("purpose__slug", flat=True)
    )
    result = ChangeResult()
    if granted:
        result = change_consent(
            actor=actor,
            tracks=scope,
            changes=dict.fromkeys(sorted(granted), False),
            source=source,
            request_meta=request_meta,
        )
    owner_ids = set(scope.order_by().values_list("owner_id", flat=True).distinct())
    if not owner_ids:
        return result
    heads = lock_chain_heads(owner_ids)
    rows = list(
        scope.select_for_update()
        .order_by("owner_id", "pk")
        .values_list("pk", "uuid", "title", "original_filename", "owner_id")
    )
    late_owners = {row[4] for row in rows} - heads.keys()
    if late_owners:
        heads.update(lock_chain_heads(late_owners))
    Consent.objects.filter(track_id__in=pk_in(row[0] for row in rows)).delete()
    now = timezone.now()
    policy = PolicyVersion.objects.in_force()
    append_events(
        heads,
        [
            event_row(
                artist_id=owner_id,
                actor=actor,
                kind=Kind.TRACK_DELETED,
                source=source,
                now=now,
                request_meta=request_meta,
                policy=policy,
                track_id=pk,
                track_uuid=track_uuid,
                track_title=title or original_filename,
            )
            for pk, track_uuid, title, original_filename, owner_id in rows
        ],
    )
    result.event_count += len(rows)
    result.chain_heads.update(head_summary(heads, heads))
    return result
