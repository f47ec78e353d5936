"""Verify the audit chains from the last good signed checkpoint, or from the start.

Incremental (the default): each chain the checkpoint covers is anchored at
the head it recorded (the stored event at that sequence number must still
carry that hash) and only the events after it are recomputed. Full: every
event is recomputed from the genesis. Either way the stored events are held
against the checkpoint's heads, so a consistent rewrite of events and chain
head before the checkpoint (a superuser with the triggers off) is found, and
the checkpoints' event records name the first event rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Q

from consent import checkpoints
from consent.audit_walk import Anchor, ChainWalker, chain_heads, fetch_rows, head_breaks
from consent.checkpoints import Checkpoint, CheckpointError, CheckpointStore
from consent.models import AuditEvent
from consent.selectors import ChainBreak, VerifyReport


class CheckpointRefused(Exception):
    """The chains do not verify, so no checkpoint may vouch for them."""

    def __init__(self, breaks: list[ChainBreak]) -> None:
        self.breaks = breaks
        super().__init__(f"{len(breaks)} problem(s) in the audit chains; the first: {breaks[0]}")


@dataclass
class Verification:
    report: VerifyReport
    breaks: list[ChainBreak]
    checkpoint: Checkpoint | None
    checkpoint_problems: list[str]
    incremental: bool
    heads: dict[int, tuple[int, str]] = field(default_factory=dict)
    walked: list[tuple[int, int, str]] | None = None


def _stored_at(points: dict[int, int]) -> dict[int, tuple[int, str]]:
    """artist -> (event id, stored hash) of the event at each given sequence number."""
    if not points:
        return {}
    events = AuditEvent.objects.values_list("artist_id", "id", "hash")
    if connection.vendor == "postgresql":
        artists = list(points)
        sql = (
            f"SELECT e.artist_id, e.id, e.hash FROM {AuditEvent._meta.db_table} e "  # noqa: S608 (model table name)
            "JOIN unnest(%s::bigint[], %s::bigint[]) AS p(artist_id, seq) "
            "ON e.artist_id = p.artist_id AND e.seq = p.seq"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [artists, [points[a] for a in artists]])
            return {artist: (pk, hash_) for artist, pk, hash_ in cursor.fetchall()}
    found = {}
    items = list(points.items())
    for start in range(0, len(items), 400):
        condition = Q()
        for artist, seq in items[start : start + 400]:
            condition |= Q(artist_id=artist, seq=seq)
        found.update({artist: (pk, hash_) for artist, pk, hash_ in events.filter(condition)})
    return found


def _first_rewritten(checkpoint: Checkpoint, artist: int, store: CheckpointStore) -> ChainBreak:
    """Compare one artist's stored events with what the signed checkpoints recorded; name the first that differs."""
    seq_at, hash_at = checkpoint.heads[artist]
    label = f"checkpoint {checkpoint.number} ({checkpoint.created_at})"
    try:
        recorded = checkpoints.recorded_events(store, checkpoint.number, artist)
    except CheckpointError as error:
        recorded, reason = {}, str(error)
    else:
        reason = ""
    stored = (
        AuditEvent.objects.filter(artist_id=artist, seq__lte=seq_at).order_by("seq").values_list("seq", "id", "hash")
    )
    by_seq = {seq: (pk, hash_) for seq, pk, hash_ in stored}
    for seq in sorted(recorded):
        pk, hash_ = by_seq.get(seq, (None, "missing"))
        if hash_ != recorded[seq]:
            return ChainBreak(artist, seq, pk, f"event rewritten or removed since {label}", recorded[seq], hash_)
    pk, hash_ = by_seq.get(seq_at, (None, "missing"))
    detail = f"; its event records could not be read ({reason})" if reason else ""
    return ChainBreak(
        artist, seq_at, pk, f"the chain up to here differs from the head signed in {label}{detail}", hash_at, hash_
    )


def _anchor_breaks(checkpoint: Checkpoint, artist_id: int | None, store: CheckpointStore) -> list[ChainBreak]:
    """The stored event at every head the checkpoint recorded must still carry the recorded hash."""
    heads = checkpoint.heads
    if artist_id is not None:
        heads = {artist_id: heads[artist_id]} if artist_id in heads else {}
    stored = _stored_at({artist: seq for artist, (seq, _hash) in heads.items() if seq})
    breaks = []
    for artist, (seq, hash_) in heads.items():
        if seq and stored.get(artist, (None, None))[1] != hash_:
            breaks.append(_first_rewritten(checkpoint, artist, store))
    return breaks


def verify_audit_chains(
    *, full: bool = False, artist_id: int | None = None, chunk_size: int = 5000, collect: bool = False
) -> Verification:
    store = CheckpointStore.from_settings()
    checkpoint, problems = checkpoints.last_good(store)
    incremental = not full and checkpoint is not None
    own_snapshot = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if own_snapshot:
            # One snapshot for the heads, the anchors and the walk.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        heads = chain_heads(artist_id)
        breaks = _anchor_breaks(checkpoint, artist_id, store) if checkpoint else []
        rewritten = {b.artist_id for b in breaks}
        anchors = {}
        if incremental and checkpoint is not None:
            anchors = {
                artist: Anchor(seq, hash_)
                for artist, (seq, hash_) in checkpoint.heads.items()
                if artist not in rewritten and (artist_id is None or artist == artist_id)
            }
        walker = ChainWalker(anchors=anchors, collect=collect)
        rows = fetch_rows(anchors=anchors, artist_id=artist_id, chunk_size=chunk_size)
        breaks += [b for b in walker.walk(rows) if b.artist_id not in rewritten]
        last = walker.result.last
        for artist, anchor in anchors.items():
            last.setdefault(artist, (anchor.seq, anchor.hash))
        breaks += head_breaks(heads, last, walker.broken_artists | rewritten)
    report = walker.result.report
    report.breaks = breaks
    return Verification(report, breaks, checkpoint, problems, incremental, heads, walker.result.walked)


def create_checkpoint() -> Checkpoint:
    """Verify from the last good checkpoint, then sign and store the heads (refused if anything is broken)."""
    verification = verify_audit_chains(collect=True)
    if verification.breaks:
        raise CheckpointRefused(verification.breaks)
    return checkpoints.write(
        heads=verification.heads, new_events=verification.walked or [], previous=verification.checkpoint
    )
