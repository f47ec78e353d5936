"""Reads of consent state and of the audit log."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts.models import User
from consent import summary
from consent.chain import BODY_COLUMNS, digest_matches, event_hash
from consent.models import (
    GENESIS_HASH,
    AuditChainHead,
    AuditErasure,
    AuditEvent,
    Consent,
    Purpose,
    UploadDefault,
)
from consent.vocabulary import ActorKind
from tracks.models import Track


def purposes() -> list[Purpose]:
    return list(Purpose.objects.all())


# How a (track, purpose) stands, in the words every page uses. "lapsed" is a grant that a policy
# change withdrew because it was not confirmed again; "never" has no row at all.
GRANTED, WITHDRAWN, LAPSED, NEVER = "granted", "withdrawn", "lapsed", "never"
STATES = (GRANTED, WITHDRAWN, LAPSED, NEVER)
# Who made the last change, as Consent.changed_by_kind stores it ("you" is the artist).
YOU = "you"
CHANGERS = (YOU, ActorKind.LABEL, ActorKind.STAFF, ActorKind.SYSTEM)


def state_of(consent: Consent | None) -> str:
    if consent is None:
        return NEVER
    if consent.granted:
        return GRANTED
    return LAPSED if consent.changed_by_kind == AuditEvent.ActorKind.SYSTEM else WITHDRAWN


@dataclass(frozen=True)
class Cell:
    purpose: Purpose
    granted: bool
    changed_at: datetime.datetime | None
    changed_by_label: str
    state: str = NEVER
    changed_by_kind: str = ""
    policy_version: int | None = None

    @property
    def summary(self) -> str:
        """One phrase that tells every state apart: by whom, withdrawn, lapsed under which terms, never."""
        return describe_state(self.state, self.changed_by_kind, self.policy_version)


def describe_state(state: str, changed_by_kind: str, policy_version: int | None) -> str:
    if state == NEVER:
        return _("never granted")
    if state == LAPSED:
        return _("lapsed under policy %(version)s") % {"version": policy_version}
    words: dict[str, str]
    if state == GRANTED:
        words = {
            ActorKind.LABEL: _("granted by your label"),
            ActorKind.STAFF: _("granted by staff"),
            ActorKind.SYSTEM: _("granted by the system"),
        }
        return words.get(changed_by_kind, _("granted by you"))
    words = {
        ActorKind.LABEL: _("withdrawn by your label"),
        ActorKind.STAFF: _("withdrawn by staff"),
    }
    return words.get(changed_by_kind, _("withdrawn by you"))


def _who(consent: Consent, viewer_id: int | None) -> str:
    if consent.changed_by_id is not None and consent.changed_by_id == viewer_id:
        return _("you")
    words: dict[str, str] = {
        ActorKind.STAFF: _("staff"),
        ActorKind.SYSTEM: _("the system"),
        ActorKind.LABEL: _("your label"),
    }
    return words.get(consent.changed_by_kind, _("you"))


def consent_matrix(
    tracks: Sequence[Any], purpose_list: Sequence[Purpose], *, viewer_id: int | None
) -> dict[int, list[Cell]]:
    """Track id -> one Cell per purpose, in one query whatever the number of tracks."""
    found = {
        (c.track_id, c.purpose_id): c
        for c in Consent.objects.filter(track__in=[t.pk for t in tracks], purpose__in=purpose_list).select_related(
            "policy_version"
        )
    }
    matrix = {}
    for track in tracks:
        cells = []
        for purpose in purpose_list:
            consent = found.get((track.pk, purpose.pk))
            if consent is None:
                cells.append(Cell(purpose, False, None, ""))
            else:
                cells.append(
                    Cell(
                        purpose,
                        consent.granted,
                        consent.changed_at,
                        _who(consent, viewer_id),
                        state=state_of(consent),
                        changed_by_kind=consent.changed_by_kind,
                        policy_version=consent.policy_version.version,
                    )
                )
        matrix[track.pk] = cells
    return matrix


# --- The catalogue: one filter for the artist's matrix, the track list and the label catalogue ---

CATALOGUE_SORTS = {
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
    "title": ("title", "id"),
    "-title": ("-title", "-id"),
    "isrc": ("isrc", "id"),
}


@dataclass(frozen=True)
class TrackFilter:
    q: str = ""
    purpose: str = ""
    state: str = ""
    changed_by: str = ""
    changed_from: datetime.date | None = None
    changed_to: datetime.date | None = None
    sort: str = "newest"


def _consent_condition(purpose: str, condition: Q | None = None, **fields: object) -> Exists:
    rows = Consent.objects.filter(condition or Q(), track=OuterRef("pk"), **fields)
    if purpose:
        rows = rows.filter(purpose__slug=purpose)
    return Exists(rows)


def filter_tracks(tracks: QuerySet[Track], flt: TrackFilter) -> QuerySet[Track]:
    """Narrow `tracks` (already scoped to what the viewer may see) by a TrackFilter, in SQL."""
    from tracks.validators import isrc_key

    if flt.q:
        key = isrc_key(flt.q)
        title = Q(title__icontains=flt.q)
        tracks = tracks.filter(title | Q(isrc=key) if key else title)
    if flt.state in STATES and summary.available():
        # One column test per track on the maintained summary, not a probe of the consent table.
        tracks = summary.state_filter(tracks, flt.purpose, flt.state)
    elif flt.state == NEVER:
        tracks = tracks.exclude(_consent_condition(flt.purpose))
    elif flt.state == GRANTED:
        tracks = tracks.filter(_consent_condition(flt.purpose, granted=True))
    elif flt.state == LAPSED:
        tracks = tracks.filter(_consent_condition(flt.purpose, granted=False, changed_by_kind=ActorKind.SYSTEM))
    elif flt.state == WITHDRAWN:
        tracks = tracks.filter(_consent_condition(flt.purpose, Q(granted=False) & ~Q(changed_by_kind=ActorKind.SYSTEM)))
    changed: dict[str, object] = {}
    if flt.changed_by:
        changed["changed_by_kind"] = ActorKind.ARTIST if flt.changed_by == YOU else flt.changed_by
    if flt.changed_from:
        changed["changed_at__date__gte"] = flt.changed_from
    if flt.changed_to:
        changed["changed_at__date__lte"] = flt.changed_to
    if changed:
        tracks = tracks.filter(_consent_condition(flt.purpose, Q(**changed)))
    return tracks.order_by(*CATALOGUE_SORTS.get(flt.sort, CATALOGUE_SORTS["newest"]))


@dataclass(frozen=True)
class PurposeCounts:
    purpose: Purpose
    total: int
    granted: int
    granted_by_label: int
    withdrawn: int
    lapsed: int

    @property
    def never(self) -> int:
        return self.total - self.granted - self.withdrawn - self.lapsed


def purpose_counts(tracks: QuerySet[Track], purpose_list: Sequence[Purpose]) -> list[PurposeCounts]:
    """Per purpose, how many of `tracks` are granted, withdrawn, lapsed or never granted: two queries."""
    total = tracks.order_by().count()
    system = Q(changed_by_kind=ActorKind.SYSTEM)
    rows = {
        row["purpose_id"]: row
        for row in Consent.objects.filter(track__in=tracks.order_by().values("pk"))
        .values("purpose_id")
        .annotate(
            n_granted=Count("pk", filter=Q(granted=True)),
            n_by_label=Count("pk", filter=Q(granted=True, changed_by_kind=ActorKind.LABEL)),
            n_withdrawn=Count("pk", filter=Q(granted=False) & ~system),
            n_lapsed=Count("pk", filter=Q(granted=False) & system),
        )
        .order_by()
    }
    empty = {"n_granted": 0, "n_by_label": 0, "n_withdrawn": 0, "n_lapsed": 0}
    return [
        PurposeCounts(
            purpose=p,
            total=total,
            granted=rows.get(p.pk, empty)["n_granted"],
            granted_by_label=rows.get(p.pk, empty)["n_by_label"],
            withdrawn=rows.get(p.pk, empty)["n_withdrawn"],
            lapsed=rows.get(p.pk, empty)["n_lapsed"],
        )
        for p in purpose_list
    ]


def recent_changes(*, artist: User, limit: int = 8) -> QuerySet[AuditEvent]:
    """The artist's latest consent changes, whoever made them (the dashboard's "what changed lately")."""
    return (
        AuditEvent.objects.filter(artist=artist, kind=AuditEvent.Kind.CONSENT_CHANGED)
        .select_related("purpose", "subject_data", "policy_version")
        .order_by("-seq")[:limit]
    )


def granted_slugs(track_ids: Sequence[int]) -> set[tuple[int, str]]:
    return set(Consent.objects.filter(track_id__in=track_ids, granted=True).values_list("track_id", "purpose__slug"))


def upload_defaults(artist: User) -> dict[str, bool]:
    chosen = dict(UploadDefault.objects.filter(artist=artist).values_list("purpose__slug", "granted"))
    return {p.slug: chosen.get(p.slug, False) for p in Purpose.objects.all()}


# --- Audit log ----------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    track_uuid: uuid.UUID | None = None
    receipt_id: uuid.UUID | None = None
    title: str = ""
    purpose: str = ""
    actor_kind: str = ""
    source: str = ""
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None


def audit_events(*, artist: User, filters: AuditFilter | None = None) -> QuerySet[AuditEvent]:
    """The artist's events, newest first (seq order is commit order within a chain)."""
    f = filters or AuditFilter()
    qs = AuditEvent.objects.filter(artist=artist)
    if f.track_uuid:
        qs = qs.filter(track_uuid=f.track_uuid)
    if f.receipt_id:
        qs = qs.filter(receipt_id=f.receipt_id)
    if f.title:
        qs = qs.filter(subject_data__track_title__icontains=f.title)
    if f.purpose:
        qs = qs.filter(purpose_slug=f.purpose)
    if f.actor_kind == YOU:
        qs = qs.filter(actor_id=artist.pk)
    elif f.actor_kind:
        qs = qs.filter(actor_kind=f.actor_kind).exclude(Q(actor_id=artist.pk) & Q(actor_kind=ActorKind.ARTIST))
    if f.source:
        qs = qs.filter(source=f.source)
    if f.date_from:
        qs = qs.filter(created_at__date__gte=f.date_from)
    if f.date_to:
        qs = qs.filter(created_at__date__lte=f.date_to)
    return qs.order_by("-seq")


# --- Chain verification ---------------------------------------------------------------


@dataclass(frozen=True)
class ChainBreak:
    artist_id: int
    seq: int | None
    event_id: int | None
    problem: str
    expected: str
    found: str

    def __str__(self) -> str:
        where = f"artist {self.artist_id}"
        if self.seq is not None:
            where += f", seq {self.seq}, event id {self.event_id}"
        return f"{where}: {self.problem} (expected {self.expected}, found {self.found})"


@dataclass
class VerifyReport:
    chains: int = 0
    events: int = 0
    # Events whose personal data (IP, user agent, track title) was erased on purpose.
    erased: int = 0
    # Version-1 events whose erased personal data was part of their hash: their
    # content cannot be recomputed, so they are checked by their links only.
    linkage_only: int = 0
    breaks: list[ChainBreak] | None = None

    @property
    def ok(self) -> bool:
        return not self.breaks


# The erasable parts of an event, as the ORM reaches them (consent.audit_walk reads them too).
PERSONAL_PART_LOOKUPS = (
    "actor_data__pk",
    "actor_data__key",
    "actor_data__ip",
    "actor_data__user_agent",
    "subject_data__pk",
    "subject_data__key",
    "subject_data__track_title",
)
_COLUMNS = ("pk", "prev_hash", "hash", *BODY_COLUMNS, *PERSONAL_PART_LOOKUPS)


@dataclass(frozen=True)
class _Part:
    """One erasable part of an event as the verifier sees it."""

    name: str
    present: bool
    key: str
    values: dict[str, str]
    digest: str


class _Erasures:
    """When each person's data was erased, to tell an erasure from a deletion behind our back."""

    def __init__(self) -> None:
        self.chain: dict[int, datetime.datetime] = {}
        self.actor: dict[int, datetime.datetime] = {}
        for user_id, scope, erased_at in AuditErasure.objects.values_list("user_id", "scope", "erased_at"):
            target = self.chain if scope == AuditErasure.Scope.CHAIN else self.actor
            target[user_id] = max(erased_at, target.get(user_id, erased_at))

    def covers(self, part: str, event: dict[str, Any]) -> bool:
        created = event["created_at"]
        if created <= self.chain.get(event["artist_id"], _NEVER):
            return True
        return part == "actor" and created <= self.actor.get(event["actor_id"], _NEVER)


_NEVER = datetime.datetime.min.replace(tzinfo=datetime.UTC)


def _parts(event: dict[str, Any], personal: tuple[Any, ...]) -> list[_Part]:
    actor_pk, actor_key, ip, user_agent, subject_pk, subject_key, title = personal
    return [
        _Part(
            "actor",
            actor_pk is not None,
            actor_key or "",
            {"ip": ip or "", "user_agent": user_agent or ""},
            event.get("actor_data_digest") or "",
        ),
        _Part(
            "subject",
            subject_pk is not None,
            subject_key or "",
            {"track_title": title or ""},
            event.get("subject_data_digest") or "",
        ),
    ]


def _check_v1(event: dict[str, Any], parts: list[_Part], erasures: _Erasures) -> tuple[str, str | None]:
    """("hash" | "linkage", problem): a version-1 hash covers the personal values themselves."""
    missing = [part for part in parts if not part.present]
    if not missing:
        for part in parts:
            event.update(part.values)
        return "hash", None
    if all(erasures.covers(part.name, event) for part in missing):
        return "linkage", None
    return "linkage", f"{missing[0].name} data of a version-1 event is missing and no recorded erasure covers it"


def _check_v2_parts(event: dict[str, Any], parts: list[_Part], erasures: _Erasures, report: VerifyReport) -> list[str]:
    """Problems with the erasable parts of a version-2 event (its hash is checked without them)."""
    problems = []
    erased = False
    for part in parts:
        if not part.digest:
            if part.present:
                problems.append(f"{part.name} data exists for an event that committed to none")
        elif part.present:
            if not part.key or not digest_matches(part.key, part.values, part.digest):
                problems.append(f"{part.name} data does not match the digest in the event")
        elif erasures.covers(part.name, event):
            erased = True
        else:
            problems.append(f"{part.name} data is missing and no recorded erasure covers it")
    report.erased += erased
    return problems


def iter_chain_breaks(
    *, artist_id: int | None = None, chunk_size: int = 5000, report: VerifyReport
) -> Iterator[ChainBreak]:
    """Walk every chain in (artist, seq) order, yielding the first break of each.

    Also checks each event's erasable personal data against the event:
    altered data is reported, erased data (with its recorded erasure) is not.
    Streams with .iterator(), so memory stays flat whatever the log size.
    """
    events = AuditEvent.objects.order_by("artist_id", "seq").values_list(*_COLUMNS)
    heads = AuditChainHead.objects.order_by("artist_id")
    if artist_id is not None:
        events = events.filter(artist_id=artist_id)
        heads = heads.filter(artist_id=artist_id)
    head_by_artist = {h.artist_id: (h.seq, h.hash) for h in heads}
    erasures = _Erasures()

    current = None
    expected_seq = 1
    expected_prev = GENESIS_HASH
    broken = False

    width = len(BODY_COLUMNS)
    for row in events.iterator(chunk_size=chunk_size):
        pk, prev_hash, stored_hash = row[0], row[1], row[2]
        event = dict(zip(BODY_COLUMNS, row[3 : 3 + width], strict=True))
        artist, seq = event["artist_id"], event["seq"]
        if artist != current:
            yield from _close_chain(head_by_artist, current, expected_seq - 1, expected_prev, broken=broken)
            current, expected_seq, expected_prev, broken = artist, 1, GENESIS_HASH, False
            report.chains += 1
        report.events += 1
        if broken:
            continue
        problem = _check_event(
            event, row[3 + width :], prev_hash, stored_hash, expected_seq, expected_prev, erasures, report
        )
        for text, expected, found, breaks in problem:
            broken = broken or breaks
            yield ChainBreak(artist, seq, pk, text, expected, found)
        expected_seq, expected_prev = seq + 1, stored_hash
    yield from _close_chain(head_by_artist, current, expected_seq - 1, expected_prev, broken=broken)
    for artist, (seq, _hash) in head_by_artist.items():
        if seq:
            yield ChainBreak(artist, None, None, "chain head points at events that are missing", f"{seq} events", "0")


def _close_chain(
    head_by_artist: dict[int, tuple[int, str]], artist: int | None, last_seq: int, last_hash: str, *, broken: bool
) -> Iterator[ChainBreak]:
    """The chain's head row must point at its last event (a chain already reported broken is not reported twice)."""
    if artist is None:
        return
    head = head_by_artist.pop(artist, None)
    if broken:
        return
    if head is None:
        yield ChainBreak(artist, None, None, "chain has no head row", "a head", "none")
    elif head != (last_seq, last_hash):
        yield ChainBreak(
            artist,
            None,
            None,
            "chain head does not match the last event",
            f"seq {last_seq} hash {last_hash}",
            f"seq {head[0]} hash {head[1]}",
        )


def _check_event(
    event: dict[str, Any],
    personal: tuple[Any, ...],
    prev_hash: str,
    stored_hash: str,
    expected_seq: int,
    expected_prev: str,
    erasures: _Erasures,
    report: VerifyReport,
) -> list[tuple[str, str, str, bool]]:
    """(problem, expected, found, breaks the chain) for one event; empty when it holds."""
    if event["seq"] != expected_seq:
        return [("sequence gap", str(expected_seq), str(event["seq"]), True)]
    if prev_hash != expected_prev:
        return [("prev_hash does not link to the previous event", expected_prev, prev_hash, True)]
    parts = _parts(event, personal)
    if (event.get("chain_version") or 1) == 1:
        how, problem = _check_v1(event, parts, erasures)
        if problem:
            return [(problem, "the data or an erasure", "neither", True)]
        if how == "linkage":
            report.erased += 1
            report.linkage_only += 1
            return []
        problems = []
    else:
        problems = [
            (text, "intact or erased data", "other data", False)
            for text in _check_v2_parts(event, parts, erasures, report)
        ]
    computed = event_hash(prev_hash, event)
    if computed != stored_hash:
        return [("hash does not match the event's content", computed, stored_hash, True)]
    return problems


def verify_chains(*, artist_id: int | None = None, chunk_size: int = 5000) -> VerifyReport:
    report = VerifyReport()
    report.breaks = list(iter_chain_breaks(artist_id=artist_id, chunk_size=chunk_size, report=report))
    return report


def chain_head(artist_id: int) -> AuditChainHead | None:
    return AuditChainHead.objects.filter(artist_id=artist_id).first()


# --- Current state against the log ---------------------------------------------------------


@dataclass(frozen=True)
class StateMismatch:
    what: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"{self.what}: the audit log says {self.expected}, the table says {self.found}"


def _state_word(granted: bool) -> str:
    return "granted" if granted else "not granted"


def iter_state_mismatches(*, artist_id: int | None = None, chunk_size: int = 5000) -> Iterator[StateMismatch]:
    """Replay the log and compare it with the consent and upload-default tables.

    The tables carry no triggers (they are meant to change), so an UPDATE
    behind the service's back would otherwise go unnoticed: the log is the
    record, the tables must agree with it. Memory grows with the number of
    (track, purpose) pairs that were ever changed, not with the number of events.
    """
    events = AuditEvent.objects.order_by("artist_id", "seq").values_list(
        "kind", "artist_id", "track_id", "purpose_id", "new_value"
    )
    consents = Consent.objects.values_list("track_id", "purpose_id", "granted")
    defaults = UploadDefault.objects.values_list("artist_id", "purpose_id", "granted")
    if artist_id is not None:
        events = events.filter(artist_id=artist_id)
        consents = consents.filter(track__owner_id=artist_id)
        defaults = defaults.filter(artist_id=artist_id)

    track_state: dict[tuple[int, int], bool] = {}
    default_state: dict[tuple[int, int], bool] = {}
    deleted: set[int] = set()
    for kind, artist, track_id, purpose_id, new_value in events.iterator(chunk_size=chunk_size):
        if kind == AuditEvent.Kind.CONSENT_CHANGED:
            track_state[(track_id, purpose_id)] = new_value == "granted"
        elif kind == AuditEvent.Kind.DEFAULTS_CHANGED:
            default_state[(artist, purpose_id)] = new_value == "granted"
        elif kind == AuditEvent.Kind.TRACK_DELETED:
            deleted.add(track_id)

    for track_id, purpose_id, granted in consents.iterator(chunk_size=chunk_size):
        expected = track_state.pop((track_id, purpose_id), False)
        if granted != expected:
            yield StateMismatch(f"track {track_id}, purpose {purpose_id}", _state_word(expected), _state_word(granted))
    for (track_id, purpose_id), expected in track_state.items():
        if expected and track_id not in deleted:
            yield StateMismatch(f"track {track_id}, purpose {purpose_id}", "granted", "no row (not granted)")

    for artist, purpose_id, granted in defaults.iterator(chunk_size=chunk_size):
        expected = default_state.pop((artist, purpose_id), False)
        if granted != expected:
            yield StateMismatch(
                f"upload default of artist {artist}, purpose {purpose_id}", _state_word(expected), _state_word(granted)
            )
    for (artist, purpose_id), expected in default_state.items():
        if expected:
            yield StateMismatch(f"upload default of artist {artist}, purpose {purpose_id}", "granted", "no row")


# --- The dashboard: what is my music used for, what changed, what waits for me ---------------


@dataclass(frozen=True)
class WaitingItem:
    kind: str  # "proposal", "reconfirm", "policy", "delegation"
    text: str
    url: str


@dataclass
class DashboardOverview:
    total_tracks: int
    uses: list[PurposeCounts]
    changes: list[AuditEvent]
    waiting: list[WaitingItem]


def _waiting_for(user: User) -> list[WaitingItem]:
    from django.urls import reverse
    from django.utils.translation import ngettext

    from consent.hooks import waiting_from_above
    from consent.models import PolicyVersion
    from consent.policy import affected_tracks, pending_acknowledgement

    waiting: list[WaitingItem] = []
    # Terms that change what a use means and are not in force yet: grants lapse unless confirmed again.
    upcoming = PolicyVersion.objects.published().filter(effective_at__gt=timezone.now(), purposes_changed__isnull=False)
    for version in upcoming.distinct():
        count = affected_tracks(user, version).count()
        if count:
            waiting.append(
                WaitingItem(
                    "reconfirm",
                    ngettext(
                        "Policy %(version)s changes what a use means: confirm %(count)d track again "
                        "before %(date)s, or its permission lapses.",
                        "Policy %(version)s changes what a use means: confirm %(count)d tracks again "
                        "before %(date)s, or their permissions lapse.",
                        count,
                    )
                    % {"version": version.version, "count": count, "date": date_format(version.effective_at)},
                    reverse("policy:reconfirm", args=[version.version]),
                )
            )
    pending = pending_acknowledgement(user)
    if pending is not None:
        waiting.append(
            WaitingItem(
                "policy",
                _("New terms (version %(version)s) to read.") % {"version": pending.version},
                reverse("consent:policy", args=[pending.version]),
            )
        )
    # A label's proposals and roster invitations (labels registers them: consent does not import labels).
    waiting.extend(waiting_from_above(user))
    return waiting


def dashboard_overview(user: User) -> DashboardOverview:
    tracks = Track.objects.filter(owner=user)
    uses = purpose_counts(tracks, purposes())
    return DashboardOverview(
        total_tracks=uses[0].total if uses else tracks.count(),
        uses=uses,
        changes=list(recent_changes(artist=user)),
        waiting=_waiting_for(user),
    )
