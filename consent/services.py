"""The only writer of consent state and of the audit log.

Every function here runs in one transaction that checks permission, locks the
artists' audit chains (which serialises writers per artist), writes the new
state set-based and appends one hash-chained audit event per fact that changed.
A call that changes nothing writes nothing.
"""

from __future__ import annotations

import datetime
import ipaddress
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from consent.bulk import insert_rows, pk_in
from consent.chain import seal
from consent.hooks import ConsentCellChange, notify_consent_changed
from consent.models import (
    GENESIS_HASH,
    AuditActorData,
    AuditChainHead,
    AuditErasure,
    AuditEvent,
    AuditSubjectData,
    BulkChange,
    Consent,
    PolicyVersion,
    Purpose,
    UploadDefault,
)
from notifications.notices import ChangedCell, queue_consent_change_notices
from tracks.models import Track

if TYPE_CHECKING:
    from accounts.models import User

Source = AuditEvent.Source
Kind = AuditEvent.Kind
ActorKind = AuditEvent.ActorKind

GRANTED = "granted"
NOT_GRANTED = "not_granted"


# --- Errors -------------------------------------------------------------------------


class ConsentError(Exception):
    """A request the service refuses, with a message fit to show the person who made it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UnknownPurpose(ConsentError):
    pass


class ConfirmationRequired(ConsentError):
    def __init__(self, purposes: Collection[Purpose]):
        names = ", ".join(p.name for p in purposes)
        super().__init__(f"Granting {names} needs its own explicit confirmation.")
        self.purposes = list(purposes)


class ConsentPermissionDenied(ConsentError, PermissionDenied):
    pass


class NoPolicyInForce(ConsentError):
    pass


# --- Inputs and results ---------------------------------------------------------------


@dataclass(frozen=True)
class RequestMeta:
    """Where a change came from, as the audit log records it."""

    ip: str = ""
    user_agent: str = ""
    request_id: str = ""

    @classmethod
    def from_request(cls, request) -> RequestMeta:
        # REMOTE_ADDR only: a forwarded-for header is whatever the client wrote
        # unless a trusted proxy rewrote it, and the log must not record fiction.
        raw_ip = request.META.get("REMOTE_ADDR", "") or ""
        try:
            ip = str(ipaddress.ip_address(raw_ip))
        except ValueError:
            ip = ""
        # PostgreSQL text cannot hold NUL, and control characters have no
        # business in a log that people read.
        user_agent = "".join(ch for ch in request.headers.get("User-Agent", "") or "" if ch.isprintable())
        return cls(
            ip=ip,
            user_agent=user_agent[:512],
            request_id=(getattr(request, "request_id", "") or "")[:64],
        )


@dataclass
class ChangeResult:
    receipt_id: uuid.UUID | None = None
    # purpose slug -> {"granted": n, "withdrawn": n}
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    event_count: int = 0
    # artist id -> {"seq": n, "hash": "..."} after the change
    chain_heads: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Cells left alone because they changed after `unchanged_since`.
    skipped: int = 0

    @property
    def changed(self) -> bool:
        return self.event_count > 0


# --- Permission -----------------------------------------------------------------------


def actor_kind_for(actor: User | None, artist_id: int) -> str:
    if actor is None:
        return ActorKind.SYSTEM
    if actor.pk == artist_id:
        return ActorKind.ARTIST
    if actor.is_staff:
        return ActorKind.STAFF
    # Label managers act through delegations (a later issue adds that branch
    # to can_change_consent); until then nobody else can act for an artist.
    return ActorKind.LABEL


def can_change_consent(
    actor: User | None,
    *,
    owner_id: int,
    granted: bool,
    purpose_slug: str | None = None,
    delegations: Mapping[int, Mapping[str, str]] | None = None,
) -> bool:
    """The one permission rule for consent on a track owned by `owner_id`.

    The artist may grant and withdraw. Staff and the system may only withdraw.
    A label manager acts only inside what the owner delegated: `delegations`
    is `delegated_scopes(actor, owners)`, loaded once per change so that the
    check stays a dictionary lookup per cell.
    """
    if actor is None:
        return not granted
    if not actor.is_active:
        return False
    if actor.pk == owner_id:
        return True
    if actor.is_staff:
        return not granted
    if delegations is None or purpose_slug is None:
        return False
    scope = delegations.get(owner_id, {}).get(purpose_slug, SCOPE_NONE)
    if granted:
        return scope == SCOPE_GRANT_WITHDRAW
    return scope in (SCOPE_WITHDRAW, SCOPE_GRANT_WITHDRAW)


SCOPE_NONE = "none"
SCOPE_WITHDRAW = "withdraw"
SCOPE_GRANT_WITHDRAW = "grant_withdraw"
_SCOPE_RANK = {SCOPE_NONE: 0, SCOPE_WITHDRAW: 1, SCOPE_GRANT_WITHDRAW: 2}


def delegated_scopes(
    actor: User | None, owner_ids: Collection[int], *, label_id: int | None = None
) -> dict[int, dict[str, str]]:
    """owner id -> {purpose slug: scope} that `actor` holds through active delegations, in one query.

    With `label_id`, only that label's delegations count: a manager acting for
    one label never borrows the power another label was given.
    """
    from accounts.models import Delegation

    owner_ids = [o for o in owner_ids if actor is None or o != actor.pk]
    if actor is None or actor.is_staff or not owner_ids:
        return {}
    rows = Delegation.objects.active().filter(artist_id__in=pk_in(owner_ids), label__memberships__user=actor)
    if label_id is not None:
        rows = rows.filter(label_id=label_id)
    merged: dict[int, dict[str, str]] = {}
    for artist_id, scopes in rows.values_list("artist_id", "scopes"):
        mine = merged.setdefault(artist_id, {})
        for slug, scope in (scopes or {}).items():
            if _SCOPE_RANK.get(scope, 0) > _SCOPE_RANK.get(mine.get(slug, SCOPE_NONE), 0):
                mine[slug] = scope
    return merged


# --- Helpers --------------------------------------------------------------------------


def _purposes_by_slug(slugs: Iterable[str]) -> dict[str, Purpose]:
    slugs = set(slugs)
    found = {p.slug: p for p in Purpose.objects.filter(slug__in=slugs)}
    unknown = sorted(slugs - found.keys())
    if unknown:
        raise UnknownPurpose(f"Unknown purpose: {', '.join(unknown)}.")
    return found


def _policy_in_force() -> PolicyVersion:
    policy = PolicyVersion.objects.in_force()
    if policy is None:
        raise NoPolicyInForce("No published policy version is in force; consent cannot be recorded.")
    return policy


def _require_confirmation(purposes: Iterable[Purpose], confirmed_purposes: Collection[str]) -> None:
    missing = [p for p in purposes if p.requires_confirmation and p.slug not in confirmed_purposes]
    if missing:
        raise ConfirmationRequired(missing)


def _lock_chain_heads(artist_ids: Collection[int]) -> dict[int, AuditChainHead]:
    """Create missing chain heads, then lock all of them in artist order.

    The lock is what serialises concurrent writers for one artist: the second
    waits here, then reads the state the first committed.
    """
    insert_rows(
        AuditChainHead, [{"artist_id": a, "seq": 0, "hash": GENESIS_HASH} for a in artist_ids], ignore_conflicts=True
    )
    heads = AuditChainHead.objects.select_for_update().filter(artist_id__in=pk_in(artist_ids)).order_by("artist_id")
    return {head.artist_id: head for head in heads}


def _append_events(heads: dict[int, AuditChainHead], events: list[dict[str, Any]]) -> None:
    """Chain the events (in list order per artist) onto their heads and insert them.

    The personal parts go to their erasable tables in the same transaction;
    the statement count stays constant whatever the number of events.
    """
    if not events:
        return
    touched: dict[int, AuditChainHead] = {}
    rows, actor_rows, subject_rows = [], [], []
    for event in events:
        head = heads[event["artist_id"]]
        head.seq += 1
        sealed = seal(event, seq=head.seq, prev_hash=head.hash)
        head.hash = sealed.row["hash"]
        touched[head.artist_id] = head
        rows.append(sealed.row)
        if sealed.actor_data:
            actor_rows.append(sealed.actor_data)
        if sealed.subject_data:
            subject_rows.append(sealed.subject_data)
    insert_rows(AuditEvent, rows)
    insert_rows(AuditActorData, actor_rows)
    insert_rows(AuditSubjectData, subject_rows)
    AuditChainHead.objects.bulk_update(list(touched.values()), ["seq", "hash"])


def _event(
    *,
    artist_id: int,
    actor: User | None,
    kind: str,
    source: str,
    now,
    request_meta: RequestMeta | None,
    policy: PolicyVersion | None,
    receipt_id: uuid.UUID | None = None,
    track_id: int | None = None,
    track_uuid: uuid.UUID | None = None,
    track_title: str = "",
    purpose: Purpose | None = None,
    old_value: str = "",
    new_value: str = "",
    label_id: int | None = None,
    bulk_change_id: int | None = None,
) -> dict[str, Any]:
    meta = request_meta or RequestMeta()
    return {
        "artist_id": artist_id,
        "actor_id": actor.pk if actor is not None else None,
        "actor_kind": actor_kind_for(actor, artist_id),
        "source": str(source),
        "kind": str(kind),
        "track_id": track_id,
        "track_uuid": track_uuid,
        "track_title": (track_title or "")[:300],
        "purpose_id": purpose.pk if purpose else None,
        "purpose_slug": purpose.slug if purpose else "",
        "old_value": old_value,
        "new_value": new_value,
        "policy_version_id": policy.pk if policy else None,
        "ip": meta.ip,
        "user_agent": meta.user_agent[:512],
        "request_id": meta.request_id[:64],
        "receipt_id": receipt_id,
        "label_id": label_id,
        "bulk_change_id": bulk_change_id,
        "created_at": now,
    }


def _state(granted: bool) -> str:
    return GRANTED if granted else NOT_GRANTED


def _valid_source(source: str) -> str:
    if source not in Source.values:
        raise ConsentError(f"Unknown source {source!r}.")
    return str(source)


# --- Consent on tracks ----------------------------------------------------------------


def change_consent(
    *,
    actor: User | None,
    tracks: QuerySet[Track],
    changes: Mapping[str, bool],
    source: str,
    request_meta: RequestMeta | None = None,
    confirmed_purposes: Collection[str] = (),
    bulk_change: BulkChange | None = None,
) -> ChangeResult:
    """Set the same answer per purpose on every track in `tracks`.

    `changes` maps purpose slug to granted. A grant of a purpose that requires
    confirmation is refused unless its slug is in `confirmed_purposes`, which
    only a confirmation step may pass.

    In the same transaction it queues one email per artist whose consent
    changed: a receipt for their own save, a notice for a change made for them.
    """
    return _write_track_consent(
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
    bulk_change: BulkChange | None = None,
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
            raise ConsentError(f"{key!r} is not a track id.") from None
    slugs: set[str] = set()
    for wanted in by_uuid.values():
        slugs.update(wanted)
    return _write_track_consent(
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


def _write_track_consent(
    *,
    actor,
    tracks,
    wanted,
    slugs,
    source,
    request_meta,
    confirmed_purposes,
    bulk_change=None,
    unchanged_since=None,
    sources: Mapping[str, str] | None = None,
    what: str = "tracks",
) -> ChangeResult:
    """The body of change_consent, set_track_consents and apply_upload_consent.

    With `bulk_change`, the label's delegations alone decide what the actor may
    do, and every event links to the bulk change (its id is in the hash).
    `sources` overrides `source` per purpose slug, for one save whose grants
    come from different places (an upload: the artist's defaults and the form).
    """
    source = _valid_source(source)
    source_of = {slug: _valid_source(s) for slug, s in (sources or {}).items()}
    purposes = _purposes_by_slug(slugs)
    if not purposes:
        return ChangeResult()

    # Re-based on the primary keys, so any queryset works, sliced or joined.
    scope = Track.objects.filter(pk__in=tracks.values("pk"))
    with transaction.atomic():
        owner_ids = set(scope.order_by().values_list("owner_id", flat=True).distinct())
        if not owner_ids:
            return ChangeResult()
        heads = _lock_chain_heads(owner_ids)
        # Locking the tracks after the heads (the order record_track_deleted
        # uses too) keeps a concurrent deletion from racing the insert below.
        rows = list(scope.select_for_update().order_by("owner_id", "pk").values_list("pk", "uuid", "title", "owner_id"))
        late_owners = {row[3] for row in rows} - heads.keys()
        if late_owners:
            # A track of another artist joined the set between the two reads.
            heads.update(_lock_chain_heads(late_owners))

        cells: list[tuple[tuple, Purpose, bool]] = []
        for row in rows:
            per_track = wanted(row[1])
            if not per_track:
                continue
            for slug, granted in per_track.items():
                cells.append((row, purposes[slug], bool(granted)))

        # Read after the chain heads are locked: ending a delegation locks the
        # same head, so a delegation ended a moment ago is seen as ended here.
        delegations = delegated_scopes(
            actor, {row[3] for row in rows}, label_id=bulk_change.label_id if bulk_change else None
        )
        refused = [
            cell
            for cell in cells
            if not can_change_consent(
                actor, owner_id=cell[0][3], granted=cell[2], purpose_slug=cell[1].slug, delegations=delegations
            )
        ]
        if refused:
            if any(granted for _, _, granted in refused) and actor is not None and actor.is_staff:
                raise ConsentPermissionDenied("Staff may withdraw consent but never grant it.")
            count = len({cell[0][0] for cell in refused})
            raise ConsentPermissionDenied(f"You may not change consent on {count} of these tracks.")

        existing = {
            (track_id, purpose_id): (consent_id, granted, changed_at)
            for consent_id, track_id, purpose_id, granted, changed_at in Consent.objects.select_for_update()
            .filter(track_id__in=pk_in(row[0] for row in rows), purpose_id__in=[p.pk for p in purposes.values()])
            .values_list("pk", "track_id", "purpose_id", "granted", "changed_at")
        }

        changed = []
        skipped = 0
        for row, purpose, granted in cells:
            consent_id, old, changed_at = existing.get((row[0], purpose.pk), (None, False, None))
            if unchanged_since is not None and changed_at is not None and changed_at > unchanged_since:
                skipped += 1
                continue
            if old != granted:
                changed.append((row, purpose, granted, consent_id))
        if not changed:
            return ChangeResult(skipped=skipped)

        grants = [p for _, p, granted, _ in changed if granted]
        _require_confirmation(set(grants), confirmed_purposes)

        policy = _policy_in_force()
        now = timezone.now()
        receipt_id = uuid.uuid4()
        _write_consent_rows(actor=actor, changed=changed, policy=policy, now=now)
        # In this transaction, so what higher apps derive from consent (the
        # public copies' rebuild) is recorded if and only if the change is.
        notify_consent_changed(
            [ConsentCellChange(track_id=row[0], purpose_slug=p.slug, granted=g) for row, p, g, _ in changed]
        )

        changed.sort(key=lambda c: (c[0][3], c[0][0], c[1].ordering, c[1].pk))
        events = [
            _event(
                artist_id=row[3],
                actor=actor,
                kind=Kind.CONSENT_CHANGED,
                source=source_of.get(purpose.slug, source),
                now=now,
                request_meta=request_meta,
                policy=policy,
                receipt_id=receipt_id,
                track_id=row[0],
                track_uuid=row[1],
                track_title=row[2],
                purpose=purpose,
                old_value=_state(not granted),
                new_value=_state(granted),
                label_id=bulk_change.label_id if bulk_change else None,
                bulk_change_id=bulk_change.pk if bulk_change else None,
            )
            for row, purpose, granted, _ in changed
        ]
        _append_events(heads, events)

        counts: dict[str, dict[str, int]] = {}
        for _, purpose, granted, _ in changed:
            bucket = counts.setdefault(purpose.slug, {"granted": 0, "withdrawn": 0})
            bucket["granted" if granted else "withdrawn"] += 1
        touched = {row[3] for row, *_ in changed}
        chain_heads = {a: {"seq": heads[a].seq, "hash": heads[a].hash} for a in sorted(touched)}
        # In this transaction: the emails exist if and only if the change does.
        queue_consent_change_notices(
            actor=actor,
            receipt_id=receipt_id,
            source=source,
            cells=[ChangedCell(row[3], row[2], p.slug, p.name, granted, row[0]) for row, p, granted, _ in changed],
            chain_heads=chain_heads,
            label_name=bulk_change.label.name if bulk_change else "",
            what=what,
        )
        return ChangeResult(
            receipt_id=receipt_id, counts=counts, event_count=len(events), chain_heads=chain_heads, skipped=skipped
        )


def _write_consent_rows(*, actor, changed, policy: PolicyVersion, now) -> None:
    """New rows in one INSERT; existing rows in one UPDATE per (value, actor kind)."""
    inserts = []
    updates: dict[tuple[bool, str], list[int]] = defaultdict(list)
    for row, purpose, granted, consent_id in changed:
        kind = actor_kind_for(actor, row[3])
        if consent_id is None:
            inserts.append(
                {
                    "track_id": row[0],
                    "purpose_id": purpose.pk,
                    "granted": granted,
                    "changed_at": now,
                    "changed_by_id": actor.pk if actor else None,
                    "changed_by_kind": kind,
                    "policy_version_id": policy.pk,
                }
            )
        else:
            updates[(granted, kind)].append(consent_id)
    insert_rows(Consent, inserts)
    for (granted, kind), ids in updates.items():
        Consent.objects.filter(pk__in=pk_in(ids)).update(
            granted=granted, changed_at=now, changed_by=actor, changed_by_kind=kind, policy_version=policy
        )


# --- Uploads and account events ---------------------------------------------------------


def apply_upload_consent(
    *,
    actor: User,
    tracks: QuerySet[Track],
    choices: Mapping[str, bool] | None = None,
    request_meta: RequestMeta | None = None,
    confirmed_purposes: Collection[str] = (),
) -> ChangeResult:
    """Give the new tracks of one upload what their artist chose: account defaults and the upload form.

    One upload is one save, whatever the number of files: one receipt lists
    every file. Each grant is audited with where it came from (the defaults or
    the form). Opt-in only: `False` in `choices` and defaults that are off grant
    nothing, and a new track starts with nothing granted. A default that needs
    confirmation was confirmed when the artist set it, so it applies as is.
    """
    owner_ids = set(Track.objects.filter(pk__in=tracks.values("pk")).values_list("owner_id", flat=True).distinct())
    if len(owner_ids) != 1:
        if owner_ids:
            raise ConsentError("An upload's consent applies to the tracks of one artist at a time.")
        return ChangeResult()
    defaults = set(
        UploadDefault.objects.filter(artist_id=owner_ids.pop(), granted=True).values_list("purpose__slug", flat=True)
    )
    chosen = {slug for slug, granted in (choices or {}).items() if granted}
    changes = dict.fromkeys(sorted(defaults | chosen), True)
    if not changes:
        return ChangeResult()
    return _write_track_consent(
        actor=actor,
        tracks=tracks,
        wanted=lambda _uuid: changes,
        slugs=changes.keys(),
        source=Source.UPLOAD if chosen else Source.ACCOUNT_DEFAULT,
        sources={slug: Source.ACCOUNT_DEFAULT if slug in defaults else Source.UPLOAD for slug in changes},
        request_meta=request_meta,
        confirmed_purposes={*defaults, *confirmed_purposes},
        what="upload",
    )


def set_upload_defaults(
    *,
    actor: User | None,
    artist: User,
    choices: Mapping[str, bool],
    request_meta: RequestMeta | None = None,
    confirmed_purposes: Collection[str] = (),
    source: str = Source.ACCOUNT_DEFAULT,
) -> ChangeResult:
    """Change what future uploads of `artist` are granted. Audited as defaults_changed."""
    source = _valid_source(source)
    purposes = _purposes_by_slug(choices)
    refused = [s for s, g in choices.items() if not can_change_consent(actor, owner_id=artist.pk, granted=bool(g))]
    if refused:
        raise ConsentPermissionDenied("You may not change these upload defaults.")
    with transaction.atomic():
        heads = _lock_chain_heads([artist.pk])
        existing = {
            purpose_id: (pk, granted)
            for pk, purpose_id, granted in UploadDefault.objects.select_for_update()
            .filter(artist=artist, purpose__in=purposes.values())
            .values_list("pk", "purpose_id", "granted")
        }
        changed = []
        for slug, granted in choices.items():
            purpose = purposes[slug]
            pk, old = existing.get(purpose.pk, (None, False))
            if old != bool(granted):
                changed.append((purpose, bool(granted), pk))
        if not changed:
            return ChangeResult()
        _require_confirmation({p for p, g, _ in changed if g}, confirmed_purposes)

        policy = _policy_in_force()
        now = timezone.now()
        receipt_id = uuid.uuid4()
        changed.sort(key=lambda c: (c[0].ordering, c[0].pk))
        insert_rows(
            UploadDefault,
            [
                {"artist_id": artist.pk, "purpose_id": p.pk, "granted": g, "changed_at": now}
                for p, g, pk in changed
                if pk is None
            ],
        )
        for granted in (True, False):
            ids = [pk for _, g, pk in changed if pk is not None and g == granted]
            if ids:
                UploadDefault.objects.filter(pk__in=ids).update(granted=granted, changed_at=now)
        _append_events(
            heads,
            [
                _event(
                    artist_id=artist.pk,
                    actor=actor,
                    kind=Kind.DEFAULTS_CHANGED,
                    source=source,
                    now=now,
                    request_meta=request_meta,
                    policy=policy,
                    receipt_id=receipt_id,
                    purpose=p,
                    old_value=_state(not g),
                    new_value=_state(g),
                )
                for p, g, _ in changed
            ],
        )
        counts: dict[str, dict[str, int]] = {}
        for p, g, _ in changed:
            counts[p.slug] = {"granted": int(g), "withdrawn": int(not g)}
        chain_heads = {artist.pk: {"seq": heads[artist.pk].seq, "hash": heads[artist.pk].hash}}
        queue_consent_change_notices(
            actor=actor,
            receipt_id=receipt_id,
            source=source,
            cells=[ChangedCell(artist.pk, "", p.slug, p.name, g) for p, g, _ in changed],
            chain_heads=chain_heads,
            what="defaults",
        )
        return ChangeResult(receipt_id=receipt_id, counts=counts, event_count=len(changed), chain_heads=chain_heads)


def _record_track_event(*, actor, track: Track, kind: str, source: str, request_meta) -> None:
    with transaction.atomic():
        heads = _lock_chain_heads([track.owner_id])
        _append_events(
            heads,
            [
                _event(
                    artist_id=track.owner_id,
                    actor=actor,
                    kind=kind,
                    source=_valid_source(source),
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
    source = _valid_source(source)
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
    heads = _lock_chain_heads(owner_ids)
    rows = list(
        scope.select_for_update()
        .order_by("owner_id", "pk")
        .values_list("pk", "uuid", "title", "original_filename", "owner_id")
    )
    late_owners = {row[4] for row in rows} - heads.keys()
    if late_owners:
        heads.update(_lock_chain_heads(late_owners))
    Consent.objects.filter(track_id__in=pk_in(row[0] for row in rows)).delete()
    now = timezone.now()
    policy = PolicyVersion.objects.in_force()
    _append_events(
        heads,
        [
            _event(
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
    result.chain_heads.update({a: {"seq": heads[a].seq, "hash": heads[a].hash} for a in sorted(heads)})
    return result


# --- Account deletion -----------------------------------------------------------------------


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
        heads = _lock_chain_heads([artist.pk])
        _append_events(
            heads,
            [
                _event(
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
        head = heads[artist.pk]
        return {"seq": head.seq, "hash": head.hash}


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


# --- Policy versions ------------------------------------------------------------------------


def acknowledge_policy(*, actor: User, version: PolicyVersion, request_meta: RequestMeta | None = None) -> bool:
    """Record that `actor` read a published version. Audited once; again is a no-op."""
    if version.published_at is None:
        raise ConsentError("Only a published policy version can be acknowledged.")
    with transaction.atomic():
        heads = _lock_chain_heads([actor.pk])
        already = AuditEvent.objects.filter(
            artist=actor, kind=Kind.POLICY_ACKNOWLEDGED, policy_version=version
        ).exists()
        if already:
            return False
        _append_events(
            heads,
            [
                _event(
                    artist_id=actor.pk,
                    actor=actor,
                    kind=Kind.POLICY_ACKNOWLEDGED,
                    source=Source.POLICY_ACK,
                    now=timezone.now(),
                    request_meta=request_meta,
                    policy=version,
                )
            ],
        )
    return True


def reconfirm_consent(
    *,
    actor: User,
    version: PolicyVersion,
    tracks: QuerySet[Track],
    request_meta: RequestMeta | None = None,
) -> ChangeResult:
    """The artist confirms grants whose meaning `version` changes, so they do not lapse.

    Only the artist's own, still-granted consents of the changed purposes are
    touched; each gets `changed_at` now and one audit event, in one receipt.
    """
    purposes = list(version.purposes_changed.all())
    if not purposes:
        return ChangeResult()
    with transaction.atomic():
        heads = _lock_chain_heads([actor.pk])
        rows = list(
            Consent.objects.select_for_update()
            .filter(
                track__in=tracks.filter(owner=actor).order_by().values("pk"),
                purpose__in=purposes,
                granted=True,
                changed_at__lt=version.published_at,
            )
            .select_related("track", "purpose")
            .order_by("track_id", "purpose__ordering")
        )
        if not rows:
            return ChangeResult()
        now = timezone.now()
        receipt_id = uuid.uuid4()
        Consent.objects.filter(pk__in=pk_in(row.pk for row in rows)).update(
            changed_at=now, changed_by=actor, changed_by_kind=ActorKind.ARTIST
        )
        _append_events(
            heads,
            [
                _event(
                    artist_id=actor.pk,
                    actor=actor,
                    kind=Kind.CONSENT_RECONFIRMED,
                    source=Source.WEB,
                    now=now,
                    request_meta=request_meta,
                    policy=version,
                    receipt_id=receipt_id,
                    track_id=row.track_id,
                    track_uuid=row.track.uuid,
                    track_title=row.track.title,
                    purpose=row.purpose,
                    old_value=GRANTED,
                    new_value=GRANTED,
                )
                for row in rows
            ],
        )
        counts: dict[str, dict[str, int]] = {}
        for row in rows:
            counts.setdefault(row.purpose.slug, {"granted": 0, "withdrawn": 0, "confirmed": 0})["confirmed"] += 1
        chain_heads = {actor.pk: {"seq": heads[actor.pk].seq, "hash": heads[actor.pk].hash}}
        queue_consent_change_notices(
            actor=actor,
            receipt_id=receipt_id,
            source=Source.WEB,
            cells=[ChangedCell(actor.pk, row.track.title, row.purpose.slug, row.purpose.name, True) for row in rows],
            chain_heads=chain_heads,
            what="reconfirmed",
        )
        return ChangeResult(receipt_id=receipt_id, counts=counts, event_count=len(rows), chain_heads=chain_heads)


def lapse_unconfirmed_grants(*, version: PolicyVersion) -> ChangeResult:
    """At the effective date, withdraw grants made under the old meaning and not confirmed.

    An audited change like any other (source policy_lapse, actor the system),
    and each artist is told, as for any change made on their behalf.
    """
    from consent.policy import grants_needing_reconfirmation

    total = ChangeResult()
    for purpose in version.purposes_changed.all():
        stale = grants_needing_reconfirmation(version).filter(purpose=purpose)
        result = change_consent(
            actor=None,
            tracks=Track.objects.filter(pk__in=stale.values("track_id")),
            changes={purpose.slug: False},
            source=Source.POLICY_LAPSE,
        )
        total.event_count += result.event_count
        total.counts.update(result.counts)
        total.chain_heads.update(result.chain_heads)
    return total


# --- Label delegations ----------------------------------------------------------------------


def record_delegation_events(
    *,
    actor: User | None,
    artist_id: int,
    label_id: int,
    changes: Iterable[tuple[str | None, str, str]],
    request_meta: RequestMeta | None = None,
    apply=None,
) -> ChangeResult:
    """Append delegation events to the artist's chain: (purpose slug or None for the status, old, new).

    `apply`, if given, runs after the chain head is locked and before the
    events are written, so the delegation row changes under the same lock the
    consent writers take: a bulk change in flight either finished before the
    delegation ended or sees it ended.
    """
    changes = [(slug, old, new) for slug, old, new in changes if old != new]
    with transaction.atomic():
        heads = _lock_chain_heads([artist_id])
        if apply is not None:
            apply()
        if not changes:
            return ChangeResult()
        purposes = _purposes_by_slug({slug for slug, _, _ in changes if slug})
        now = timezone.now()
        receipt_id = uuid.uuid4()
        policy = PolicyVersion.objects.in_force()
        _append_events(
            heads,
            [
                _event(
                    artist_id=artist_id,
                    actor=actor,
                    kind=Kind.DELEGATION_CHANGED,
                    source=Source.WEB,
                    now=now,
                    request_meta=request_meta,
                    policy=policy,
                    receipt_id=receipt_id,
                    purpose=purposes.get(slug) if slug else None,
                    old_value=old[:32],
                    new_value=new[:32],
                    label_id=label_id,
                )
                for slug, old, new in changes
            ],
        )
        head = heads[artist_id]
        return ChangeResult(
            receipt_id=receipt_id,
            event_count=len(changes),
            chain_heads={artist_id: {"seq": head.seq, "hash": head.hash}},
        )
