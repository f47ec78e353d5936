"""The catalogue as CSV: a streamed export and a checked import.

The import never writes: it returns a report and, when there is something to
do, a draft BulkChange that the manager confirms like any bulk edit.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext, ngettext

from accounts.models import User
from consent.confirmation import unconfirmed_grants
from consent.models import Consent, Purpose
from consent.services import can_change_consent, delegated_scopes
from labels.bulk import ImportCell
from labels.bulk import draft_import as _draft
from labels.models import BulkChange, Label
from labels.selectors import roster_tracks
from labels.services import LabelError
from tracks.models import Track
from tracks.validators import isrc_key

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
TRUE_VALUES = {"granted", "yes", "y", "true", "1", "opt-in", "opted in"}
FALSE_VALUES = {"not_granted", "not granted", "no", "n", "false", "0", "withdrawn", "opt-out", "opted out"}
EXPORT_CHUNK = 2000
LOOKUP_CHUNK = 5000


def neutralise(value: object) -> str:
    """A leading quote stops a spreadsheet from reading the cell as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


class _Echo:
    def write(self, value: str) -> str:
        return value


def export_rows(tracks: QuerySet[Track], purposes: list[Purpose]) -> Iterator[str]:
    """CSV lines for `tracks`, keyset-paged so memory stays flat at any size."""
    writer = csv.writer(_Echo())
    yield writer.writerow(["track_id", "isrc", "title", "artist", *(p.slug for p in purposes)])
    last = 0
    base = tracks.order_by("pk").values_list("pk", "uuid", "isrc", "title", "owner__display_name")
    while True:
        chunk = list(base.filter(pk__gt=last)[:EXPORT_CHUNK])
        if not chunk:
            return
        last = chunk[-1][0]
        granted = set(
            Consent.objects.filter(track_id__in=[row[0] for row in chunk], granted=True).values_list(
                "track_id", "purpose_id"
            )
        )
        for pk, track_uuid, isrc, title, artist in chunk:
            states = ["granted" if (pk, p.pk) in granted else "not_granted" for p in purposes]
            yield writer.writerow([str(track_uuid), neutralise(isrc), neutralise(title), neutralise(artist), *states])


@dataclass
class ImportReport:
    rows: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    will_change: int = 0
    already: int = 0
    refused: int = 0
    # Every cell of the good rows as the dry run saw it (changes and already-so).
    cells: list[ImportCell] = field(default_factory=list)
    # When the dry run read the consent state: a change after it makes the draft out of date.
    checked_at: datetime.datetime | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabelError(
            gettext(
                "The file is not UTF-8 text (byte %(byte)s cannot be read). "
                "Save it from your spreadsheet as “CSV UTF-8” and try again."
            )
            % {"byte": number_format(exc.start + 1)}
        ) from None


def _value(raw: str) -> bool | str | None:
    text = raw.strip().lower()
    if text == "":
        return None
    if text in TRUE_VALUES:
        return True
    if text in FALSE_VALUES:
        return False
    return "bad"


@dataclass(frozen=True)
class _Columns:
    """Where the header put the track's identifiers and each purpose."""

    track_id: int | None
    isrc: int | None
    purposes: list[tuple[int, str]]  # (column index, purpose slug)


@dataclass(frozen=True)
class _CsvRow:
    """One non-blank line of the file, with the identifiers it names."""

    line_no: int
    track_id: str | None
    isrc: str | None
    cells: list[str]


def check_import(*, actor: User, label: Label, upload, confirmed: set[str]) -> ImportReport:
    """Read an uploaded CSV and report every bad row; nothing is written."""
    reader = csv.reader(io.StringIO(_read_text(upload), newline=""))
    purposes = {p.slug: p for p in Purpose.objects.all()}
    columns = _columns(_header(reader), purposes)
    parsed = _parse_rows(reader, columns)

    report = ImportReport(rows=len(parsed), checked_at=timezone.now())
    resolved = _resolve(report, roster_tracks(label), parsed, columns.purposes)
    _judge(report, actor, label, resolved, purposes, confirmed)
    report.errors.sort()
    return report


def _read_text(upload) -> str:
    limit = settings.LABELS_CSV_MAX_BYTES
    if upload.size > limit:
        raise LabelError(
            ngettext(
                "The file is %(size)s bytes; the limit is %(limit)s byte. Split it and try again.",
                "The file is %(size)s bytes; the limit is %(limit)s bytes. Split it and try again.",
                limit,
            )
            % {
                "size": number_format(upload.size, force_grouping=True),
                "limit": number_format(limit, force_grouping=True),
            }
        )
    text = _decode(upload.read())
    if "\x00" in text:
        raise LabelError(gettext("The file contains NUL bytes: it is not a CSV text file."))
    return text


def _header(reader) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise LabelError(gettext("The file is empty.")) from None
    except csv.Error as exc:
        raise LabelError(gettext("The file cannot be read as CSV: %(problem)s.") % {"problem": exc}) from None
    return [h.strip().lower() for h in header]


def _columns(header: list[str], purposes: dict[str, Purpose]) -> _Columns:
    if "track_id" not in header and "isrc" not in header:
        raise LabelError(gettext("The first row must name the columns, with track_id or isrc among them."))
    purpose_columns = [(i, h) for i, h in enumerate(header) if h in purposes]
    if not purpose_columns:
        raise LabelError(
            gettext("No purpose column found; use one or more of: %(columns)s.") % {"columns": ", ".join(purposes)}
        )
    return _Columns(
        track_id=header.index("track_id") if "track_id" in header else None,
        isrc=header.index("isrc") if "isrc" in header else None,
        purposes=purpose_columns,
    )


def _cell(row: list[str], index: int | None) -> str:
    return row[index] if index is not None and index < len(row) else ""


def _parse_rows(reader, columns: _Columns) -> list[_CsvRow]:
    max_rows = settings.LABELS_CSV_MAX_ROWS
    parsed: list[_CsvRow] = []
    try:
        for line_no, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(parsed) >= max_rows:
                raise LabelError(
                    ngettext(
                        "The file has more than %(limit)s row; the limit is %(limit)s. Split it.",
                        "The file has more than %(limit)s rows; the limit is %(limit)s. Split it.",
                        max_rows,
                    )
                    % {"limit": number_format(max_rows, force_grouping=True)}
                )
            track_id = _cell(row, columns.track_id).strip()
            isrc = isrc_key(_cell(row, columns.isrc))
            parsed.append(_CsvRow(line_no, track_id or None, isrc or None, row))
    except csv.Error as exc:
        raise LabelError(
            gettext("The file cannot be read as CSV near line %(line)d: %(problem)s.")
            % {"line": reader.line_num, "problem": exc}
        ) from None
    return parsed


@dataclass(frozen=True)
class _Resolved:
    line_no: int
    track: Track
    cells: dict[str, bool]
    isrc_key: str


def _resolve(
    report: ImportReport, roster: QuerySet[Track], parsed: list[_CsvRow], purpose_columns: list[tuple[int, str]]
) -> list[_Resolved]:
    """Find each row's track in the roster and read its cells; bad rows go to the report."""
    by_uuid, by_isrc = _lookup(roster, parsed)
    resolved: list[_Resolved] = []
    seen: dict[int, int] = {}
    for row in parsed:
        track, problem = _find(row.track_id, row.isrc, by_uuid, by_isrc)
        if track is None:
            report.errors.append((row.line_no, problem))
            continue
        if track.pk in seen:
            report.errors.append((row.line_no, f"Duplicate row: this track is already on line {seen[track.pk]}."))
            continue
        seen[track.pk] = row.line_no
        cells: dict[str, bool] = {}
        bad = []
        for i, slug in purpose_columns:
            value = _value(_cell(row.cells, i))
            if value == "bad":
                bad.append(f"{slug} is {row.cells[i]!r}; use granted or not_granted")
            elif isinstance(value, bool):
                cells[slug] = value
        if bad:
            report.errors.append((row.line_no, "Bad value: " + "; ".join(bad) + "."))
            continue
        resolved.append(_Resolved(row.line_no, track, cells, "" if row.track_id else track.isrc))
    return resolved


def _find(track_id, isrc, by_uuid, by_isrc) -> tuple[Track | None, str]:
    """The roster track a row names, or why not.

    A track outside the roster is reported exactly like one that does not
    exist: the answer must not tell a label what other artists' catalogues hold.
    """
    if track_id:
        try:
            key = uuid.UUID(track_id)
        except ValueError:
            return None, f"track_id {track_id!r} is not a track id."
        track = by_uuid.get(key)
        return (track, "") if track is not None else (None, f"Unknown track {key}.")
    if isrc:
        matches = by_isrc.get(isrc, [])
        if len(matches) > 1:
            return None, f"ISRC {isrc} matches {len(matches)} tracks; use track_id instead."
        return (matches[0], "") if matches else (None, f"Unknown ISRC {isrc}.")
    return None, "No track_id or ISRC on this row."


def _judge(report: ImportReport, actor, label, resolved: list[_Resolved], purposes, confirmed) -> None:
    """Compare each cell with the current state and the delegation; keep the cells of good rows."""
    delegations = delegated_scopes(actor, {r.track.owner_id for r in resolved}, label_id=label.pk)
    granted_now = _granted_now([r.track.pk for r in resolved], purposes)
    for r in resolved:
        track = r.track
        row_cells: list[ImportCell] = []
        refusals = []
        for slug, granted in r.cells.items():
            shown = (track.pk, slug) in granted_now
            cell = ImportCell(track.pk, track.owner_id, purposes[slug].pk, shown, granted, r.isrc_key)
            if shown == granted:
                report.already += 1
                row_cells.append(cell)
                continue
            if not can_change_consent(
                actor, owner_id=track.owner_id, granted=granted, purpose_slug=slug, delegations=delegations
            ):
                refusals.append(
                    f"{purposes[slug].name}: {'granting' if granted else 'withdrawing'} is outside the delegation"
                )
                continue
            if unconfirmed_grants([purposes[slug]], {slug: granted}, confirmed):
                refusals.append(f"{purposes[slug].name}: granting needs the confirmation box ticked")
                continue
            report.will_change += 1
            row_cells.append(cell)
        if refusals:
            report.refused += len(refusals)
            report.errors.append((r.line_no, "Outside the delegation — " + "; ".join(refusals) + "."))
            continue
        report.cells += row_cells


def _lookup(roster: QuerySet[Track], parsed: list[_CsvRow]) -> tuple[dict[uuid.UUID, Track], dict[str, list[Track]]]:
    uuids: list[uuid.UUID] = []
    isrcs: set[str] = set()
    for row in parsed:
        if row.track_id:
            with contextlib.suppress(ValueError):
                uuids.append(uuid.UUID(row.track_id))
        elif row.isrc:
            isrcs.add(row.isrc)
    by_uuid: dict[uuid.UUID, Track] = {}
    by_isrc: dict[str, list[Track]] = {}
    only = ("pk", "uuid", "isrc", "owner_id")
    for start in range(0, len(uuids), LOOKUP_CHUNK):
        for track in roster.filter(uuid__in=uuids[start : start + LOOKUP_CHUNK]).only(*only):
            by_uuid[track.uuid] = track
    isrc_list = sorted(isrcs)
    for start in range(0, len(isrc_list), LOOKUP_CHUNK):
        for track in roster.filter(isrc__in=isrc_list[start : start + LOOKUP_CHUNK]).only(*only):
            by_isrc.setdefault(track.isrc, []).append(track)
    return by_uuid, by_isrc


def _granted_now(track_ids: list[int], purposes: dict[str, Purpose]) -> set[tuple[int, str]]:
    slug_of = {p.pk: slug for slug, p in purposes.items()}
    found: set[tuple[int, str]] = set()
    for start in range(0, len(track_ids), LOOKUP_CHUNK):
        rows = Consent.objects.filter(track_id__in=track_ids[start : start + LOOKUP_CHUNK], granted=True)
        found.update((t, slug_of[p]) for t, p in rows.values_list("track_id", "purpose_id"))
    return found


def draft_import(*, actor: User, label: Label, report: ImportReport, filename: str, confirmed: set[str]) -> BulkChange:
    """Save a clean dry run as a draft bulk change; its cells are exactly what the apply may do."""
    if not report.ok or report.checked_at is None:
        raise LabelError(gettext("A file with bad rows cannot be applied; fix them and check it again."))
    return _draft(
        actor=actor,
        label=label,
        cells=report.cells,
        filename=filename,
        rows=report.rows,
        confirmed=confirmed,
        checked_at=report.checked_at,
    )
