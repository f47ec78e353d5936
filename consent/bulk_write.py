"""The bulk form of the consent writer: many cells of many artists in a constant number of statements.

A bulk change applies tens of thousands of (track, purpose) cells per chunk.
`write_cells` keeps every rule of consent.services (permission per cell under
the locks, one chained audit event per changed cell, the outbox row per artist
in the same transaction, the consent hook) but does each step once for the
whole chunk: lock the chain heads, read the cells with their tracks (locked)
and current consent in one SELECT, upsert the consent rows in one statement,
insert the events, their personal parts and the outbox rows in one statement
each, and move the heads in one UPDATE. The chain links are computed in one
loop over plain tuples (consent.chain.link_events), byte for byte what seal()
writes. Values travel to PostgreSQL as one array literal per column.

PostgreSQL only: on another database `supported()` is False and callers use
consent.services.set_track_consents.
"""

from __future__ import annotations

import contextlib
import gc
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from django.db import connection, transaction
from django.db.models import Field, QuerySet
from django.utils import timezone

from accounts.models import User
from consent import chain
from consent.hooks import ConsentCellChange, notify_consent_changed
from consent.models import AuditActorData, AuditChainHead, AuditEvent, AuditSubjectData, Consent, Purpose
from consent.notices import ChangedCell, consent_change_notices
from consent.services import (
    GRANTED,
    NOT_GRANTED,
    ChangeResult,
    ConsentPermissionDenied,
    actor_kind_for,
    can_change_consent,
    delegated_scopes,
)
from consent.services.audit import lock_chain_heads, policy_in_force, require_confirmation, valid_source
from consent.services.writes import BulkChangeRef
from notifications.services import NewNotification, queue_notifications
from platformkit.request_meta import RequestMeta
from tracks.models import Track

if TYPE_CHECKING:
    from consent.models import PolicyVersion


Kind = AuditEvent.Kind

# The fields of a consent_changed event that differ between the cells of one chunk.
VARYING = (
    "artist_id",
    "seq",
    "actor_kind",
    "track_id",
    "track_uuid",
    "purpose_id",
    "purpose_slug",
    "old_value",
    "new_value",
    "subject_data_digest",
)


def supported() -> bool:
    return connection.vendor == "postgresql"


class _Cell(NamedTuple):
    """One cell to change, as read under the locks (a tuple: a bulk chunk makes tens of thousands)."""

    track_id: int
    track_uuid: str
    title: str
    owner_id: int
    purpose: Purpose
    granted: bool
    exists: bool  # a consent row for the cell exists already
    purpose_id: int
    purpose_slug: str


def _event_field(name: str) -> Field[Any, Any]:
    field = AuditEvent._meta.get_field(name)
    assert isinstance(field, Field)  # every column written here is a concrete field of the event
    return field


def _event_column(name: str) -> str:
    column = _event_field(name).column
    assert column is not None
    return column


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _plain_array(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal of ints or of strs made of letters, digits and hyphens only (ids, UUIDs, hex)."""
    return "{" + ",".join(map(str, values)) + "}"


def _array(values: Iterable[str]) -> str:
    """A PostgreSQL array literal of any text elements, each quoted."""
    texts = list(values)
    if not texts:
        return "{}"
    if any("\\" in text or '"' in text for text in set(texts)):
        texts = [text.replace("\\", "\\\\").replace('"', '\\"') for text in texts]
    # Quoted, every element is itself: commas, braces, spaces, "" and "NULL" included.
    return '{"' + '","'.join(texts) + '"}'


def _read_cells(cells: QuerySet) -> list[tuple]:
    """The cells with their track (locked, in the writers' order) and current consent: one SELECT.

    `cells` yields (track_id, purpose_id, new_granted). A cell whose track is
    gone drops out. Called with the chain heads locked: every consent writer
    takes them first, so the consent read here cannot change before commit.
    Rows come in the order events are appended: artist, track, purpose.
    """
    sub_sql, sub_params = cells.query.sql_with_params()
    sql = f"""
        SELECT t.id, t.uuid::text, t.title, t.owner_id, i.purpose_id, i.new_granted, c.granted, c.changed_at
        FROM ({sub_sql}) AS i (track_id, purpose_id, new_granted)
        JOIN {_table(Track)} t ON t.id = i.track_id
        JOIN {_table(Purpose)} p ON p.id = i.purpose_id
        LEFT JOIN {_table(Consent)} c ON c.track_id = i.track_id AND c.purpose_id = i.purpose_id
        ORDER BY t.owner_id, t.id, p.ordering, p.id
        FOR UPDATE OF t
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, sub_params)
        return cursor.fetchall()


def _decide(rows: Sequence[tuple], purposes: Mapping[int, Purpose], unchanged_since) -> tuple[list[_Cell], int]:
    """The cells whose answer changes; cells changed after `unchanged_since` are skipped and counted."""
    changed: list[_Cell] = []
    skipped = 0
    for track_id, track_uuid, title, owner_id, purpose_id, granted, old, changed_at in rows:
        if unchanged_since is not None and changed_at is not None and changed_at > unchanged_since:
            skipped += 1
        elif bool(old) != granted:
            purpose = purposes[purpose_id]
            exists = old is not None
            changed.append(
                _Cell(track_id, track_uuid, title or "", owner_id, purpose, granted, exists, purpose_id, purpose.slug)
            )
    return changed, skipped


def _check_permission(actor, rows: Sequence[tuple], purposes: Mapping[int, Purpose], label_id) -> None:
    """Every cell asked for, allowed or refused as consent.services decides it; the delegations read under lock."""
    owners = {row[3] for row in rows}
    delegations = delegated_scopes(actor, owners, label_id=label_id)
    asked = {(row[3], purposes[row[4]].slug, row[5]) for row in rows}
    refused = [
        (owner, slug, granted)
        for owner, slug, granted in asked
        if not can_change_consent(actor, owner_id=owner, granted=granted, purpose_slug=slug, delegations=delegations)
    ]
    if not refused:
        return
    if any(granted for _, _, granted in refused) and actor is not None and actor.is_staff:
        raise ConsentPermissionDenied.staff_grant()
    refused_cells = set(refused)
    count = len({row[0] for row in rows if (row[3], purposes[row[4]].slug, row[5]) in refused_cells})
    raise ConsentPermissionDenied.on_tracks(count)


def _write_consent(actor, changed: Sequence[_Cell], policy: PolicyVersion, now) -> None:
    """The changed cells' consent rows: one INSERT for the new ones, one UPDATE for the existing ones.

    Two plain statements rather than one INSERT ... ON CONFLICT, whose speculative insertion costs a third
    more per row; under the chain-head locks nobody else writes these rows. Both always run (an empty one
    costs nothing) so that a chunk's statements never depend on what it holds.
    """
    kinds = {owner: actor_kind_for(actor, owner) for owner in {c.owner_id for c in changed}}
    new = [c for c in changed if not c.exists]
    old = [c for c in changed if c.exists]
    insert = f"""
        INSERT INTO {_table(Consent)}
            (track_id, purpose_id, granted, changed_at, changed_by_id, changed_by_kind, policy_version_id)
        SELECT x.track_id, x.purpose_id, x.granted, %s, %s, x.kind, %s
        FROM unnest(%s::bigint[], %s::bigint[], %s::boolean[], %s::text[]) AS x (track_id, purpose_id, granted, kind)
    """  # noqa: S608
    update = f"""
        UPDATE {_table(Consent)} c SET
            granted = x.granted, changed_at = %s, changed_by_id = %s, changed_by_kind = x.kind, policy_version_id = %s
        FROM unnest(%s::bigint[], %s::bigint[], %s::boolean[], %s::text[]) AS x (track_id, purpose_id, granted, kind)
        WHERE c.track_id = x.track_id AND c.purpose_id = x.purpose_id
    """  # noqa: S608
    with connection.cursor() as cursor:
        for sql, cells in ((insert, new), (update, old)):
            params = [
                now,
                actor.pk if actor else None,
                policy.pk,
                _plain_array(c.track_id for c in cells),
                _plain_array(c.purpose_id for c in cells),
                _plain_array("t" if c.granted else "f" for c in cells),
                _array(kinds[c.owner_id] for c in cells),
            ]
            cursor.execute(sql, params)


@dataclass(frozen=True)
class _Common:
    """What every event of the chunk shares."""

    actor: Any
    source: str
    policy: Any
    receipt_id: uuid.UUID
    request_meta: RequestMeta
    label_id: int | None
    bulk_change_id: int | None
    now: Any

    def fields(self) -> dict[str, Any]:
        return {
            "chain_version": chain.CURRENT_VERSION,
            "actor_id": self.actor.pk if self.actor is not None else None,
            "source": self.source,
            "kind": str(Kind.CONSENT_CHANGED),
            "policy_version_id": self.policy.pk,
            "request_id": self.request_meta.request_id[:64],
            "receipt_id": self.receipt_id,
            "actor_data_digest": "",
            "label_id": self.label_id,
            "bulk_change_id": self.bulk_change_id,
            "created_at": self.now,
        }


@dataclass
class _Sealed:
    """A chunk's events, chained and with their personal parts committed, as the INSERTs' array literals.

    Building the literals is Python's share of those statements, so it is done here too, off the writing thread.
    """

    fields: dict[str, Any]
    varying: tuple[str, ...]
    chain_state: dict[int, tuple[int, str]]
    event_arrays: list[str]
    subject_arrays: list[str] | None
    actor_arrays: list[str] | None


def _seal(chain_state: dict[int, tuple[int, str]], changed: Sequence[_Cell], common: _Common) -> _Sealed:
    """One chained consent_changed event per cell, from plain values only (no database, no ORM objects).

    `chain_state` (artist id -> (seq, hash)) is advanced in place.
    """
    meta = common.request_meta
    actor_values = (meta.ip, meta.user_agent[:512])
    # Each event gets its own key (chain.seal does the same), so erasing one event's data erases only it.
    if any(actor_values):
        actor_parts = chain.commit_many(chain.ACTOR_DATA_FIELDS, [actor_values] * len(changed))
    else:
        actor_parts = [("", "")] * len(changed)
    subject_parts = chain.commit_many(chain.SUBJECT_DATA_FIELDS, [(c.title[:300],) for c in changed])
    fields = common.fields()
    varying: tuple[str, ...] = VARYING
    if any(digest for _, digest in actor_parts):
        fields.pop("actor_data_digest")
        varying = (*VARYING, "actor_data_digest")
    template = chain.LinkTemplate(fields, varying)
    kinds = {owner: actor_kind_for(common.actor, owner) for owner in chain_state}
    values = [
        (
            c.owner_id,
            0,
            kinds[c.owner_id],
            c.track_id,
            c.track_uuid,
            c.purpose_id,
            c.purpose_slug,
            NOT_GRANTED if c.granted else GRANTED,
            GRANTED if c.granted else NOT_GRANTED,
            subject[1],
            actor[1],
        )[: len(varying)]
        for c, subject, actor in zip(changed, subject_parts, actor_parts, strict=True)
    ]
    links = chain.link_events(template, values, chain_state)
    hashes = [link[2] for link in links]
    return _Sealed(
        fields,
        varying,
        chain_state,
        event_arrays=_event_arrays(varying, values, links),
        subject_arrays=_part_arrays(hashes, subject_parts, [(c.title[:300],) for c in changed]),
        actor_arrays=_part_arrays(hashes, actor_parts, [actor_values] * len(changed)),
    )


def _store(heads: dict[int, AuditChainHead], changed: Sequence[_Cell], sealed: _Sealed) -> None:
    """The sealed events, their personal parts and the moved heads: one statement each."""
    _insert_events(sealed.fields, sealed.varying, sealed.event_arrays)
    _insert_parts(AuditSubjectData, ("track_title",), sealed.subject_arrays)
    _insert_parts(AuditActorData, ("ip", "user_agent"), sealed.actor_arrays)
    for artist_id, (seq, digest) in sealed.chain_state.items():
        heads[artist_id].seq, heads[artist_id].hash = seq, digest
    _move_heads({a: sealed.chain_state[a] for a in {c.owner_id for c in changed}})


# The varying columns whose values are ints or UUIDs (no quoting); the rest may be "" and are quoted.
_PLAIN = {"artist_id", "seq", "track_id", "track_uuid", "purpose_id"}


def _event_arrays(varying: Sequence[str], values, links) -> list[str]:
    """One array literal per varying column, then prev_hash and hash, with each event's seq from its link."""
    arrays = [(_plain_array if name in _PLAIN else _array)(row[i] for row in values) for i, name in enumerate(varying)]
    arrays[varying.index("seq")] = _plain_array(link[0] for link in links)
    return [*arrays, _plain_array(link[1] for link in links), _plain_array(link[2] for link in links)]


def _insert_events(fields: Mapping[str, Any], varying: Sequence[str], arrays: list[str]) -> None:
    constant = [name for name in fields if fields[name] is not None or name not in chain.OPTIONAL_HASHED_FIELDS]
    columns = [*constant, *varying, "prev_hash", "hash"]
    column_types = {name: AuditEvent._meta.get_field(name).db_type(connection) for name in varying}
    unnest = ", ".join([*(f"%s::{column_types[name]}[]" for name in varying), "%s::varchar[]", "%s::varchar[]"])
    names = [_event_column(name) for name in columns]
    sql = f"""
        INSERT INTO {_table(AuditEvent)} ({", ".join(names)})
        SELECT {", ".join(["%s"] * len(constant))}, x.*
        FROM unnest({unnest}) AS x
    """  # noqa: S608
    constants = [_event_field(name).get_db_prep_save(fields[name], connection) for name in constant]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*constants, *arrays])


def _part_arrays(hashes: Sequence[str], parts, values) -> list[str] | None:
    """The array literals of the erasable personal parts (event, key, values) of the events that have any."""
    kept = [(h, key, vals) for h, (key, _), vals in zip(hashes, parts, values, strict=True) if key]
    if not kept:
        return None
    arrays = [_plain_array(h for h, _, _ in kept), _plain_array(key for _, key, _ in kept)]
    return arrays + [_array(vals[i] for _, _, vals in kept) for i in range(len(kept[0][2]))]


def _insert_parts(model, names: Sequence[str], arrays: list[str] | None) -> None:
    if arrays is None:
        return
    columns = ["event_id", "key", *names]
    unnest = ", ".join(["%s::varchar[]"] * len(columns))
    sql = f"INSERT INTO {_table(model)} ({', '.join(columns)}) SELECT * FROM unnest({unnest})"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)


def _move_heads(new_heads: Mapping[int, tuple[int, str]]) -> None:
    sql = f"""
        UPDATE {_table(AuditChainHead)} h SET seq = x.seq, hash = x.hash
        FROM unnest(%s::bigint[], %s::bigint[], %s::varchar[]) AS x (artist_id, seq, hash)
        WHERE h.artist_id = x.artist_id
    """  # noqa: S608
    artists = sorted(new_heads)
    params = [
        _plain_array(artists),
        _plain_array(new_heads[a][0] for a in artists),
        _plain_array(new_heads[a][1] for a in artists),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector while a chunk builds its tuples and strings.

    A chunk allocates hundreds of thousands of them (none in a cycle: reference counting frees them),
    and each allocation burst would otherwise run collections over the whole process heap; measured
    on 20,000 cells, the key and digest loop alone took 2-3 times as long with it running.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def write_cells(
    *,
    actor: User | None,
    owner_ids: Collection[int],
    cells: QuerySet,
    source: str,
    request_meta: RequestMeta | None = None,
    confirmed_purposes: Collection[str] = (),
    bulk_change: BulkChangeRef | None = None,
    unchanged_since=None,
) -> ChangeResult:
    """Set each cell of `cells` (a values_list of track_id, purpose_id, new_granted) for the artists `owner_ids`.

    The same contract as consent.services.set_track_consents with the same
    arguments: one receipt, one email per artist, ConsentPermissionDenied (and
    nothing written) if any cell is not the actor's to change, cells changed
    after `unchanged_since` left alone and counted in `skipped`.
    """
    source = valid_source(source)
    purposes = {p.pk: p for p in Purpose.objects.all()}
    with transaction.atomic(), _no_cycle_collection():
        heads = lock_chain_heads(owner_ids)
        rows = _read_cells(cells)
        late = {row[3] for row in rows} - heads.keys()
        if late:
            # A cell names a track of an artist outside `owner_ids`: lock that chain too.
            heads.update(lock_chain_heads(late))
        if not rows:
            return ChangeResult()
        _check_permission(actor, rows, purposes, bulk_change.label_id if bulk_change else None)
        changed, skipped = _decide(rows, purposes, unchanged_since)
        if not changed:
            return ChangeResult(skipped=skipped)
        granting = {c.purpose_id for c in changed if c.granted}
        require_confirmation([purposes[pk] for pk in granting], confirmed_purposes)
        common = _Common(
            actor=actor,
            source=source,
            policy=policy_in_force(),
            receipt_id=uuid.uuid4(),
            request_meta=request_meta or RequestMeta(),
            label_id=bulk_change.label_id if bulk_change else None,
            bulk_change_id=bulk_change.pk if bulk_change else None,
            now=timezone.now(),
        )
        chain_state = {artist_id: (head.seq, head.hash) for artist_id, head in heads.items()}
        # Read here: the sealer thread must not touch the database.
        artists = User.objects.in_bulk(sorted({c.owner_id for c in changed}))
        label_name = bulk_change.label.name if bulk_change else ""
        # The chain's hashing and the notices' wording are plain Python on values in memory, and the consent
        # rows' statement leaves this thread waiting on the database: doing them on a second thread meanwhile
        # takes them off the chunk's time.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="consent-seal") as sealer:
            # (Should the write fail, leaving the block still waits for the sealer before the chunk unwinds.)
            sealing = sealer.submit(_seal_and_word, chain_state, changed, common, artists, label_name)
            _write_consent(actor, changed, common.policy, common.now)
            notify_consent_changed([ConsentCellChange(c.track_id, c.purpose_slug, c.granted) for c in changed])
            sealed, notices = sealing.result()
        _store(heads, changed, sealed)
        # In this transaction: the emails exist if and only if the change does.
        queue_notifications(notices)
        return _result(changed, sealed, common, skipped)


def _chain_heads(changed: Sequence[_Cell], chain_state: Mapping[int, tuple[int, str]]) -> dict[int, dict[str, Any]]:
    return {a: {"seq": chain_state[a][0], "hash": chain_state[a][1]} for a in sorted({c.owner_id for c in changed})}


def _seal_and_word(
    chain_state: dict[int, tuple[int, str]],
    changed: Sequence[_Cell],
    common: _Common,
    artists: Mapping[int, User],
    label_name: str,
) -> tuple[_Sealed, list[NewNotification]]:
    """The chunk's sealed events and its artists' notices (one each), from values in memory only."""
    sealed = _seal(chain_state, changed, common)
    notices = consent_change_notices(
        actor=common.actor,
        receipt_id=common.receipt_id,
        source=common.source,
        cells=[
            ChangedCell(c.owner_id, c.title, c.purpose_slug, c.purpose.name, c.granted, c.track_id) for c in changed
        ],
        chain_heads=_chain_heads(changed, sealed.chain_state),
        label_name=label_name,
        what="tracks",
        artists=artists,
    )
    return sealed, notices


def _result(changed: Sequence[_Cell], sealed: _Sealed, common: _Common, skipped: int) -> ChangeResult:
    counts: dict[str, dict[str, int]] = {}
    for c in changed:
        bucket = counts.setdefault(c.purpose_slug, {"granted": 0, "withdrawn": 0})
        bucket["granted" if c.granted else "withdrawn"] += 1
    return ChangeResult(
        receipt_id=common.receipt_id,
        counts=counts,
        event_count=len(changed),
        chain_heads=_chain_heads(changed, sealed.chain_state),
        skipped=skipped,
    )
