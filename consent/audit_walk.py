"""Fast walk of the audit chains: raw rows from one server-side cursor, no ORM objects.

Computes exactly what `consent.chain.canonical_json` and `event_hash` compute
(a test holds them equal on every kind of event), with the per-row work cut to
a tuple lookup, one dict and one JSON encoding. The walk may start each chain
at an anchor (the sequence number and hash a signed checkpoint recorded)
instead of at the genesis.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter

from django.db import connection

from consent.chain import (
    BODY_COLUMNS,
    HASHED_FIELDS_BY_VERSION,
    OPTIONAL_HASHED_FIELDS,
    PERSONAL_FIELDS,
    event_hash,
)
from consent.models import GENESIS_HASH, AuditActorData, AuditChainHead, AuditEvent, AuditSubjectData
from consent.selectors import PERSONAL_PART_LOOKUPS, ChainBreak, VerifyReport, _check_v1, _Erasures, _parts

# Row layout: id, prev_hash, hash, the body columns, then the erasable parts.
_PERSONAL_SELECT = ("a_present", "a_key", "ip", "user_agent", "s_present", "s_key", "track_title")
COLUMNS = ("id", "prev_hash", "hash", *BODY_COLUMNS, *_PERSONAL_SELECT)
_AT = {name: index for index, name in enumerate(COLUMNS)}
_ID, _PREV, _HASH = 0, 1, 2
_ARTIST, _SEQ, _VERSION, _CREATED = (_AT[name] for name in ("artist_id", "seq", "chain_version", "created_at"))
_BODY = slice(3, 3 + len(BODY_COLUMNS))
_PERSONAL = slice(3 + len(BODY_COLUMNS), len(COLUMNS))

_UUID_COLUMNS = {f.column for f in AuditEvent._meta.concrete_fields if f.get_internal_type() == "UUIDField"}
_encode_json = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_UTC = datetime.UTC


class _Encoder:
    """Canonical bytes of one chain version, straight from a row tuple."""

    def __init__(self, version: int) -> None:
        names = [name for name in HASHED_FIELDS_BY_VERSION[version] if name != "created_at"]
        self.names = names
        self.values = itemgetter(*(_AT[name] for name in names))
        self.optional = [(name, _AT[name]) for name in OPTIONAL_HASHED_FIELDS]

    def __call__(self, row: tuple) -> str:
        payload = {
            name: None if value is None else str(value)
            for name, value in zip(self.names, self.values(row), strict=True)
        }
        created = row[_CREATED]
        payload["created_at"] = created.astimezone(_UTC).isoformat(timespec="microseconds")
        for name, index in self.optional:
            if row[index] is not None:
                payload[name] = str(row[index])
        return _encode_json(payload)


V2 = _Encoder(2)


def canonical_from_row(row: tuple) -> str:
    """The canonical JSON of a version-2 row (version 1 goes through `consent.chain`)."""
    return V2(row)


@dataclass
class Anchor:
    """Where a chain's walk starts: the event a checkpoint recorded as its head."""

    seq: int
    hash: str


@dataclass
class WalkResult:
    report: VerifyReport = field(default_factory=VerifyReport)
    # The last (seq, hash) walked or anchored per artist, to compare with the chain heads.
    last: dict[int, tuple[int, str]] = field(default_factory=dict)
    # (artist, seq, hash) of every event walked, when asked for (a checkpoint records them).
    walked: list[tuple[int, int, str]] | None = None


def _sql(*, anchored: bool, artist_id: int | None) -> tuple[str, list]:
    event, actor, subject = (m._meta.db_table for m in (AuditEvent, AuditActorData, AuditSubjectData))
    # UUIDs as text: the canonical form is their hyphenated string, and the server makes it faster.
    body = ", ".join(f"e.{name}::text" if name in _UUID_COLUMNS else f"e.{name}" for name in BODY_COLUMNS)
    sql = (
        f"SELECT e.id, e.prev_hash, e.hash, {body}, "  # noqa: S608 (names from the models, no input)
        "a.event_id IS NOT NULL, a.key, a.ip, a.user_agent, s.event_id IS NOT NULL, s.key, s.track_title "
        f"FROM {event} e LEFT JOIN {actor} a ON a.event_id = e.hash LEFT JOIN {subject} s ON s.event_id = e.hash"
    )
    where, params = [], []
    if anchored:
        sql += (
            " LEFT JOIN unnest(%s::bigint[], %s::bigint[]) AS anchor(artist_id, seq) ON anchor.artist_id = e.artist_id"
        )
        where.append("e.seq > COALESCE(anchor.seq, 0)")
    if artist_id is not None:
        where.append("e.artist_id = %s")
        params.append(artist_id)
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY e.artist_id, e.seq", params


def fetch_rows(*, anchors: dict[int, Anchor], artist_id: int | None, chunk_size: int) -> Iterator[tuple]:
    """Every event after its chain's anchor, in (artist, seq) order, as tuples in COLUMNS order.

    On PostgreSQL one statement through a server-side cursor (call inside a
    transaction); elsewhere the ORM's row tuples, which convert each database's
    own types the same way.
    """
    if connection.vendor != "postgresql":
        yield from _fetch_rows_orm(anchors=anchors, artist_id=artist_id, chunk_size=chunk_size)
        return
    sql, params = _sql(anchored=bool(anchors), artist_id=artist_id)
    if anchors:
        ids = list(anchors)
        params = [ids, [anchors[a].seq for a in ids], *params]
    cursor = connection.chunked_cursor()
    try:
        cursor.cursor.itersize = chunk_size
        cursor.execute(sql, params)
        yield from cursor
    finally:
        cursor.close()


def _fetch_rows_orm(*, anchors: dict[int, Anchor], artist_id: int | None, chunk_size: int) -> Iterator[tuple]:
    events = AuditEvent.objects.order_by("artist_id", "seq").values_list(
        "id", "prev_hash", "hash", *BODY_COLUMNS, *PERSONAL_PART_LOOKUPS
    )
    if artist_id is not None:
        events = events.filter(artist_id=artist_id)
    for row in events.iterator(chunk_size=chunk_size):
        anchor = anchors.get(row[_ARTIST])
        if anchor is None or row[_SEQ] > anchor.seq:
            yield row


class ChainWalker:
    """Checks rows in (artist, seq) order; yields the first break of each chain, and problems with erasable parts."""

    def __init__(self, *, anchors: dict[int, Anchor], collect: bool = False) -> None:
        self.anchors = anchors
        self.erasures = _Erasures()
        self.result = WalkResult(walked=[] if collect else None)
        self.current: int | None = None
        self.broken = False
        self.broken_artists: set[int] = set()
        self.expected_seq = 1
        self.expected_prev = GENESIS_HASH

    def _start(self, artist: int) -> None:
        if self.current is not None and not self.broken:
            self.result.last[self.current] = (self.expected_seq - 1, self.expected_prev)
        anchor = self.anchors.get(artist)
        self.current, self.broken = artist, False
        self.expected_seq, self.expected_prev = (anchor.seq + 1, anchor.hash) if anchor else (1, GENESIS_HASH)
        self.result.report.chains += 1

    def walk(self, rows: Iterable[tuple]) -> Iterator[ChainBreak]:
        report = self.result.report
        walked = self.result.walked
        for row in rows:
            artist = row[_ARTIST]
            if artist != self.current:
                self._start(artist)
            report.events += 1
            if self.broken:
                continue
            for text, expected, found, breaks in self._check(row):
                if breaks:
                    self.broken = True
                    self.broken_artists.add(artist)
                yield ChainBreak(artist, row[_SEQ], row[_ID], text, expected, found)
            self.expected_seq, self.expected_prev = row[_SEQ] + 1, row[_HASH]
            if walked is not None:
                walked.append((artist, row[_SEQ], row[_HASH]))
        if self.current is not None and not self.broken:
            self.result.last[self.current] = (self.expected_seq - 1, self.expected_prev)

    def _check(self, row: tuple) -> list[tuple[str, str, str, bool]]:
        if row[_SEQ] != self.expected_seq:
            return [("sequence gap", str(self.expected_seq), str(row[_SEQ]), True)]
        prev = row[_PREV]
        if prev != self.expected_prev:
            return [("prev_hash does not link to the previous event", self.expected_prev, prev, True)]
        computed: str | None
        if row[_VERSION] == 2:
            problems = self._v2_parts(row)
            computed = hashlib.sha256((prev + V2(row)).encode()).hexdigest()
        else:
            problems, computed = self._other_version(row)
            if computed is None:
                return problems
        if computed != row[_HASH]:
            return [("hash does not match the event's content", computed, row[_HASH], True)]
        return problems

    def _v2_parts(self, row: tuple) -> list[tuple[str, str, str, bool]]:
        a_present, a_key, ip, user_agent, s_present, s_key, title = row[_PERSONAL]
        a_digest, s_digest = row[_AT["actor_data_digest"]], row[_AT["subject_data_digest"]]
        if (a_present or not a_digest) and (s_present or not s_digest):
            # The common case: nothing erased. Only held parts need their digest checked.
            problems = []
            if a_present and not self._holds(a_key, {"ip": ip or "", "user_agent": user_agent or ""}, a_digest):
                problems.append(self._part_problem("actor", a_digest))
            if s_present and not self._holds(s_key, {"track_title": title or ""}, s_digest):
                problems.append(self._part_problem("subject", s_digest))
            return problems
        return self._v2_parts_slow(row)

    @staticmethod
    def _holds(key: str | None, values: dict, digest: str) -> bool:
        """`consent.chain.digest_matches`, with the encoder made once (the values are strings already)."""
        if not (digest and key):
            return False
        mac = hmac.digest(bytes.fromhex(key), _encode_json(values).encode(), "sha256")
        return hmac.compare_digest(mac.hex(), digest)

    @staticmethod
    def _part_problem(name: str, digest: str) -> tuple[str, str, str, bool]:
        text = (
            f"{name} data does not match the digest in the event"
            if digest
            else (f"{name} data exists for an event that committed to none")
        )
        return (text, "intact or erased data", "other data", False)

    def _event(self, row: tuple) -> dict:
        return dict(zip(BODY_COLUMNS, row[_BODY], strict=True))

    def _v2_parts_slow(self, row: tuple) -> list[tuple[str, str, str, bool]]:
        from consent.selectors import _check_v2_parts

        event = self._event(row)
        texts = _check_v2_parts(event, _parts(event, _personal_tuple(row)), self.erasures, self.result.report)
        return [(text, "intact or erased data", "other data", False) for text in texts]

    def _other_version(self, row: tuple) -> tuple[list[tuple[str, str, str, bool]], str | None]:
        """Version 1: its hash covers the personal values, which may have been erased."""
        event = self._event(row)
        how, problem = _check_v1(event, _parts(event, _personal_tuple(row)), self.erasures)
        if problem:
            return [(problem, "the data or an erasure", "neither", True)], None
        if how == "linkage":
            self.result.report.erased += 1
            self.result.report.linkage_only += 1
            return [], None
        return [], event_hash(row[_PREV], event)


def _personal_tuple(row: tuple) -> tuple:
    """The erasable parts in the layout `consent.selectors._parts` reads."""
    a_present, a_key, ip, user_agent, s_present, s_key, title = row[_PERSONAL]
    return (True if a_present else None, a_key, ip, user_agent, True if s_present else None, s_key, title)


def chain_heads(artist_id: int | None = None) -> dict[int, tuple[int, str]]:
    heads = AuditChainHead.objects.order_by("artist_id")
    if artist_id is not None:
        heads = heads.filter(artist_id=artist_id)
    return {artist: (seq, hash_) for artist, seq, hash_ in heads.values_list("artist_id", "seq", "hash")}


def head_breaks(
    heads: dict[int, tuple[int, str]], last: dict[int, tuple[int, str]], broken: set[int]
) -> Iterator[ChainBreak]:
    """Every chain head must point at the last event of its chain (a broken chain is not reported twice)."""
    for artist, walked in last.items():
        head = heads.get(artist)
        if artist in broken:
            continue
        if head is None:
            yield ChainBreak(artist, None, None, "chain has no head row", "a head", "none")
        elif head != walked:
            yield ChainBreak(
                artist,
                None,
                None,
                "chain head does not match the last event",
                f"seq {walked[0]} hash {walked[1]}",
                f"seq {head[0]} hash {head[1]}",
            )
    for artist, (seq, _hash) in heads.items():
        if artist not in last and artist not in broken and seq:
            yield ChainBreak(artist, None, None, "chain head points at events that are missing", f"{seq} events", "0")


__all__ = ["COLUMNS", "PERSONAL_FIELDS", "Anchor", "ChainWalker", "WalkResult", "canonical_from_row", "fetch_rows"]
