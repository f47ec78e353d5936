"""Reads of the per-track consent summary (consent.models.TrackConsentSummary) and its check against the consent table.

The summary is written by database triggers only (consent.summary_sql); this
module turns catalogue filters into conditions on its masks and tells
verify_audit_log where it disagrees with the consent rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

from django.db import connection
from django.db.models import BigIntegerField, BooleanField, F, Field, Func, QuerySet, Value
from django.db.models.expressions import RawSQL

from consent.models import OwnerGrantCount, Purpose, TrackConsentSummary


def available() -> bool:
    """The triggers exist on PostgreSQL only; elsewhere callers read the consent table."""
    return connection.vendor == "postgresql"


def bit(purpose: Purpose) -> int:
    assert purpose.mask_bit is not None, "a purpose gets its bit from the trigger when it is created"
    return 1 << purpose.mask_bit


def with_bit(rows: QuerySet, column: str, mask: int, *, is_set: bool, prefix: str = "") -> QuerySet:
    """`rows` whose mask `column` (reached through `prefix`) has any of the bits of `mask` set, or none of them."""
    name = f"_{column}_{mask}_{'set' if is_set else 'unset'}"
    rows = rows.alias(**{name: F(f"{prefix}{column}").bitand(mask)})
    return rows.filter(**{f"{name}__gt" if is_set else name: 0})


def purpose_bit(slug: str) -> RawSQL:
    """The bit of the purpose `slug`, looked up inside the query (no purpose given: every bit)."""
    if not slug:
        return RawSQL("-1::bigint", [], output_field=BigIntegerField())
    return RawSQL(  # noqa: S611 (the slug travels as a parameter)
        f"(SELECT 1::bigint << p.mask_bit FROM {Purpose._meta.db_table} p WHERE p.slug = %s)",  # noqa: S608
        [slug],
        output_field=BigIntegerField(),
    )


def state_filter(tracks: QuerySet, purpose: str, state: str, prefix: str = "consent_summary__") -> QuerySet:
    """`tracks` narrowed to those whose `purpose` (any purpose if blank) is in `state`, from the summary.

    granted / withdrawn / lapsed: that bit set in that mask (for any purpose:
    any bit). never: the bit in none of the masks (for any purpose: no
    consent row at all), as consent.selectors' EXISTS on the consent table says it.
    """
    mask = purpose_bit(purpose)
    if state == "never":
        return tracks.alias(
            _never=(F(f"{prefix}granted").bitor(F(f"{prefix}withdrawn")).bitor(F(f"{prefix}lapsed"))).bitand(mask)  # type: ignore[arg-type]  # the stubs allow ints only; Django takes expressions
        ).filter(_never=0)
    column = {"granted": "granted", "withdrawn": "withdrawn", "lapsed": "lapsed"}[state]
    return tracks.alias(_state=F(f"{prefix}{column}").bitand(mask)).exclude(_state=0)  # type: ignore[arg-type]  # the stubs allow ints only; Django takes expressions


@dataclass(frozen=True)
class GrantCounts:
    """Among the tracks with at least one grant: how many, and how many per purpose id."""

    tracks: int
    per_purpose: dict[int, int]


class _EqualsAny(Func):
    """`expression = ANY(%s::bigint[])`: the ids bound as one array parameter."""

    arg_joiner = " = ANY("
    template = "%(expressions)s::bigint[])"
    output_field = BooleanField()


def owner_in(owner_ids: Collection[int]) -> Func:
    """`owner_id = ANY(ids)`: PostgreSQL hashes the list, and a roster of thousands of artists is one
    parameter, not thousands. Resolved by the ORM, so it names whatever alias the table has in the query."""
    return _EqualsAny(F("owner_id"), Value([int(pk) for pk in owner_ids], output_field=Field()))


def grant_counts(
    owner_ids: Collection[int] | QuerySet, purposes: list[Purpose], *, required: int = 0, refused: int = 0
) -> GrantCounts:
    """Counted from OwnerGrantCount (a few rows per artist), in one query.

    `required` bits must all be granted, `refused` bits none. Tracks with no
    grant at all are not in OwnerGrantCount; callers that need them count them.
    """
    if isinstance(owner_ids, QuerySet):
        rows = OwnerGrantCount.objects.filter(owner_id__in=owner_ids)
    else:
        rows = OwnerGrantCount.objects.filter(owner_in(owner_ids))
    rows = rows.filter(tracks__gt=0)
    if required:
        rows = rows.alias(_required=F("granted").bitand(required)).filter(_required=required)
    if refused:
        rows = rows.alias(_refused=F("granted").bitand(refused)).filter(_refused=0)
    per_mask = list(rows.values_list("granted", "tracks"))
    return GrantCounts(
        tracks=sum(n for _, n in per_mask),
        per_purpose={p.pk: sum(n for mask, n in per_mask if mask & b) for p, b in ((p, bit(p)) for p in purposes)},
    )


# --- Checked by verify_audit_log ---------------------------------------------------------------


@dataclass(frozen=True)
class SummaryMismatch:
    what: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"{self.what}: the consent table says {self.expected}, the catalogue summary says {self.found}"


_EXPECTED = """
    SELECT t.id, t.owner_id, t.title, t.created_at,
        coalesce(bit_or(1::bigint << p.mask_bit) FILTER (WHERE c.granted), 0),
        coalesce(bit_or(1::bigint << p.mask_bit)
            FILTER (WHERE NOT c.granted AND c.changed_by_kind <> 'system'), 0),
        coalesce(bit_or(1::bigint << p.mask_bit)
            FILTER (WHERE NOT c.granted AND c.changed_by_kind = 'system'), 0)
    FROM tracks_track t
    LEFT JOIN (consent_consent c JOIN consent_purpose p ON p.id = c.purpose_id) ON c.track_id = t.id
    {where}
    GROUP BY t.id
"""


def _masks(granted: int, withdrawn: int, lapsed: int, names: dict[int, str]) -> str:
    parts = []
    for label, mask in (("granted", granted), ("withdrawn", withdrawn), ("lapsed", lapsed)):
        slugs = [slug for pk, slug in sorted(names.items()) if mask & (1 << pk)]
        parts.append(f"{label}: {', '.join(slugs) or 'none'}")
        unknown = mask & ~sum(1 << pk for pk in names)
        if unknown:
            parts[-1] += f" (and unknown bits {unknown:#x})"
    return "; ".join(parts)


def iter_summary_mismatches(*, artist_id: int | None = None) -> Iterator[SummaryMismatch]:
    """Recompute every track's summary from the consent table and compare it with the stored one.

    Also recounts OwnerGrantCount from the summary. Tracks without a summary
    row, summary rows without a track, and each differing mask are reported.
    """
    if not available():
        return
    names = {b: slug for b, slug in Purpose.objects.values_list("mask_bit", "slug") if b is not None}
    where, params = ("WHERE t.owner_id = %s", [artist_id]) if artist_id is not None else ("", [])
    stored_filter = "WHERE s.owner_id = %s" if artist_id is not None else ""
    sql = f"""
        SELECT e.id, s.track_id, e.owner_id, s.owner_id, e.title, s.title, e.created_at, s.created_at,
            e.g, s.granted, e.w, s.withdrawn, e.l, s.lapsed
        FROM ({_EXPECTED.format(where=where)}) AS e (id, owner_id, title, created_at, g, w, l)
        FULL JOIN (SELECT * FROM {TrackConsentSummary._meta.db_table} s {stored_filter}) AS s ON s.track_id = e.id
        WHERE e.id IS NULL OR s.track_id IS NULL
           OR (e.owner_id, e.title, e.created_at, e.g, e.w, e.l)
              IS DISTINCT FROM (s.owner_id, s.title, s.created_at, s.granted, s.withdrawn, s.lapsed)
        ORDER BY coalesce(e.id, s.track_id)
    """  # noqa: S608 (table names from the models)
    with connection.cursor() as cursor:
        cursor.execute(sql, params + ([artist_id] if artist_id is not None else []))
        rows = cursor.fetchall()
    for track_id, summary_id, owner, s_owner, title, s_title, created, s_created, g, sg, w, sw, lp, sl in rows:
        if summary_id is None:
            yield SummaryMismatch(f"track {track_id}", "a track", "no row for it")
        elif track_id is None:
            yield SummaryMismatch(f"track {summary_id}", "no such track", "a row for it")
        elif (g, w, lp) != (sg, sw, sl):
            yield SummaryMismatch(f"track {track_id}", _masks(g, w, lp, names), _masks(sg, sw, sl, names))
        else:
            yield SummaryMismatch(
                f"track {track_id}",
                f"owner {owner}, title {title!r}, uploaded {created.isoformat()}",
                f"owner {s_owner}, title {s_title!r}, uploaded {s_created.isoformat()}",
            )
    yield from _count_mismatches(artist_id)


def _count_mismatches(artist_id: int | None) -> Iterator[SummaryMismatch]:
    summary = TrackConsentSummary.objects.exclude(granted=0)
    counts = OwnerGrantCount.objects.exclude(tracks=0)
    if artist_id is not None:
        summary, counts = summary.filter(owner_id=artist_id), counts.filter(owner_id=artist_id)
    expected: dict[tuple[int, int], int] = {}
    for owner, granted in summary.values_list("owner_id", "granted").iterator(chunk_size=5000):
        expected[(owner, granted)] = expected.get((owner, granted), 0) + 1
    for owner, granted, tracks in counts.values_list("owner_id", "granted", "tracks"):
        want = expected.pop((owner, granted), 0)
        if want != tracks:
            yield SummaryMismatch(
                f"grant count of artist {owner}, grants {granted:#x}", f"{want} track(s)", f"{tracks} track(s)"
            )
    for (owner, granted), want in sorted(expected.items()):
        yield SummaryMismatch(f"grant count of artist {owner}, grants {granted:#x}", f"{want} track(s)", "no row")
