"""Reads for the consent API and for the artist's view of downstream systems.

Consent is read from consent.models only; nothing here writes.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from consent.models import AuditChainHead, AuditEvent, Consent, Purpose
from downstream import feed
from downstream.models import AckState, ApiClient, Manifest, ManifestTrack, UsageRecord, WithdrawalAck
from platformkit.sql import pk_in
from tracks.models import Track
from tracks.validators import isrc_or_none

Kind = AuditEvent.Kind
GRANTED = "granted"

ID_TYPES = ("uuid", "isrc", "sha256")
_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Reason:
    """Why an id is not allowed. Anything the portal cannot vouch for is denied."""

    NOT_GRANTED = "not_granted"
    NOT_FOUND = "not_found"
    DELETED = "deleted"
    NOT_PROCESSED = "not_processed"
    AMBIGUOUS = "ambiguous"
    INVALID_ID = "invalid_id"
    NOT_IN_MANIFEST = "not_in_manifest"
    DUPLICATE = "duplicate"

    ALL = (NOT_GRANTED, NOT_FOUND, DELETED, NOT_PROCESSED, AMBIGUOUS, INVALID_ID, NOT_IN_MANIFEST, DUPLICATE)


# --- Clients ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthenticatedClient:
    id: int
    name: str
    scope: tuple[Purpose, ...]
    can_write_manifests: bool
    can_write_usage: bool
    rate_limit: int | None

    @property
    def purposes(self) -> frozenset[str]:
        return frozenset(p.slug for p in self.scope)

    def purpose(self, slug: str) -> Purpose | None:
        return next((p for p in self.scope if p.slug == slug), None)


def _client_sql() -> str:
    client = ApiClient._meta.db_table
    link = ApiClient.purposes.through._meta.db_table
    purpose = Purpose._meta.db_table
    # Table names from _meta, values bound: the hot path of every request, so written once, not compiled each time.
    return (
        f"SELECT c.id, c.name, c.can_write_manifests, c.can_write_usage, c.rate_limit, p.id, p.ordering, p.slug "  # noqa: S608
        f"FROM {client} c LEFT JOIN {link} l ON l.apiclient_id = c.id LEFT JOIN {purpose} p ON p.id = l.purpose_id "
        f"WHERE c.token_hash = %s AND c.revoked_at IS NULL"
    )


def client_for_token_hash(token_hash: str) -> AuthenticatedClient | None:
    """The active client holding this token, with its purposes, in one query (revocation counts at once)."""
    with connection.cursor() as cursor:
        cursor.execute(_client_sql(), [token_hash])
        rows = cursor.fetchall()
    if not rows:
        return None
    first = rows[0]
    purposes = [Purpose(pk=r[5], ordering=r[6], slug=r[7]) for r in rows if r[5] is not None]
    return AuthenticatedClient(
        id=first[0],
        name=first[1],
        scope=tuple(sorted(purposes, key=lambda p: (p.ordering, p.pk))),
        can_write_manifests=bool(first[2]),
        can_write_usage=bool(first[3]),
        rate_limit=first[4],
    )


def purposes_by_slug(slugs: Iterable[str]) -> dict[str, Purpose]:
    return {p.slug: p for p in Purpose.objects.filter(slug__in=list(slugs))}


# --- Identifiers --------------------------------------------------------------------------


def normalise_id(id_type: str, raw: str) -> str | None:
    """The form an id is stored in, or None if it cannot be one."""
    value = raw.strip()
    if id_type == "uuid":
        # The canonical form needs no parsing (10,000 ids per request); anything else is parsed once.
        lowered = value.lower()
        if _CANONICAL_UUID.match(lowered):
            return lowered
        try:
            return str(uuid.UUID(value))
        except ValueError:
            return None
    if id_type == "isrc":
        return isrc_or_none(value)
    value = value.lower()
    return value if _SHA256.match(value) else None


_MANY_CANONICAL_UUIDS = re.compile(
    r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n)*"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


def normalise_ids(id_type: str, ids: Sequence[str]) -> list[str | None]:
    """normalise_id of each id, in order. Canonical uuids (what clients send) are checked by one regex over all
    of them at once; any other list is normalised id by id."""
    if id_type == "uuid" and ids:
        joined = "\n".join(ids).lower()
        if _MANY_CANONICAL_UUIDS.fullmatch(joined):
            keys: list[str | None] = list(joined.split("\n"))
            # An id with a newline inside would split in two: then the counts differ.
            if len(keys) == len(ids):
                return keys
    return [normalise_id(id_type, raw) for raw in ids]


def _values_in(values: Sequence[str], *, as_uuid: bool) -> RawSQL:
    """One bound parameter for any number of values (the query text does not grow with the list).

    The values are normalised ids (hex digits, letters, hyphens: see normalise_id), so they are sent as one
    array literal, which costs the driver one string instead of 10,000 adapted values.
    """
    if connection.vendor == "postgresql":
        cast = "uuid" if as_uuid else "text"
        return RawSQL(f"SELECT unnest(%s::{cast}[])", (_array_literal(values),))  # noqa: S611 -- a bound parameter
    stored = [uuid.UUID(v).hex for v in values] if as_uuid else list(values)
    return RawSQL("SELECT value FROM json_each(%s)", (json.dumps(stored),))


def _array_literal(values: Iterable[str]) -> str:
    # Normalised ids only: nothing in them needs quoting inside an array literal.
    return "{" + ",".join(values) + "}"


@dataclass(slots=True)
class Answer:
    """What the portal says about one distinct (normalised) id. Read-only by convention: not frozen, because
    a frozen dataclass takes twice as long to build and a check builds 10,000; the denials below are shared."""

    allowed: bool
    track: str | None
    reason: str | None
    track_id: int | None = None
    artist_id: int | None = None


INVALID = Answer(False, None, Reason.INVALID_ID)
_NOT_FOUND = Answer(False, None, Reason.NOT_FOUND)
_DELETED = Answer(False, None, Reason.DELETED)
_AMBIGUOUS = Answer(False, None, Reason.AMBIGUOUS)


@dataclass(frozen=True)
class Judged:
    """Each id asked, normalised, in order (None: cannot be an id), and one answer per distinct key."""

    keys: list[str | None]
    answers: dict[str, Answer]

    def answer(self, key: str | None) -> Answer:
        return INVALID if key is None else self.answers[key]


_COLUMNS = {"uuid": "uuid", "isrc": "isrc", "sha256": "sha256"}


@functools.cache
def _lookup_sql(id_type: str, with_track_ids: bool) -> str:
    track, consent = Track._meta.db_table, Consent._meta.db_table
    column = _COLUMNS[id_type]
    key = "" if id_type == "uuid" else f"t.{column}, "  # a uuid's key is the track's uuid
    ids = ", t.id, t.owner_id" if with_track_ids else ""
    # Exactly the columns needed, as text (no uuid objects for 10,000 rows), the reason decided here; the ids
    # as one array parameter, so the statement does not grow with them.
    return (
        f"SELECT {key}t.uuid::text, CASE WHEN t.status <> %s THEN %s WHEN c.id IS NULL THEN %s END{ids} "  # noqa: S608
        f"FROM {track} t LEFT JOIN {consent} c ON c.track_id = t.id AND c.purpose_id = %s AND c.granted "
        f"WHERE t.{column} = ANY(%s::{'uuid' if id_type == 'uuid' else 'text'}[])"
    )


def _lookup_rows(id_type: str, keys: Collection[str], purpose: Purpose, with_track_ids: bool) -> list[tuple[Any, ...]]:
    """([key,] track uuid, reason or None[, track id, owner id]) of every track matching one of the keys; no key
    for uuids (it is the track's uuid)."""
    if not keys:
        return []
    if connection.vendor == "postgresql":
        params: list[Any] = [
            Track.Status.READY.value,
            Reason.NOT_PROCESSED,
            Reason.NOT_GRANTED,
            purpose.pk,
            _array_literal(keys),
        ]
        with connection.cursor() as cursor:
            cursor.execute(_lookup_sql(id_type, with_track_ids), params)
            rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows
    column = _COLUMNS[id_type]
    found = (
        Track.objects.filter(**{f"{column}__in": _values_in(list(keys), as_uuid=id_type == "uuid")})
        .order_by()
        .annotate(granted=_granted(purpose))
        .values_list(column, "uuid", "status", "granted", "pk", "owner_id")
    )
    result = []
    for key, track_uuid, status, granted, pk, owner_id in found:
        reason = Reason.NOT_PROCESSED if status != Track.Status.READY else None if granted else Reason.NOT_GRANTED
        key_column = () if id_type == "uuid" else (str(key),)
        result.append((*key_column, str(track_uuid), reason, *((pk, owner_id) if with_track_ids else ())))
    return result


def _deleted_uuids(keys: Collection[str]) -> set[str]:
    if not keys:
        return set()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT DISTINCT track_uuid::text FROM {AuditEvent._meta.db_table} "  # noqa: S608
                "WHERE kind = %s AND track_uuid = ANY(%s::uuid[])",
                [str(Kind.TRACK_DELETED), _array_literal(keys)],
            )
            return {row[0] for row in cursor.fetchall()}
    return {
        str(u)
        for u in AuditEvent.objects.filter(kind=Kind.TRACK_DELETED, track_uuid__in=_values_in(list(keys), as_uuid=True))
        .order_by()
        .values_list("track_uuid", flat=True)
    }


def _granted(purpose: Purpose) -> Exists:
    return Exists(Consent.objects.filter(track=OuterRef("pk"), purpose=purpose, granted=True))


def judge_ids(*, purpose: Purpose, id_type: str, ids: Sequence[str], with_track_ids: bool = False) -> Judged:
    """Answer every id for `purpose`; default deny. Two queries at most, whatever the count.

    `with_track_ids` also reads each track's row id and owner (for manifests and usage)."""
    keys = normalise_ids(id_type, ids)
    distinct = set(keys)
    distinct.discard(None)
    rows = _lookup_rows(id_type, distinct, purpose, with_track_ids)  # type: ignore[arg-type]
    if id_type == "uuid":
        answers = {row[0]: Answer(row[1] is None, *row) for row in rows}
    else:
        answers = {row[0]: Answer(row[2] is None, *row[1:]) for row in rows}
    if len(answers) < len(rows):  # an ISRC or a file hash shared by several tracks
        seen: set[str] = set()
        for row in rows:
            if row[0] in seen:
                answers[row[0]] = _AMBIGUOUS
            seen.add(row[0])
    missing: set[str] = distinct.difference(answers)  # type: ignore[assignment]
    if missing:
        deleted = _deleted_uuids(missing) if id_type == "uuid" else set()
        for key in missing:
            answers[key] = _DELETED if key in deleted else _NOT_FOUND
    return Judged(keys, answers)


@dataclass(frozen=True, slots=True)
class IdResult:
    id: str
    allowed: bool
    track: uuid.UUID | None
    reason: str | None
    track_id: int | None = None
    artist_id: int | None = None


def check_ids(*, purpose: Purpose, id_type: str, ids: Sequence[str]) -> list[IdResult]:
    """Answer each id in the order asked; default deny. A constant number of queries."""
    judged = judge_ids(purpose=purpose, id_type=id_type, ids=ids, with_track_ids=True)
    results = []
    for raw, key in zip(ids, judged.keys, strict=True):
        answer = judged.answer(key)
        track = uuid.UUID(answer.track) if answer.track else None
        results.append(IdResult(raw, answer.allowed, track, answer.reason, answer.track_id, answer.artist_id))
    return results


# --- One track's consent ---------------------------------------------------------------------


@dataclass(frozen=True)
class PurposeState:
    allowed: bool
    since: datetime.datetime | None
    event: str | None


@dataclass(frozen=True)
class TrackConsent:
    track: uuid.UUID
    isrc: str | None
    sha256: str | None
    status: str
    as_of: datetime.datetime
    purposes: dict[str, PurposeState] = field(default_factory=dict)


def _track_read_sql(purpose_count: int) -> str:
    track, consent, event = Track._meta.db_table, Consent._meta.db_table, AuditEvent._meta.db_table
    placeholders = ", ".join(["%s"] * purpose_count)
    latest = (
        f"FROM {event} e WHERE e.track_uuid = t.uuid AND e.purpose_id = p.id AND e.kind = %s "
        "ORDER BY e.seq DESC LIMIT 1"
    )
    # One statement per read, written out rather than compiled by the ORM on every request.
    return (
        f"SELECT t.isrc, t.sha256, t.status, p.id, "  # noqa: S608
        f"EXISTS (SELECT 1 FROM {consent} c WHERE c.track_id = t.id AND c.purpose_id = p.id AND c.granted), "
        f"(SELECT e.hash {latest}), (SELECT e.created_at {latest}) "
        f"FROM {track} t, {Purpose._meta.db_table} p WHERE t.uuid = %s AND p.id IN ({placeholders})"
    )


def _as_datetime(value: datetime.datetime | str | None) -> datetime.datetime | None:
    # PostgreSQL returns aware datetimes; SQLite naive UTC ones (or their text).
    if value is None:
        return None
    parsed = value if isinstance(value, datetime.datetime) else parse_datetime(value)
    return parsed if parsed is None or timezone.is_aware(parsed) else timezone.make_aware(parsed, datetime.UTC)


def track_consent(
    *, track_uuid: uuid.UUID, purposes: Sequence[Purpose], as_of: datetime.datetime | None = None
) -> TrackConsent | None:
    """Consent of one track for these purposes, now (one query) or as of an instant (from the audit log)."""
    if as_of is not None:
        return _track_consent_as_of(track_uuid, purposes, as_of)
    rows: list[tuple[Any, ...]]
    if not purposes:
        track = Track.objects.filter(uuid=track_uuid).order_by().values("isrc", "sha256", "status")[:1]
        rows = [(r["isrc"], r["sha256"], r["status"], None, False, None, None) for r in track]
    else:
        uuid_param = Track._meta.get_field("uuid").get_db_prep_value(track_uuid, connection)
        kind = str(Kind.CONSENT_CHANGED)
        with connection.cursor() as cursor:
            cursor.execute(_track_read_sql(len(purposes)), [kind, kind, uuid_param, *(p.pk for p in purposes)])
            rows = cursor.fetchall()
    if not rows:
        # A deleted track is known to the log: answer from it.
        return _track_consent_as_of(track_uuid, purposes, timezone.now())
    by_purpose = {row[3]: row for row in rows}
    states = {}
    for purpose in purposes:
        row = by_purpose[purpose.pk]
        states[purpose.slug] = PurposeState(bool(row[4]), _as_datetime(row[6]), row[5])
    isrc, sha256, status = rows[0][:3]
    return TrackConsent(
        track=track_uuid, isrc=isrc or None, sha256=sha256 or None, status=status, as_of=timezone.now(), purposes=states
    )


@dataclass(frozen=True)
class TokenRead:
    """The client a token names (id, rate limit, scope) and, if the track exists, its consent now."""

    client_id: int
    rate_limit: int | None
    scope_rows: tuple[tuple[int, int, str], ...]
    consent: TrackConsent | None

    def scope(self) -> list[Purpose]:
        """The client's purposes, built only when needed (a deleted track): the hot path never needs them."""
        return [Purpose(pk=pk, ordering=ordering, slug=slug) for pk, ordering, slug in self.scope_rows]


@functools.cache
def _token_read_sql() -> str:
    client, link, purpose = ApiClient._meta.db_table, ApiClient.purposes.through._meta.db_table, Purpose._meta.db_table
    track, consent, event = Track._meta.db_table, Consent._meta.db_table, AuditEvent._meta.db_table
    # The hot path of the API: the token's client, its scope and the track's consent for each purpose in it, in one
    # statement (one round trip, one snapshot). A revoked or unknown token matches no row, so revocation counts at
    # once. Table names from _meta, values bound.
    # Correlated subqueries rather than a LATERAL join: SQLite (the quick start) runs this too.
    latest = (
        f"FROM {event} e WHERE e.track_uuid = t.uuid AND e.purpose_id = p.id AND e.kind = %s "
        "ORDER BY e.seq DESC LIMIT 1"
    )
    return (
        f"SELECT c.id, c.rate_limit, p.id, p.ordering, p.slug, t.id, t.isrc, t.sha256, t.status, "  # noqa: S608
        f"EXISTS (SELECT 1 FROM {consent} g WHERE g.track_id = t.id AND g.purpose_id = p.id AND g.granted), "
        f"(SELECT e.hash {latest}), (SELECT e.created_at {latest}) "
        f"FROM {client} c LEFT JOIN {link} l ON l.apiclient_id = c.id LEFT JOIN {purpose} p ON p.id = l.purpose_id "
        f"LEFT JOIN {track} t ON t.uuid = %s "
        f"WHERE c.token_hash = %s AND c.revoked_at IS NULL ORDER BY p.ordering, p.id"
    )


def _fetch_planned_once(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run a statement PostgreSQL plans once per connection (a prepared statement), and fetch its rows.

    For the API's hot read, planning costs several times the execution. Django binds parameters on the client
    and never prepares, so this one statement goes through a server-binding psycopg cursor with prepare=True;
    Django's query log still sees it. (Behind PgBouncer in transaction mode this needs its prepared-statement
    support, max_prepared_statements > 0.)
    """
    # `connection` is a per-thread lookup on every attribute access; this path takes it once.
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            rows: list[tuple[Any, ...]] = cursor.fetchall()
            return rows
    from django.db.backends.postgresql.base import ServerBindingCursor

    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    raw_connection = db.connection
    if raw_connection.prepare_threshold is None:
        # Django turns psycopg's automatic preparation off; it stays off (no other statement ever reaches a
        # count this high), and prepare=True below prepares this one.
        raw_connection.prepare_threshold = 2**31
    # The stubs do not know psycopg's cursor class Django builds this one from.
    server_cursor: Any = ServerBindingCursor
    with server_cursor(raw_connection) as raw, db.wrap_database_errors:
        if db.queries_logged:
            with db.make_debug_cursor(raw).debug_sql(sql, params):
                raw.execute(sql, params, prepare=True)
        else:
            raw.execute(sql, params, prepare=True)
        fetched: list[tuple[Any, ...]] = raw.fetchall()
        return fetched


def track_consent_for_token(*, token_hash: str, track_uuid: uuid.UUID) -> TokenRead | None:
    """The client holding this active token and the track's consent now for its whole scope, in one query.

    None when no active client holds the token. `consent` is None when no track has this uuid now (a deleted track
    is answered from the log by track_consent).
    """
    uuid_param = Track._meta.get_field("uuid").get_db_prep_value(track_uuid, connection)
    kind = str(Kind.CONSENT_CHANGED)
    rows = _fetch_planned_once(_token_read_sql(), [kind, kind, uuid_param, token_hash])
    if not rows:
        return None
    first = rows[0]
    scope = tuple((r[2], r[3], r[4]) for r in rows if r[2] is not None)
    consent = None
    if first[5] is not None:
        consent = TrackConsent(
            track=track_uuid,
            isrc=first[6] or None,
            sha256=first[7] or None,
            status=first[8],
            as_of=timezone.now(),
            purposes={r[4]: PurposeState(bool(r[9]), _as_datetime(r[11]), r[10]) for r in rows if r[2] is not None},
        )
    return TokenRead(client_id=first[0], rate_limit=first[1], scope_rows=scope, consent=consent)


def _track_consent_as_of(
    track_uuid: uuid.UUID, purposes: Sequence[Purpose], as_of: datetime.datetime
) -> TrackConsent | None:
    track = next(iter(Track.objects.filter(uuid=track_uuid).order_by().values("isrc", "sha256", "status")[:1]), None)
    events = AuditEvent.objects.filter(track_uuid=track_uuid)
    if track is None and not events.exists():
        return None
    relevant = events.filter(created_at__lte=as_of).filter(
        Q(kind=Kind.CONSENT_CHANGED, purpose__in=list(purposes)) | Q(kind=Kind.TRACK_DELETED)
    )
    latest_seqs = [row["last"] for row in relevant.order_by().values("kind", "purpose_id").annotate(last=Max("seq"))]
    latest = list(events.filter(seq__in=latest_seqs).values("kind", "purpose_id", "new_value", "created_at", "hash"))
    deletion = next((e for e in latest if e["kind"] == Kind.TRACK_DELETED), None)
    by_purpose = {e["purpose_id"]: e for e in latest if e["kind"] == Kind.CONSENT_CHANGED}
    states = {}
    for purpose in purposes:
        event = deletion or by_purpose.get(purpose.pk)
        if event is None:
            states[purpose.slug] = PurposeState(False, None, None)
        else:
            allowed = event is not deletion and event["new_value"] == GRANTED
            states[purpose.slug] = PurposeState(allowed, event["created_at"], event["hash"])
    return TrackConsent(
        track=track_uuid,
        isrc=(track["isrc"] if track else None) or None,
        sha256=(track["sha256"] if track else None) or None,
        status=track["status"] if track else "deleted",
        as_of=as_of,
        purposes=states,
    )


# --- The change feed ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    cursor: str
    track: uuid.UUID
    purpose: str
    allowed: bool
    at: datetime.datetime
    event: str
    change: str
    event_id: int


def feed_events(purpose: Purpose) -> QuerySet[AuditEvent]:
    """Every event that changes whether a track may be used for `purpose`: grants, withdrawals, deletions."""
    return AuditEvent.objects.filter(Q(kind=Kind.CONSENT_CHANGED, purpose_id=purpose.pk) | Q(kind=Kind.TRACK_DELETED))


def withdrawal_events(purpose: Purpose) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(
        Q(kind=Kind.CONSENT_CHANGED, purpose_id=purpose.pk) & ~Q(new_value=GRANTED) | Q(kind=Kind.TRACK_DELETED)
    )


def _as_change(row: dict[str, Any], purpose_slug: str) -> Change:
    if row["kind"] == Kind.TRACK_DELETED:
        allowed, change = False, "deleted"
    else:
        allowed = row["new_value"] == GRANTED
        change = "granted" if allowed else "withdrawn"
    return Change(
        cursor=str(feed.Position(row["xid_horizon"], row["id"])),
        track=row["track_uuid"],
        purpose=purpose_slug,
        allowed=allowed,
        at=row["created_at"],
        event=row["hash"],
        change=change,
        event_id=row["id"],
    )


_CHANGE_FIELDS = ("id", "xid_horizon", "kind", "track_uuid", "new_value", "created_at", "hash")


def changes(*, purpose: Purpose, after: feed.Position, limit: int) -> list[Change]:
    events = feed.in_order(feed.after(feed.settled(feed_events(purpose)), after))
    return [_as_change(row, purpose.slug) for row in events.values(*_CHANGE_FIELDS)[:limit]]


def changes_by_ids(rows: Iterable[tuple[int, str]]) -> dict[tuple[int, str], Change]:
    """(event id, purpose slug) -> Change, for webhook payloads."""
    rows = list(rows)
    events = {e["id"]: e for e in AuditEvent.objects.filter(id__in=[r[0] for r in rows]).values(*_CHANGE_FIELDS)}
    return {(event_id, slug): _as_change(events[event_id], slug) for event_id, slug in rows if event_id in events}


def head_position(purposes: Sequence[Purpose]) -> feed.Position:
    """The last position the feed would hand out now over these purposes (START if none)."""
    query = AuditEvent.objects.none()
    for purpose in purposes:
        query = query | feed_events(purpose)
    last = feed.settled(query).order_by("-xid_horizon", "-id").values_list("xid_horizon", "id").first()
    return feed.Position(*last) if last else feed.START


# --- Acknowledgements, lag ---------------------------------------------------------------------


@dataclass(frozen=True)
class Lag:
    client: str
    purpose: str
    acknowledged_to: str | None
    acknowledged_at: datetime.datetime | None
    changes_behind: int
    oldest_unacknowledged_withdrawal: datetime.datetime | None


LAG_COUNT_CAP = 10_000


def client_lag(client: ApiClient) -> list[Lag]:
    """Per purpose in the client's scope: how far behind the feed its acknowledgements are."""
    states = {s.purpose_id: s for s in AckState.objects.filter(client=client)}
    lags = []
    for purpose in client.purposes.all():
        state = states.get(purpose.pk)
        position = feed.Position(state.after_horizon, state.after_event) if state else feed.START
        behind = feed.after(feed.settled(feed_events(purpose)), position)
        count = behind.order_by().values("id")[:LAG_COUNT_CAP].count()
        oldest = (
            feed.after(withdrawal_events(purpose), position)
            .filter(created_at__gte=client.created_at)
            .aggregate(oldest=Min("created_at"))["oldest"]
        )
        lags.append(
            Lag(
                client=client.name,
                purpose=purpose.slug,
                acknowledged_to=str(position) if state else None,
                acknowledged_at=state.acknowledged_at if state else None,
                changes_behind=count,
                oldest_unacknowledged_withdrawal=oldest,
            )
        )
    return lags


# --- What the artist sees --------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemAck:
    system: str
    acknowledged_at: datetime.datetime | None


@dataclass(frozen=True)
class Withdrawal:
    purpose: str
    purpose_name: str
    at: datetime.datetime
    source: str
    systems: list[SystemAck]


def withdrawals_for_track(track: Track) -> list[Withdrawal]:
    """Each withdrawal of the track, with every system in that purpose's scope and whether it has applied it."""
    events = list(
        AuditEvent.objects.filter(track_uuid=track.uuid, kind=Kind.CONSENT_CHANGED)
        .exclude(new_value=GRANTED)
        .select_related("purpose")
        .order_by("-seq")
    )
    if not events:
        return []
    purpose_ids = {e.purpose_id for e in events}
    scopes: dict[int | None, list[ApiClient]] = defaultdict(list)
    for client in ApiClient.objects.active().filter(purposes__in=purpose_ids).prefetch_related("purposes").distinct():
        for purpose in client.purposes.all():
            scopes[purpose.pk].append(client)
    acks = {
        (a.client_id, a.event_id): a.acknowledged_at
        for a in WithdrawalAck.objects.filter(event_id__in=[e.pk for e in events])
    }
    return [
        Withdrawal(
            purpose=event.purpose_slug,
            purpose_name=event.purpose.name if event.purpose else event.purpose_slug,
            at=event.created_at,
            source=event.get_source_display(),
            systems=[
                SystemAck(client.name, acks.get((client.pk, event.pk)))
                for client in sorted(scopes[event.purpose_id], key=lambda c: c.name)
            ],
        )
        for event in events
    ]


@dataclass(frozen=True)
class ManifestCitation:
    id: str
    name: str
    system: str
    purpose: str
    created_at: datetime.datetime


def manifests_citing(track: Track) -> list[ManifestCitation]:
    rows = (
        ManifestTrack.objects.filter(track_uuid=track.uuid)
        .select_related("manifest", "manifest__client", "manifest__purpose")
        .order_by("-manifest__created_at")
    )
    return [
        ManifestCitation(
            id=row.manifest_id,
            name=row.manifest.name,
            system=row.manifest.client.name,
            purpose=row.manifest.purpose.name,
            created_at=row.manifest.created_at,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class UsageLine:
    purpose: str
    system: str
    date: datetime.date
    times: int


def usage_for_track(track: Track) -> list[UsageLine]:
    """'Used for <purpose> by <system>, <date>, N times', newest first."""
    rows = (
        UsageRecord.objects.filter(track_uuid=track.uuid)
        .annotate(day=TruncDate("recorded_at"))
        .values("purpose__name", "client__name", "day")
        .annotate(times=Count("id"))
        .order_by("-day", "purpose__name", "client__name")
    )
    return [UsageLine(r["purpose__name"], r["client__name"], r["day"], r["times"]) for r in rows]


@dataclass(frozen=True)
class UsageTotal:
    purpose: str
    system: str
    times: int
    tracks: int
    last_used: datetime.datetime


def usage_totals_for_artist(artist_id: int) -> list[UsageTotal]:
    """The dashboard's totals: per purpose and system, how often and on how many tracks."""
    rows = (
        UsageRecord.objects.filter(artist_id=artist_id)
        .values("purpose__name", "client__name")
        .annotate(times=Count("id"), tracks=Count("track_uuid", distinct=True), last=Max("recorded_at"))
        .order_by("purpose__name", "client__name")
    )
    return [UsageTotal(r["purpose__name"], r["client__name"], r["times"], r["tracks"], r["last"]) for r in rows]


def usage_ledger_for_artist(artist_id: int) -> list[dict[str, Any]]:
    """Every use of the artist's tracks, oldest first, as JSON-ready rows (for the data export)."""
    rows = (
        UsageRecord.objects.filter(artist_id=artist_id)
        .order_by("recorded_at", "id")
        .values(
            "track_uuid",
            "purpose__slug",
            "client__name",
            "manifest_id",
            "description",
            "recorded_at",
            "consent_event__hash",
        )
    )
    return [
        {
            "track": str(r["track_uuid"]),
            "purpose": r["purpose__slug"],
            "system": r["client__name"],
            "manifest": r["manifest_id"],
            "description": r["description"],
            "used_at": r["recorded_at"].isoformat(),
            "consent_event": r["consent_event__hash"],
        }
        for r in rows
    ]


# --- Manifests ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    track_id: int
    track_uuid: uuid.UUID
    sha256: str
    artist_id: int
    event_id: int
    event_hash: str
    chain_head: str
    chain_seq: int


def current_grants(*, purpose: Purpose, track_ids: Sequence[int]) -> dict[int, Grant]:
    """For tracks granted now: the event that granted it and the artist's chain head, read in one statement."""
    latest = AuditEvent.objects.filter(
        track_uuid=OuterRef("uuid"), kind=Kind.CONSENT_CHANGED, purpose_id=purpose.pk
    ).order_by("-seq")
    head = AuditChainHead.objects.filter(artist_id=OuterRef("owner_id"))
    rows = (
        Track.objects.filter(pk__in=pk_in(track_ids), status=Track.Status.READY)
        .order_by()
        .annotate(
            granted=_granted(purpose),
            event_id=Subquery(latest.values("id")[:1]),
            event_hash=Subquery(latest.values("hash")[:1]),
            event_value=Subquery(latest.values("new_value")[:1]),
            head_hash=Subquery(head.values("hash")[:1]),
            head_seq=Subquery(head.values("seq")[:1]),
        )
        .filter(granted=True, event_value=GRANTED)
        .values_list("pk", "uuid", "sha256", "owner_id", "event_id", "event_hash", "head_hash", "head_seq")
    )
    return {row[0]: Grant(*row) for row in rows}


@dataclass(frozen=True)
class ManifestWithdrawal:
    track: uuid.UUID
    sha256: str | None
    change: str
    at: datetime.datetime
    event: str
    allowed_now: bool


def manifest_withdrawals(manifest: Manifest) -> list[ManifestWithdrawal]:
    """The manifest's tracks withdrawn (or deleted) since it was made, in log order."""
    cited_before = ManifestTrack.objects.filter(
        manifest=manifest, track_uuid=OuterRef("track_uuid"), chain_seq__lt=OuterRef("seq")
    )
    events = list(
        withdrawal_events(manifest.purpose)
        .filter(Exists(cited_before))
        .order_by("created_at", "id")
        .values("track_uuid", "kind", "created_at", "hash")
    )
    # Exists(cited_before) matched each event's track_uuid, so none is NULL.
    uuids = {track for e in events if (track := e["track_uuid"]) is not None}
    granted_now = set(
        Consent.objects.filter(track__uuid__in=uuids, purpose_id=manifest.purpose_id, granted=True).values_list(
            "track__uuid", flat=True
        )
    )
    sha = dict(
        ManifestTrack.objects.filter(manifest=manifest, track_uuid__in=uuids).values_list("track_uuid", "sha256")
    )
    return [
        ManifestWithdrawal(
            track=track,
            sha256=sha.get(track),
            change="deleted" if e["kind"] == Kind.TRACK_DELETED else "withdrawn",
            at=e["created_at"],
            event=e["hash"],
            allowed_now=track in granted_now,
        )
        for e in events
        if (track := e["track_uuid"]) is not None
    ]
