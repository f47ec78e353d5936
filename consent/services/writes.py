"""Consent on tracks: the same answer on many tracks, or a different answer per track, in one audited save."""

from __future__ import annotations

import datetime
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from consent.hooks import ConsentCellChange, notify_consent_changed
from consent.models import AuditChainHead, AuditEvent, Consent, PolicyVersion, Purpose
from consent.notices import ChangedCell, queue_consent_change_notices
from consent.services.audit import (
    append_events,
    event_row,
    head_summary,
    lock_chain_heads,
    policy_in_force,
    purposes_by_slug,
    require_confirmation,
    state_value,
    valid_source,
)
from consent.services.errors import (
    ChangeResult,
    ConsentError,
    ConsentPermissionDenied,
)
from consent.services.permissions import actor_kind_for, can_change_consent, delegated_scopes
from platformkit.request_meta import RequestMeta
from platformkit.sql import insert_rows, pk_in
from tracks.models import Track

if TYPE_CHECKING:
    from accounts.models import User

Kind = AuditEvent.Kind


class BulkChangeRef(Protocol):
    """A label's bulk change (labels.models.BulkChange) that a write belongs to; every event links to it."""

    pk: int
    label_id: int
    label: Any


def change_consent(
    *,
    actor: User | None,
    tracks: QuerySet[Track],
    changes: Mapping[str, bool],
    source: str,
    request_meta: RequestMeta | None = None,
    confirmed_purposes: Collection[str] = (),
    bulk_change: BulkChangeRef | None = None,
) -> ChangeResult:
    """Set the same answer per purpose on every track in `tracks`.

    `changes` maps purpose slug to granted. A grant of a purpose that requires
    confirmation is refused unless its slug is in `confirmed_purposes`, which
    only a confirmation step may pass.

    In the same transaction it queues one email per artist whose consent
    changed: a receipt for their own save, a notice for a change made for them.
    """
    return write_track_consent(
        actor=actor,
        tracks=tracks,
        wanted=lambda _uuid: changes,
        slugs=changes.keys(),
        source=source,
        request_meta=request_meta,
        confirmed_purposes=confirmed_purposes,
        bulk_change=bulk_change,
    )


def set_track_consents(
    *,
    actor: User | None,
    tracks: QuerySet[Track],
    states: Mapping[uuid.UUID, Mapping[str, bool]],
    source: str,
    request_meta: RequestMeta | None = None,
    confirmed_purposes: Collection[str] = (),
    bulk_change: BulkChangeRef | None = None,
    unchanged_since: datetime.datetime | None = None,
) -> ChangeResult:
    """Set a possibly different answer per track (the matrix page, admin actions, CSV import).

    Tracks of `tracks` missing from `states` are left alone. One receipt
    covers the whole save. With `unchanged_since` (a bulk change's preview
    time), a cell whose consent changed after that instant is not the cell
    the manager saw: it is left as it is and counted in `skipped`, decided
    under the same locks as the write.
    """
    by_uuid: dict[uuid.UUID, Mapping[str, bool]] = {}
    for key, wanted in states.items():
        try:
            by_uuid[key if isinstance(key, uuid.UUID) else uuid.UUID(str(key))] = wanted
        except ValueError:
            raise ConsentError(gettext("%(value)r is not a track id.") % {"value": key}) from None
    slugs: set[str] = set()
    for wanted in by_uuid.values():
        slugs.update(wanted)
    return write_track_consent(
        actor=actor,
        tracks=tracks,
        wanted=lambda track_uuid: by_uuid.get(track_uuid),
        slugs=slugs,
        source=source,
        request_meta=request_meta,
        confirmed_purposes=confirmed_purposes,
        bulk_change=bulk_change,
        unchanged_since=unchanged_since,
    )


@dataclass(frozen=True)
class TrackRow:
    """A track as a consent write reads it, locked."""

    pk: int
    uuid: uuid.UUID
    title: str
    owner_id: int


@dataclass(frozen=True)
class Cell:
    """One (track, purpose) answer asked for; `consent_id` is its existing row, if any."""

    track: TrackRow
    purpose: Purpose
    granted: bool
    consent_id: int | None = None


def write_track_consent(
    *,
    actor: User | None,
    tracks: QuerySet[Track],
    wanted: Callable[[uuid.UUID], Mapping[str, bool] | None],
    slugs: Collection[str],
    source: str,
    request_meta: RequestMeta | None,
    confirmed_purposes: Collection[str],
    bulk_change: BulkChangeRef | None = None,
    unchanged_since: datetime.datetime | None = None,
    sources: Mapping[str, str] | None = None,
    what: str = "tracks",
) -> ChangeResult:
    """The body of change_consent, set_track_consents and apply_upload_consent.

    With `bulk_change`, the label's delegations alone decide what the actor may
    do, and every event links to the bulk change (its id is in the hash).
    `sources` overrides `source` per purpose slug, for one save whose grants
    come from different places (an upload: the artist's defaults and the form).
    """
    source = valid_source(source)
    source_of = {slug: valid_source(s) for slug, s in (sources or {}).items()}
    purposes = purposes_by_slug(slugs)
    if not purposes:
        return ChangeResult()

    # Re-based on the primary keys, so any queryset works, sliced or joined.
    scope = Track.objects.filter(pk__in=tracks.values("pk"))
    with transaction.atomic():
        owner_ids = set(scope.order_by().values_list("owner_id", flat=True).distinct())
        if not owner_ids:
            return ChangeResult()
        heads, rows = _lock_heads_and_tracks(scope, owner_ids)
        cells = [
            Cell(row, purposes[slug], bool(granted))
            for row in rows
            for slug, granted in (wanted(row.uuid) or {}).items()
        ]
        _check_permission(actor, cells, {row.owner_id for row in rows}, bulk_change)
        changed, skipped = _cells_that_change(cells, purposes, unchanged_since)
        if not changed:
            return ChangeResult(skipped=skipped)
        require_confirmation({cell.purpose for cell in changed if cell.granted}, confirmed_purposes)

        policy = policy_in_force()
        now = timezone.now()
        receipt_id = uuid.uuid4()
        _write_consent_rows(actor=actor, changed=changed, policy=policy, now=now)
        # In this transaction, so what higher apps derive from consent (the
        # public copies' rebuild) is recorded if and only if the change is.
        notify_consent_changed(
            [ConsentCellChange(track_id=c.track.pk, purpose_slug=c.purpose.slug, granted=c.granted) for c in changed]
        )

        changed.sort(key=lambda c: (c.track.owner_id, c.track.pk, c.purpose.ordering, c.purpose.pk))
        label_id = bulk_change.label_id if bulk_change else None
        bulk_change_id = bulk_change.pk if bulk_change else None
        events = [
            event_row(
                artist_id=cell.track.owner_id,
                actor=actor,
                kind=Kind.CONSENT_CHANGED,
                source=source_of.get(cell.purpose.slug, source),
                now=now,
                request_meta=request_meta,
                policy=policy,
                receipt_id=receipt_id,
                track_id=cell.track.pk,
                track_uuid=cell.track.uuid,
                track_title=cell.track.title,
                purpose=cell.purpose,
                old_value=state_value(not cell.granted),
                new_value=state_value(cell.granted),
                label_id=label_id,
                bulk_change_id=bulk_change_id,
            )
            for cell in changed
        ]
        append_events(heads, events)

        touched = {cell.track.owner_id for cell in changed}
        chain_heads = head_summary(heads, touched)
        # In this transaction: the emails exist if and only if the change does.
        queue_consent_change_notices(
            actor=actor,
            receipt_id=receipt_id,
            source=source,
            cells=[
                ChangedCell(c.track.owner_id, c.track.title, c.purpose.slug, c.purpose.name, c.granted, c.track.pk)
                for c in changed
            ],
            chain_heads=chain_heads,
            label_name=bulk_change.label.name if bulk_change else "",
            what=what,
        )
        return ChangeResult(
            receipt_id=receipt_id,
            counts=_counts(changed),
            event_count=len(events),
            chain_heads=chain_heads,
            skipped=skipped,
        )


def _lock_heads_and_tracks(
    scope: QuerySet[Track], owner_ids: set[int]
) -> tuple[dict[int, AuditChainHead], list[TrackRow]]:
    heads = lock_chain_heads(owner_ids)
    # Locking the tracks after the heads (the order record_track_deleted
    # uses too) keeps a concurrent deletion from racing the insert below.
    locked = scope.select_for_update().order_by("owner_id", "pk")
    rows = [TrackRow(*values) for values in locked.values_list("pk", "uuid", "title", "owner_id")]
    late_owners = {row.owner_id for row in rows} - heads.keys()
    if late_owners:
        # A track of another artist joined the set between the two reads.
        heads.update(lock_chain_heads(late_owners))
    return heads, rows


def _check_permission(
    actor: User | None, cells: list[Cell], owner_ids: set[int], bulk_change: BulkChangeRef | None
) -> None:
    # Read after the chain heads are locked: ending a delegation locks the
    # same head, so a delegation ended a moment ago is seen as ended here.
    delegations = delegated_scopes(actor, owner_ids, label_id=bulk_change.label_id if bulk_change else None)
    refused = [
        cell
        for cell in cells
        if not can_change_consent(
            actor,
            owner_id=cell.track.owner_id,
            granted=cell.granted,
            purpose_slug=cell.purpose.slug,
            delegations=delegations,
        )
    ]
    if not refused:
        return
    if any(cell.granted for cell in refused) and actor is not None and actor.is_staff:
        raise ConsentPermissionDenied.staff_grant()
    count = len({cell.track.pk for cell in refused})
    raise ConsentPermissionDenied.on_tracks(count)


def _cells_that_change(
    cells: list[Cell], purposes: Mapping[str, Purpose], unchanged_since: datetime.datetime | None
) -> tuple[list[Cell], int]:
    """The cells whose answer differs from the locked consent row, and how many were skipped as changed since."""
    existing = {
        (track_id, purpose_id): (consent_id, granted, changed_at)
        for consent_id, track_id, purpose_id, granted, changed_at in Consent.objects.select_for_update()
        .filter(
            track_id__in=pk_in(sorted({cell.track.pk for cell in cells})),
            purpose_id__in=[p.pk for p in purposes.values()],
        )
        .values_list("pk", "track_id", "purpose_id", "granted", "changed_at")
    }
    changed = []
    skipped = 0
    for cell in cells:
        consent_id, old, changed_at = existing.get((cell.track.pk, cell.purpose.pk), (None, False, None))
        if unchanged_since is not None and changed_at is not None and changed_at > unchanged_since:
            skipped += 1
            continue
        if old != cell.granted:
            changed.append(Cell(cell.track, cell.purpose, cell.granted, consent_id))
    return changed, skipped


def _counts(changed: list[Cell]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for cell in changed:
        bucket = counts.setdefault(cell.purpose.slug, {"granted": 0, "withdrawn": 0})
        bucket["granted" if cell.granted else "withdrawn"] += 1
    return counts


def _write_consent_rows(
    *, actor: User | None, changed: list[Cell], policy: PolicyVersion, now: datetime.datetime
) -> None:
    """New rows in one INSERT; existing rows in one UPDATE per (value, actor kind)."""
    inserts = []
    updates: dict[tuple[bool, str], list[int]] = defaultdict(list)
    for cell in changed:
        kind = actor_kind_for(actor, cell.track.owner_id)
        if cell.consent_id is None:
            inserts.append(
                {
                    "track_id": cell.track.pk,
                    "purpose_id": cell.purpose.pk,
                    "granted": cell.granted,
                    "changed_at": now,
                    "changed_by_id": actor.pk if actor else None,
                    "changed_by_kind": kind,
                    "policy_version_id": policy.pk,
                }
            )
        else:
            updates[(cell.granted, kind)].append(cell.consent_id)
    insert_rows(Consent, inserts)
    for (granted, kind), ids in updates.items():
        Consent.objects.filter(pk__in=pk_in(ids)).update(
            granted=granted, changed_at=now, changed_by=actor, changed_by_kind=kind, policy_version=policy
        )
