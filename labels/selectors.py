"""Reads for label pages: the catalogue, its filters and its coverage chart."""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from django.utils.translation import gettext

from accounts.models import User
from consent import summary as consent_summary
from consent.forms import CatalogueFilterForm
from consent.models import Consent, OwnerGrantCount, Purpose, TrackConsentSummary
from consent.selectors import TrackFilter, filter_tracks
from consent.vocabulary import Scope
from labels.models import Delegation, Label
from platformkit.sql import pk_in
from tracks.models import Track

PAGE_SIZES = (50, 500)
SORTS = {
    "title": ("title", "id"),
    "-title": ("-title", "-id"),
    "artist": ("owner__display_name", "id"),
    "-artist": ("-owner__display_name", "-id"),
    "uploaded": ("created_at", "id"),
    "-uploaded": ("-created_at", "-id"),
    "isrc": ("isrc", "id"),
    "-isrc": ("-isrc", "-id"),
}
STATE_CHOICES = ("granted", "not_granted")
# The query parameters that make up a filter; everything else (page, sort) is view state.
FILTER_KEYS = ("artist", "status", "from", "to", *CatalogueFilterForm.FILTER_KEYS)


def roster_tracks(label: Label) -> QuerySet[Track]:
    """Every track of every artist with an active delegation to `label`."""
    return Track.objects.filter(owner_id__in=Delegation.objects.active().filter(label=label).values("artist_id"))


@dataclass
class CatalogueFilter:
    artist: int | None = None
    q: str = ""
    status: str = ""
    uploaded_from: datetime.date | None = None
    uploaded_to: datetime.date | None = None
    states: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # The catalogue filter the artist's pages share: search, use, state, who changed it, when.
    shared: TrackFilter | None = None
    # The bound form behind `shared`, for pages that show it again.
    form: CatalogueFilterForm | None = field(default=None, repr=False, compare=False)


def _date(value: str, name: str, errors: list[str]) -> datetime.date | None:
    if not value:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        errors.append(gettext("%(field)s must be a date like 2026-01-31.") % {"field": name})
        return None


def parse_filter(params: Mapping[str, str], purposes: list[Purpose]) -> CatalogueFilter:
    """Read a filter from query parameters; a bad value is reported and ignored, never a 500."""
    errors: list[str] = []
    result = CatalogueFilter(errors=errors, states={})
    raw_artist = (params.get("artist") or "").strip()
    if raw_artist:
        if raw_artist.isdigit():
            result.artist = int(raw_artist)
        else:
            errors.append(gettext("Unknown artist."))
    result.q = (params.get("q") or "").strip()[:200]
    shared = CatalogueFilterForm({k: params.get(k) or "" for k in CatalogueFilterForm.FILTER_KEYS}, purposes=purposes)
    result.form = shared
    if shared.is_valid():
        result.shared = shared.to_filter()
    else:
        errors.extend(str(error) for field_errors in shared.errors.values() for error in field_errors)
    status = params.get("status") or ""
    if status and status not in Track.Status.values:
        errors.append(gettext("Unknown status."))
    else:
        result.status = status
    result.uploaded_from = _date(params.get("from") or "", gettext("Uploaded from"), errors)
    result.uploaded_to = _date(params.get("to") or "", gettext("Uploaded to"), errors)
    for purpose in purposes:
        value = params.get(f"state_{purpose.slug}") or ""
        if value in STATE_CHOICES:
            result.states[purpose.slug] = value
        elif value:
            errors.append(gettext("Unknown state for %(purpose)s.") % {"purpose": gettext(purpose.name)})
    return result


def filter_params(params: Mapping[str, str], purposes: list[Purpose]) -> dict[str, str]:
    """The filter part of a query string, for links and for saving with a bulk change."""
    keys = [*FILTER_KEYS, *(f"state_{p.slug}" for p in purposes)]
    return {k: value for k in keys if (value := params.get(k))}


def apply_filter(tracks: QuerySet[Track], flt: CatalogueFilter, purposes: list[Purpose]) -> QuerySet[Track]:
    if flt.artist is not None:
        tracks = tracks.filter(owner_id=flt.artist)
    tracks = _track_filters(tracks, flt)
    by_slug = {p.slug: p for p in purposes}
    for slug, state in flt.states.items():
        if consent_summary.available():
            bit = consent_summary.bit(by_slug[slug])
            tracks = consent_summary.with_bit(
                tracks, "granted", bit, is_set=state == "granted", prefix="consent_summary__"
            )
            continue
        granted = Exists(Consent.objects.filter(track=OuterRef("pk"), purpose=by_slug[slug], granted=True))
        tracks = tracks.filter(granted) if state == "granted" else tracks.exclude(granted)
    return tracks


def _track_filters(tracks: QuerySet[Track], flt: CatalogueFilter) -> QuerySet[Track]:
    """The parts of a filter that read the track rows: the shared filter, status, upload dates."""
    if flt.shared is not None:
        tracks = filter_tracks(tracks, flt.shared)
    if flt.status:
        tracks = tracks.filter(status=flt.status)
    if flt.uploaded_from:
        tracks = tracks.filter(created_at__date__gte=flt.uploaded_from)
    if flt.uploaded_to:
        tracks = tracks.filter(created_at__date__lte=flt.uploaded_to)
    return tracks


def catalogue_tracks(label: Label, params: Mapping[str, str], *, selection: list[str] | None = None) -> QuerySet[Track]:
    """The tracks a filter (and optional explicit selection) picks from the label's roster now."""
    purposes = list(Purpose.objects.all())
    tracks = apply_filter(roster_tracks(label), parse_filter(params, purposes), purposes)
    if selection is not None:
        uuids: list[uuid.UUID] = []
        for value in selection:
            try:
                uuids.append(uuid.UUID(str(value)))
            except ValueError:
                continue
        tracks = tracks.filter(uuid__in=uuids)
    return tracks


def roster_artists(label: Label) -> QuerySet[User]:
    artists: QuerySet[User] = User.objects.filter(
        delegations__label=label, delegations__status=Delegation.Status.ACTIVE, delegations__ended_at__isnull=True
    ).order_by("display_name", "id")
    return artists


# --- The catalogue page: the summary, counts from a few rows per artist, keyset pages ---------------

# The same orders as SORTS, on consent.models.TrackConsentSummary (title and date are copied there).
SUMMARY_SORTS = {
    "title": ("title", "track_id"),
    "-title": ("-title", "-track_id"),
    "artist": ("owner__display_name", "track_id"),
    "-artist": ("-owner__display_name", "-track_id"),
    "uploaded": ("created_at", "track_id"),
    "-uploaded": ("-created_at", "-track_id"),
    "isrc": ("track__isrc", "track_id"),
    "-isrc": ("-track__isrc", "-track_id"),
}


def _track_level(flt: CatalogueFilter) -> bool:
    """Does the filter need the track rows (search, status, dates, the shared filter), not only the summary?"""
    shared = flt.shared
    return bool(
        flt.status
        or flt.uploaded_from
        or flt.uploaded_to
        or (
            shared is not None
            and (shared.q or shared.state or shared.changed_by or shared.changed_from or shared.changed_to)
        )
    )


@dataclass(frozen=True, slots=True)
class CatalogueTrack:
    """What a catalogue row shows of a track, read as plain values: for a page of rows, making Track and
    User instances cost more than the query that reads them."""

    pk: int
    uuid: uuid.UUID
    title: str
    isrc: str
    status: str
    created_at: datetime.datetime
    owner_id: int
    owner_name: str  # the artist's display name, or their email when they have none

    @classmethod
    def of(cls, track: Track) -> CatalogueTrack:
        owner = track.owner
        return cls(
            track.pk,
            track.uuid,
            track.title,
            track.isrc,
            track.status,
            track.created_at,
            track.owner_id,
            owner.display_name or owner.email,
        )


CatalogueRow = tuple[CatalogueTrack, list[tuple[Purpose, bool]]]


@dataclass
class CataloguePage:
    rows: list[CatalogueRow]
    total: int
    granted: dict[int, int]  # purpose id -> granted among the `total`
    number: int
    num_pages: int
    first: tuple[Any, int] | None = None  # sort values of the first and last row, for the keyset links
    last: tuple[Any, int] | None = None


def encode_cursor(sort: str, values: tuple[Any, int]) -> str:
    """A position in the catalogue: the sort values of a row (the last row id breaks ties)."""
    raw = json.dumps([sort, [v.isoformat() if isinstance(v, datetime.datetime) else v for v in values]])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(value: str, sort: str) -> tuple[Any, int] | None:
    """The row values in a cursor made for `sort`; None for anything else (a bad cursor means "from the start")."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        cursor_sort, values = raw
        if cursor_sort != sort or not isinstance(values, list) or len(values) != 2:
            return None
        key, pk = values
        if not isinstance(pk, int) or isinstance(pk, bool) or not isinstance(key, str | None):
            return None
        if SUMMARY_SORTS[sort][0].lstrip("-") == "created_at":
            if key is None:
                return None
            return (datetime.datetime.fromisoformat(key), pk)
        return (key, pk)
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error, KeyError):
        return None


def roster_choices(label: Label) -> list[tuple[int, str]]:
    """(artist id, name) of the roster, in the order of the catalogue's artist menu."""
    rows = roster_artists(label).values_list("pk", "display_name", "email")
    return [(pk, name or email) for pk, name, email in rows]


@dataclass
class CatalogueRoster:
    """The label's artists for the menu and, read in the same query, what the page's counts need of them.

    `grants`: owner id -> (tracks, then granted per purpose in the order given), among each artist's
    tracks with at least one grant, every bit the filter requires and none it refuses (OwnerGrantCount);
    None when the filter needs the track rows, and the counts come from the summary instead.
    """

    choices: list[tuple[int, str]]
    grants: dict[int, tuple[int, ...]] | None = None


def catalogue_roster(label: Label, flt: CatalogueFilter, purposes: list[Purpose]) -> CatalogueRoster:
    """The roster and its grant counts in one query: each artist's few OwnerGrantCount rows, summed beside
    the artist's row (a statement of its own cost more than the sums)."""
    if not consent_summary.available() or _track_level(flt):
        return CatalogueRoster(roster_choices(label))
    required, refused = _masks(flt, purposes)
    bits = [consent_summary.bit(p) for p in purposes]
    sums = "".join(", sum(g.tracks) FILTER (WHERE g.granted & %s <> 0)" for _ in bits)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT u.id, u.display_name, u.email, sum(g.tracks){sums} FROM {User._meta.db_table} u"  # noqa: S608 -- table names from the models, values as parameters
            f" JOIN {Delegation._meta.db_table} d ON d.artist_id = u.id"
            f" LEFT JOIN {OwnerGrantCount._meta.db_table} g"
            "  ON g.owner_id = u.id AND g.tracks > 0 AND g.granted & %s = %s AND g.granted & %s = 0"
            " WHERE d.label_id = %s AND d.status = %s AND d.ended_at IS NULL"
            " GROUP BY u.id ORDER BY u.display_name, u.id",
            [*bits, required, required, refused, label.pk, Delegation.Status.ACTIVE],
        )
        found = cursor.fetchall()
    return CatalogueRoster(
        choices=[(pk, name or email) for pk, name, email, *_counts in found],
        grants={pk: tuple(n or 0 for n in counts) for pk, _name, _email, *counts in found},
    )


def summary_rows(
    label: Label, flt: CatalogueFilter, purposes: list[Purpose], *, owner_ids: list[int] | None = None
) -> QuerySet[TrackConsentSummary]:
    """The roster's summary rows that the filter picks (the same set apply_filter picks from the tracks).

    With `owner_ids` (the roster, read once for the page) the rows are matched against a list, which
    PostgreSQL hashes, instead of probing the delegations once per row.
    """
    if owner_ids is None:
        rows = TrackConsentSummary.objects.filter(owner_id__in=_roster_ids(label))
    else:
        rows = TrackConsentSummary.objects.filter(consent_summary.owner_in(owner_ids))
    if flt.artist is not None:
        rows = rows.filter(owner_id=flt.artist)
    by_slug = {p.slug: p for p in purposes}
    for slug, state in flt.states.items():
        rows = consent_summary.with_bit(rows, "granted", consent_summary.bit(by_slug[slug]), is_set=state == "granted")
    if _track_level(flt):
        narrowed = _track_filters(Track.objects.filter(owner_id__in=_roster_ids(label)), flt)
        rows = rows.filter(track_id__in=narrowed.order_by().values("pk"))
    return rows


def _roster_ids(label: Label) -> QuerySet[Delegation, Any]:
    return Delegation.objects.active().filter(label=label).values("artist_id")


def _masks(flt: CatalogueFilter, purposes: list[Purpose]) -> tuple[int, int]:
    required = refused = 0
    for p in purposes:
        state = flt.states.get(p.slug)
        if state == "granted":
            required |= consent_summary.bit(p)
        elif state == "not_granted":
            refused |= consent_summary.bit(p)
    return required, refused


def _counts(
    rows: QuerySet[TrackConsentSummary],
    label: Label,
    flt: CatalogueFilter,
    purposes: list[Purpose],
    owner_ids: list[int] | None,
    grants: dict[int, tuple[int, ...]] | None = None,
) -> tuple[int, dict[int, int]]:
    """The total and the granted count per purpose, in one query (two when tracks with no grant count too);
    in none when the roster's query brought the grant counts (`grants`, see CatalogueRoster) and the
    filter requires a grant."""
    if _track_level(flt):
        aggregates = {"total": Count("pk")}
        for p in purposes:
            name = f"_g{p.pk}"
            rows = rows.alias(**{name: F("granted").bitand(consent_summary.bit(p))})
            aggregates[f"p{p.pk}"] = Count("pk", filter=Q(**{f"{name}__gt": 0}))
        found = rows.aggregate(**aggregates)
        return found["total"], {p.pk: found[f"p{p.pk}"] for p in purposes}
    owners: Collection[int] | QuerySet[Delegation, Any]
    if owner_ids is not None:
        owners = [pk for pk in owner_ids if flt.artist in (None, pk)]
    else:
        owners = _roster_ids(label) if flt.artist is None else _roster_ids(label).filter(artist_id=flt.artist)
    required, refused = _masks(flt, purposes)
    if grants is not None and not isinstance(owners, QuerySet):
        columns = [0] * (1 + len(purposes))
        for pk in owners:
            for i, n in enumerate(grants.get(pk, ())):
                columns[i] += n
        tracks, per_purpose = columns[0], {p.pk: n for p, n in zip(purposes, columns[1:], strict=True)}
    else:
        counts = consent_summary.grant_counts(owners, purposes, required=required, refused=refused)
        tracks, per_purpose = counts.tracks, counts.per_purpose
    # Tracks with no grant at all are not in the counts: only a filter that requires a grant can do without them.
    total = tracks if required else rows.count()
    return total, per_purpose


def catalogue_page(
    label: Label,
    flt: CatalogueFilter,
    purposes: list[Purpose],
    *,
    sort: str,
    per_page: int,
    page: str | None,
    after: str | None = None,
    before: str | None = None,
    roster: list[tuple[int, str]] | CatalogueRoster | None = None,
) -> CataloguePage:
    """One page of the catalogue in a constant number of queries, whatever the page size or depth.

    With a cursor (`after`: the rows following that row; `before`: the rows
    preceding it) the page is a range scan of the summary's sort index; with
    ?page=N (links people have) it is an OFFSET on that index, which reads the
    skipped rows too (their index entries, and their table rows for the masks,
    which no index holds). `page` is then just the number shown.
    `roster` is roster_choices(label) or catalogue_roster(...), when the caller has read it already.
    """
    if not consent_summary.available():
        return _catalogue_page_from_tracks(label, flt, purposes, sort=sort, per_page=per_page, page=page)
    grants = roster.grants if isinstance(roster, CatalogueRoster) else None
    choices = roster.choices if isinstance(roster, CatalogueRoster) else roster
    owner_ids = None if choices is None else [pk for pk, _name in choices]
    rows = summary_rows(label, flt, purposes, owner_ids=owner_ids)
    total, granted = _counts(rows, label, flt, purposes, owner_ids, grants)
    num_pages = max(1, -(-total // per_page))
    try:
        number = min(max(int(page or 1), 1), num_pages)
    except ValueError:
        number = 1
    order: tuple[str, ...] = SUMMARY_SORTS[sort]
    key = order[0].lstrip("-")
    position = decode_cursor(after or before or "", sort)
    forward = True
    if position is not None:
        descending = order[0].startswith("-")
        forward = bool(after)
        comparison = TupleGreaterThan if forward != descending else TupleLessThan
        bound = comparison(Tuple(F(key), F("track_id")), (position[0], position[1]))
        if not forward:
            order = tuple(f[1:] if f.startswith("-") else f"-{f}" for f in order)
        window = rows.filter(bound).order_by(*order).values_list("track_id", "granted", key)[:per_page]
    else:
        offset = (number - 1) * per_page
        window = rows.order_by(*order).values_list("track_id", "granted", key)[offset : offset + per_page]
    # One query: the window of summary rows (an index range, its LIMIT inside) and around it the page's
    # tracks and artists, read as plain values (see CatalogueTrack).
    sql, params = window.query.sql_with_params()
    direction = [" DESC" if f.startswith("-") else "" for f in order]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT w.track_id, t.uuid, t.title, t.isrc, t.status, t.created_at, t.owner_id, u.display_name,"  # noqa: S608 -- table names from the models, values as parameters
            f" u.email, w.granted, w.sort_key FROM ({sql}) AS w (track_id, granted, sort_key)"
            f" JOIN {Track._meta.db_table} t ON t.id = w.track_id JOIN {User._meta.db_table} u ON u.id = t.owner_id"
            f" ORDER BY w.sort_key{direction[0]}, w.track_id{direction[1]}",
            params,
        )
        found = cursor.fetchall()
    if not forward:
        found.reverse()
    bits = [(p, consent_summary.bit(p)) for p in purposes]
    result: list[CatalogueRow] = [
        (
            CatalogueTrack(pk, uid, title, isrc, status, created, owner, name or email),
            [(p, bool(mask & b)) for p, b in bits],
        )
        for pk, uid, title, isrc, status, created, owner, name, email, mask, _key in found
    ]
    return CataloguePage(
        rows=result,
        total=total,
        granted=granted,
        number=number,
        num_pages=num_pages,
        first=(found[0][-1], found[0][0]) if found else None,
        last=(found[-1][-1], found[-1][0]) if found else None,
    )


def _catalogue_page_from_tracks(
    label: Label, flt: CatalogueFilter, purposes: list[Purpose], *, sort: str, per_page: int, page: str | None
) -> CataloguePage:
    """Without the summary (SQLite in development): the consent table and an OFFSET page."""
    from django.core.paginator import Paginator

    tracks = apply_filter(roster_tracks(label), flt, purposes)
    paged = Paginator(tracks.select_related("owner").order_by(*SORTS[sort]), per_page).get_page(page)
    listed = list(paged.object_list)
    cells = granted_cells([t.pk for t in listed])
    total = paged.paginator.count
    bars = coverage(tracks, purposes, total)
    return CataloguePage(
        rows=[(CatalogueTrack.of(t), [(p, (t.pk, p.pk) in cells) for p in purposes]) for t in listed],
        total=total,
        granted={bar["purpose"].pk: bar["granted"] for bar in bars},
        number=paged.number,
        num_pages=paged.paginator.num_pages,
    )


def bars(purposes: list[Purpose], granted: dict[int, int], total: int) -> list[dict[str, Any]]:
    result = []
    for purpose in purposes:
        n = granted.get(purpose.pk, 0)
        share = (n / total) if total else 0.0
        result.append({"purpose": purpose, "granted": n, "share": share, "percent": round(share * 100, 1)})
    return result


def coverage(tracks: QuerySet[Track], purposes: list[Purpose], total: int) -> list[dict[str, Any]]:
    """Share of `tracks` (`total` of them) opted in per purpose, in one aggregate query."""
    granted = Consent.objects.filter(track_id__in=tracks.order_by().values("pk"), granted=True)
    counts = dict(granted.order_by().values("purpose_id").annotate(n=Count("pk")).values_list("purpose_id", "n"))
    bars = []
    for purpose in purposes:
        n = counts.get(purpose.pk, 0)
        share = (n / total) if total else 0.0
        bars.append({"purpose": purpose, "granted": n, "share": share, "percent": round(share * 100, 1)})
    return bars


def granted_cells(track_ids: list[int]) -> set[tuple[int, int]]:
    return set(Consent.objects.filter(track_id__in=track_ids, granted=True).values_list("track_id", "purpose_id"))


def delegated_scopes(actor: User, owner_ids: Collection[int], label_id: int | None) -> dict[int, dict[str, str]]:
    """owner id -> {purpose slug: strongest scope} that `actor` holds through active delegations, in one query.

    Registered with consent.hooks; consent.services.delegated_scopes has already
    left out the actor's own tracks, staff and the system.
    """
    rows = Delegation.objects.active().filter(artist_id__in=pk_in(owner_ids), label__memberships__user=actor)
    if label_id is not None:
        rows = rows.filter(label_id=label_id)
    merged: dict[int, dict[str, str]] = {}
    for artist_id, scopes in rows.values_list("artist_id", "scopes"):
        mine = merged.setdefault(artist_id, {})
        for slug, scope in (scopes or {}).items():
            if Scope.rank(scope) > Scope.rank(mine.get(slug, Scope.NONE)):
                mine[slug] = scope
    return merged
