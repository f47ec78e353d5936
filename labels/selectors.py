"""Reads for label pages: the catalogue, its filters and its coverage chart."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, QuerySet

from accounts.models import Delegation, Label, User
from consent.forms import CatalogueFilterForm
from consent.models import Consent, Purpose
from consent.selectors import TrackFilter, filter_tracks
from labels.services import roster_tracks
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


@dataclass
class CatalogueFilter:
    artist: int | None = None
    q: str = ""
    status: str = ""
    uploaded_from: datetime.date | None = None
    uploaded_to: datetime.date | None = None
    states: dict[str, str] | None = None
    errors: list[str] | None = None
    # The catalogue filter the artist's pages share: search, use, state, who changed it, when.
    shared: TrackFilter | None = None


def _date(value: str, name: str, errors: list[str]) -> datetime.date | None:
    if not value:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        errors.append(f"{name} must be a date like 2026-01-31.")
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
            errors.append("Unknown artist.")
    result.q = (params.get("q") or "").strip()[:200]
    shared = CatalogueFilterForm({k: params.get(k) or "" for k in CatalogueFilterForm.FILTER_KEYS}, purposes=purposes)
    if shared.is_valid():
        result.shared = shared.to_filter()
    else:
        errors.extend(str(error) for field_errors in shared.errors.values() for error in field_errors)
    status = params.get("status") or ""
    if status and status not in Track.Status.values:
        errors.append("Unknown status.")
    else:
        result.status = status
    result.uploaded_from = _date(params.get("from") or "", "Uploaded from", errors)
    result.uploaded_to = _date(params.get("to") or "", "Uploaded to", errors)
    for purpose in purposes:
        value = params.get(f"state_{purpose.slug}") or ""
        if value in STATE_CHOICES:
            result.states[purpose.slug] = value
        elif value:
            errors.append(f"Unknown state for {purpose.name}.")
    return result


def filter_params(params: Mapping[str, str], purposes: list[Purpose]) -> dict[str, str]:
    """The filter part of a query string, for links and for saving with a bulk change."""
    keys = [*FILTER_KEYS, *(f"state_{p.slug}" for p in purposes)]
    return {k: params.get(k) for k in keys if params.get(k)}


def apply_filter(tracks: QuerySet[Track], flt: CatalogueFilter, purposes: list[Purpose]) -> QuerySet[Track]:
    if flt.artist is not None:
        tracks = tracks.filter(owner_id=flt.artist)
    if flt.shared is not None:
        tracks = filter_tracks(tracks, flt.shared)
    if flt.status:
        tracks = tracks.filter(status=flt.status)
    if flt.uploaded_from:
        tracks = tracks.filter(created_at__date__gte=flt.uploaded_from)
    if flt.uploaded_to:
        tracks = tracks.filter(created_at__date__lte=flt.uploaded_to)
    by_slug = {p.slug: p for p in purposes}
    for slug, state in (flt.states or {}).items():
        granted = Exists(Consent.objects.filter(track=OuterRef("pk"), purpose=by_slug[slug], granted=True))
        tracks = tracks.filter(granted) if state == "granted" else tracks.exclude(granted)
    return tracks


def catalogue_tracks(label: Label, params: Mapping[str, str], *, selection: list[str] | None = None):
    """The tracks a filter (and optional explicit selection) picks from the label's roster now."""
    purposes = list(Purpose.objects.all())
    tracks = apply_filter(roster_tracks(label), parse_filter(params, purposes), purposes)
    if selection is not None:
        uuids = []
        for value in selection:
            try:
                uuids.append(uuid.UUID(str(value)))
            except ValueError:
                continue
        tracks = tracks.filter(uuid__in=uuids)
    return tracks


def roster_artists(label: Label) -> QuerySet[User]:
    return User.objects.filter(
        delegations__label=label, delegations__status=Delegation.Status.ACTIVE, delegations__ended_at__isnull=True
    ).order_by("display_name", "id")


def coverage(tracks: QuerySet[Track], purposes: list[Purpose], total: int) -> list[dict]:
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
