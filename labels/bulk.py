"""Bulk changes: preview, confirm, apply, undo, and the sweep that keeps them moving.

Two scopes share this machinery: a label manager's change over the label's
roster (`BulkChange.label`), and an artist's change over their own catalogue
(`BulkChange.artist`). The artist's is checked the same way (drift against the
preview, chunks, progress, undo); only what counts as "in scope" differs.

A preview writes every (track, purpose) cell it showed as a BulkChangeItem,
set-based (INSERT ... SELECT, or one INSERT from a CSV dry run). Confirming
first checks, in a constant number of queries, that the preview still holds
(no track added, removed or changed, no delegation narrowed); if not, the
change is marked out of date and says what changed. Applying reads only the
items, never the filter again, whole artists per chunk in id order; each chunk
commits its consent writes, audit events, emails and progress together, so a
change cut short resumes after its last committed artist and no cell is
written twice.

A worker holds a change through a lease renewed with every chunk; the
periodic sweep hands a change whose lease ran out to another worker, or, after
`LABELS_BULK_MAX_LOST` losses, marks it failed with what was applied.
"""

from __future__ import annotations

import datetime
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, DateTimeField, Exists, F, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop, ngettext

from accounts.models import User
from consent import bulk_write
from consent import services as consent_services
from consent.confirmation import needing_confirmation, needs_own_confirmation, unconfirmed_grants
from consent.forms import CatalogueFilterForm
from consent.models import AuditEvent, Consent, Purpose
from consent.selectors import filter_tracks
from consent.services import ConsentError, ConsentPermissionDenied, can_change_consent, delegated_scopes
from labels.models import BulkChange, BulkChangeItem, Delegation, Label
from labels.selectors import catalogue_tracks, roster_tracks
from labels.services import LabelError
from platformkit.queueing import enqueue, task_named
from platformkit.request_meta import RequestMeta
from platformkit.sql import insert_rows, pk_in
from tracks.models import Track

logger = logging.getLogger(__name__)

Action = BulkChangeItem.Action
Status = BulkChange.Status
Scope = Delegation.Scope
# Drift messages name at most this many artists or ISRCs, then say how many more.
NAMED = 10


class PreviewOutdated(LabelError):
    """The preview no longer holds; `drift` says what changed, in words."""

    def __init__(self, drift: list[str]):
        super().__init__(gettext("This preview no longer holds, so nothing was changed. Preview again."))
        self.drift = drift


class _ClaimLost(Exception):
    """Another worker holds the change now (the sweep judged this one lost)."""


@dataclass
class _Claim:
    bulk: BulkChange
    token: uuid.UUID
    actor: User | None  # None once the manager's account is gone: the apply then refuses
    request_meta: RequestMeta | None
    deadline: float


@dataclass(frozen=True)
class ArtistCells:
    """What one artist contributes to a chunk."""

    artist_id: int
    tracks: int
    cells: int


@dataclass
class ChunkOutcome:
    applied: int = 0
    notified: int = 0
    refused: int = 0
    detail: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class SweepResult:
    resumed: int
    failed: int
    requeued: int


@dataclass(frozen=True)
class _WriteRef:
    """What the consent writer reads of a bulk change (consent.services.writes.BulkChangeRef).

    An artist's own change has no label: its events carry no label and its
    email is the artist's own receipt, not a notice of a label's change.
    """

    pk: int
    label_id: int | None
    label: Any


@dataclass(frozen=True)
class _NoLabel:
    name: str = ""


def _write_ref(bulk: BulkChange) -> BulkChange | _WriteRef:
    if bulk.label_id is not None:
        return bulk
    return _WriteRef(pk=bulk.pk, label_id=None, label=_NoLabel())


def _uuids(selection: Iterable[str]) -> list[uuid.UUID]:
    parsed = []
    for value in selection:
        try:
            parsed.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return parsed


def artist_catalogue_tracks(
    artist: User, params: Mapping[str, str], *, selection: list[str] | None = None
) -> QuerySet[Track]:
    """The artist's own tracks that a catalogue filter (consent's, as on the matrix) and selection pick now."""
    form = CatalogueFilterForm(
        {key: params.get(key, "") for key in CatalogueFilterForm.FILTER_KEYS}, purposes=list(Purpose.objects.all())
    )
    tracks = filter_tracks(Track.objects.filter(owner=artist), form.to_filter())
    if selection is not None:
        tracks = tracks.filter(uuid__in=_uuids(selection))
    return tracks


def _scope_tracks(bulk: BulkChange) -> QuerySet[Track]:
    """Every track the change may touch at all: the label's roster, or the artist's own catalogue."""
    if bulk.artist_id is not None:
        return Track.objects.filter(owner_id=bulk.artist_id)
    assert bulk.label is not None
    return roster_tracks(bulk.label)


def _matching_tracks(bulk: BulkChange) -> QuerySet[Track]:
    """The tracks the change's filter and selection pick now."""
    if bulk.artist_id is not None:
        assert bulk.artist is not None
        return artist_catalogue_tracks(bulk.artist, bulk.filter, selection=bulk.selection)
    assert bulk.label is not None
    return catalogue_tracks(bulk.label, bulk.filter, selection=bulk.selection)


# --- Preview ------------------------------------------------------------------------------------


# Reasons are stored in English, as written here, and translated when shown (`translated` filter): a bulk
# change's record is read by people in different languages.
def _reason(scope: str, granted: bool) -> str:
    if scope == Scope.WITHDRAW and granted:
        return gettext_noop("may only withdraw")
    return gettext_noop("not delegated")


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _insert_edit_items(bulk: BulkChange, tracks: QuerySet[Track], purpose: Purpose, granted: bool) -> None:
    """One INSERT ... SELECT: every track of `tracks` with its current state for `purpose`."""
    sub_sql, sub_params = tracks.order_by().values("pk").query.sql_with_params()
    # Table names come from _meta, values travel as parameters.
    sql = f"""
        INSERT INTO {_table(BulkChangeItem)}
            (bulk_change_id, artist_id, track_id, purpose_id, shown_granted, new_granted, action, isrc_key)
        SELECT %s, t.owner_id, t.id, %s, COALESCE(c.granted, FALSE), %s,
               CASE WHEN COALESCE(c.granted, FALSE) = %s THEN %s ELSE %s END, ''
        FROM {_table(Track)} t
        LEFT JOIN {_table(Consent)} c ON c.track_id = t.id AND c.purpose_id = %s
        WHERE t.id IN ({sub_sql})
    """  # noqa: S608
    params = [bulk.pk, purpose.pk, granted, granted, Action.ALREADY, Action.CHANGE, purpose.pk, *sub_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _refuse_outside_delegation(
    bulk: BulkChange, actor: User, changes: Mapping[str, bool], purposes: Mapping[str, Purpose]
) -> dict[int, dict[str, str]]:
    """Mark the cells the delegations do not allow; one UPDATE per purpose at most."""
    items = BulkChangeItem.objects.filter(bulk_change=bulk)
    owners = list(items.order_by().values_list("artist_id", flat=True).distinct())
    delegations = delegated_scopes(actor, owners, label_id=bulk.label_id)
    for slug, granted in changes.items():
        refused = [
            owner
            for owner in owners
            if not can_change_consent(
                actor, owner_id=owner, granted=granted, purpose_slug=slug, delegations=delegations
            )
        ]
        if refused:
            items.filter(purpose=purposes[slug], action=Action.CHANGE, artist_id__in=pk_in(refused)).update(
                action=Action.REFUSED
            )
    return delegations


def _summarise(bulk: BulkChange, delegations: Mapping[int, Mapping[str, str]]) -> None:
    """Counts and refusals per artist and purpose, from one aggregate over the items."""
    rows = list(
        BulkChangeItem.objects.filter(bulk_change=bulk)
        .order_by()
        .values_list("artist_id", "purpose_id", "new_granted", "action")
        .annotate(n=Count("*"))
    )
    totals: dict[str, int] = defaultdict(int)
    refused = []
    for artist_id, purpose_id, granted, action, n in rows:
        totals[action] += n
        if action == Action.REFUSED:
            refused.append((artist_id, purpose_id, granted, n))
    detail = []
    if refused:
        names = dict(User.objects.filter(pk__in=[r[0] for r in refused]).values_list("pk", "display_name"))
        purposes = {p.pk: p for p in Purpose.objects.all()}
        for artist_id, purpose_id, granted, n in sorted(refused, key=lambda r: (names.get(r[0], ""), r[1])):
            slug = purposes[purpose_id].slug
            scope = delegations.get(artist_id, {}).get(slug, Scope.NONE)
            detail.append(
                {
                    "artist": names.get(artist_id, ""),
                    "purpose": purposes[purpose_id].name,
                    "tracks": n,
                    "reason": _reason(scope, granted),
                }
            )
    bulk.will_change = totals[Action.CHANGE]
    bulk.already = totals[Action.ALREADY]
    bulk.refused = totals[Action.REFUSED]
    bulk.refused_detail = detail
    bulk.progress_total = bulk.will_change
    bulk.save(update_fields=["will_change", "already", "refused", "refused_detail", "progress_total"])


def preview_bulk_edit(
    *,
    actor: User,
    label: Label | None = None,
    artist: User | None = None,
    tracks: QuerySet[Track],
    changes: Mapping[str, bool],
    filter_params: Mapping[str, str],
    selection: list[str] | None,
    confirmed: Collection[str] = (),
) -> BulkChange:
    """Save what a bulk edit would do, cell by cell, as a draft: a constant number of statements.

    With `label`, over the label's roster, within the manager's delegations; a
    grant that needs its own confirmation must be confirmed here. With
    `artist` (who must be the actor), over the artist's own tracks only; such
    a grant is confirmed on the preview page instead, when confirming
    (`confirm_bulk_change(confirmed=...)`), since nothing is granted before.
    """
    if (label is None) == (artist is None):
        raise ValueError("A bulk change is a label's or an artist's, exactly one of them.")
    if artist is not None and artist.pk != actor.pk:
        raise LabelError(gettext("You may only change your own tracks this way."))
    purposes = {p.slug: p for p in Purpose.objects.filter(slug__in=list(changes))}
    if not purposes or set(changes) - purposes.keys():
        raise LabelError(gettext("Choose at least one known purpose."))
    missing = [p.name for p in unconfirmed_grants(purposes.values(), changes, confirmed)]
    if missing and label is not None:
        raise _confirmation_missing(missing)
    changes = {slug: bool(granted) for slug, granted in changes.items()}
    with transaction.atomic():
        bulk = BulkChange.objects.create(
            label=label,
            artist=artist,
            created_by=actor,
            kind=BulkChange.Kind.EDIT,
            filter=dict(filter_params),
            selection=selection,
            changes=changes,
            confirmed_purposes=list(confirmed),
            previewed_at=timezone.now(),
        )
        scoped = _scope_tracks(bulk).filter(pk__in=tracks.values("pk"))
        for slug, granted in changes.items():
            _insert_edit_items(bulk, scoped, purposes[slug], granted)
        delegations = _refuse_outside_delegation(bulk, actor, changes, purposes)
        _summarise(bulk, delegations)
    return bulk


def preview_again(*, actor: User, bulk_change: BulkChange) -> BulkChange:
    """A fresh preview of an out-of-date bulk edit: same filter, selection and change."""
    if bulk_change.kind != BulkChange.Kind.EDIT:
        raise LabelError(gettext("Check the CSV file again to make a new dry run."))
    return preview_bulk_edit(
        actor=actor,
        label=bulk_change.label,
        artist=bulk_change.artist,
        tracks=_matching_tracks(bulk_change),
        changes=bulk_change.changes,
        filter_params=bulk_change.filter,
        selection=bulk_change.selection,
        confirmed=bulk_change.confirmed_purposes,
    )


@dataclass(frozen=True)
class ImportCell:
    """One (track, purpose) cell of a CSV dry run."""

    track_id: int
    artist_id: int
    purpose_id: int
    shown: bool
    new: bool
    isrc_key: str = ""


def draft_import(
    *,
    actor: User,
    label: Label,
    cells: Iterable[ImportCell],
    filename: str,
    rows: int,
    confirmed: Collection[str],
    checked_at: datetime.datetime,
) -> BulkChange:
    """Save a clean dry run as a draft bulk change: its cells in one INSERT."""
    cells = list(cells)
    will_change = sum(1 for c in cells if c.shown != c.new)
    with transaction.atomic():
        bulk = BulkChange.objects.create(
            label=label,
            created_by=actor,
            kind=BulkChange.Kind.CSV,
            filter={"file": filename[:200], "rows": rows},
            confirmed_purposes=sorted(confirmed),
            will_change=will_change,
            already=len(cells) - will_change,
            progress_total=will_change,
            previewed_at=checked_at,
        )
        insert_rows(
            BulkChangeItem,
            [
                {
                    "bulk_change_id": bulk.pk,
                    "artist_id": c.artist_id,
                    "track_id": c.track_id,
                    "purpose_id": c.purpose_id,
                    "shown_granted": c.shown,
                    "new_granted": c.new,
                    "action": Action.CHANGE if c.shown != c.new else Action.ALREADY,
                    "isrc_key": c.isrc_key,
                }
                for c in cells
            ],
        )
    return bulk


# --- Confirm: does the preview still hold? ------------------------------------------------------------


def _current_tracks(bulk: BulkChange) -> QuerySet[Track]:
    if bulk.kind == BulkChange.Kind.EDIT:
        return _matching_tracks(bulk)
    return _scope_tracks(bulk)


def _membership_drift(bulk: BulkChange, items: QuerySet[BulkChangeItem]) -> list[str]:
    """Tracks deleted, gone from the roster, no longer matching, or added since the preview."""
    current = _current_tracks(bulk)
    on_roster: Any = (
        Delegation.objects.active().filter(label_id=bulk.label_id).values("artist_id")
        if bulk.label_id is not None
        else [bulk.artist_id]
    )
    exists = Q(Exists(Track.objects.filter(pk=OuterRef("track_id"), owner_id=OuterRef("artist_id"))))
    counts = items.aggregate(
        deleted=Count("track_id", distinct=True, filter=~exists),
        left=Count("track_id", distinct=True, filter=exists & ~Q(artist_id__in=on_roster)),
        unmatched=Count(
            "track_id",
            distinct=True,
            filter=exists & Q(artist_id__in=on_roster) & ~Q(track_id__in=current.order_by().values("pk")),
        ),
    )
    drift = []
    if counts["deleted"]:
        n = counts["deleted"]
        drift.append(
            ngettext("%(count)d track in the preview was deleted.", "%(count)d tracks in the preview were deleted.", n)
            % {"count": n}
        )
    if counts["left"]:
        n = counts["left"]
        drift.append(
            ngettext(
                "%(count)d track in the preview is no longer in your roster (the artist ended the delegation).",
                "%(count)d tracks in the preview are no longer in your roster (the artist ended the delegation).",
                n,
            )
            % {"count": n}
        )
    if counts["unmatched"]:
        n = counts["unmatched"]
        drift.append(
            ngettext(
                "%(count)d track in the preview does not match the filter any more.",
                "%(count)d tracks in the preview do not match the filter any more.",
                n,
            )
            % {"count": n}
        )
    if bulk.kind == BulkChange.Kind.EDIT:
        added = current.exclude(pk__in=items.values("track_id")).count()
        if added:
            drift.append(
                ngettext(
                    "%(count)d track that the preview did not list does match now (uploaded or changed since).",
                    "%(count)d tracks that the preview did not list do match now (uploaded or changed since).",
                    added,
                )
                % {"count": added}
            )
    return drift


def _state_drift(bulk: BulkChange, items: QuerySet[BulkChangeItem]) -> list[str]:
    """Cells whose consent changed since the preview (even if changed back)."""
    since = bulk.previewed_at or bulk.created_at
    cell = {"track_id": OuterRef("track_id"), "purpose_id": OuterRef("purpose_id")}
    granted_now = Q(Exists(Consent.objects.filter(granted=True, **cell)))
    touched = Q(Exists(Consent.objects.filter(changed_at__gt=since, **cell)))
    flipped = (Q(shown_granted=True) & ~granted_now) | (Q(shown_granted=False) & granted_now)
    # A deleted track lost its consent rows with it; it is reported as deleted.
    exists = Q(Exists(Track.objects.filter(pk=OuterRef("track_id"))))
    changed = items.filter(exists & (touched | flipped)).aggregate(n=Count("track_id", distinct=True))["n"]
    if not changed:
        return []
    return [
        ngettext(
            "Consent on %(count)d track in the preview changed since it was made.",
            "Consent on %(count)d tracks in the preview changed since it was made.",
            changed,
        )
        % {"count": changed}
    ]


def _delegation_drift(bulk: BulkChange, items: QuerySet[BulkChangeItem], actor: User) -> list[str]:
    """Changes the delegations (or the manager's membership) no longer allow."""
    needed = list(
        items.filter(action=Action.CHANGE)
        .order_by()
        .values_list("artist_id", "purpose__slug", "purpose__name", "new_granted")
        .annotate(n=Count("*"))
    )
    delegations = delegated_scopes(actor, {row[0] for row in needed}, label_id=bulk.label_id)
    lost: dict[int, list[str]] = defaultdict(list)
    cells = 0
    for artist_id, slug, name, granted, n in needed:
        if not can_change_consent(
            actor, owner_id=artist_id, granted=granted, purpose_slug=slug, delegations=delegations
        ):
            verb = gettext("grant %(purpose)s") if granted else gettext("withdraw %(purpose)s")
            lost[artist_id].append(verb % {"purpose": gettext(name)})
            cells += n
    if not lost:
        return []
    names = dict(User.objects.filter(pk__in=list(lost)[:NAMED]).values_list("pk", "display_name"))
    who = "; ".join(
        f"{names.get(a) or gettext('an artist')}: {', '.join(what)}" for a, what in list(lost.items())[:NAMED]
    )
    if len(lost) > NAMED:
        extra = len(lost) - NAMED
        who += ngettext("; and %(count)d more artist", "; and %(count)d more artists", extra) % {"count": extra}
    return [
        ngettext(
            "You may no longer make %(count)d of the changes (a delegation was narrowed or ended) — %(who)s.",
            "You may no longer make %(count)d of the changes (a delegation was narrowed or ended) — %(who)s.",
            cells,
        )
        % {"count": cells, "who": who}
    ]


def _isrc_drift(bulk: BulkChange, items: QuerySet[BulkChangeItem]) -> list[str]:
    """CSV rows that named a track by ISRC: the ISRC must still name that track alone."""
    if bulk.kind != BulkChange.Kind.CSV:
        return []
    others = _scope_tracks(bulk).filter(isrc=OuterRef("isrc_key")).exclude(pk=OuterRef("track_id"))
    ambiguous = list(
        items.exclude(isrc_key="")
        .filter(Exists(others))
        .order_by("isrc_key")
        .values_list("isrc_key", flat=True)
        .distinct()[: NAMED + 1]
    )
    if not ambiguous:
        return []
    listed = ", ".join(ambiguous[:NAMED])
    if len(ambiguous) > NAMED:
        listed = gettext("%(isrcs)s and more") % {"isrcs": listed}
    return [
        gettext("ISRC %(isrcs)s now matches more than one track in your roster; use track_id for those rows.")
        % {"isrcs": listed}
    ]


def find_drift(*, bulk_change: BulkChange, actor: User) -> list[str]:
    """What in the preview no longer holds, in words; empty when it all still holds.

    A constant number of queries whatever the size of the change.
    """
    items = BulkChangeItem.objects.filter(bulk_change=bulk_change)
    return [
        *_membership_drift(bulk_change, items),
        *_state_drift(bulk_change, items),
        *_delegation_drift(bulk_change, items, actor),
        *_isrc_drift(bulk_change, items),
    ]


def _confirmation_missing(names: list[str]) -> LabelError:
    return LabelError(
        ngettext(
            "Granting %(purposes)s needs its own confirmation: tick the box that says so.",
            "Granting %(purposes)s needs their own confirmation: tick the box that says so.",
            len(names),
        )
        % {"purposes": ", ".join(gettext(name) for name in names)}
    )


def _confirmed_for(bulk_change: BulkChange, confirmed: Collection[str]) -> list[str]:
    """The purposes confirmed for this change (at preview or now); raises if a grant still lacks its confirmation."""
    if bulk_change.kind != BulkChange.Kind.EDIT:
        return list(bulk_change.confirmed_purposes)
    granting = {slug for slug, granted in bulk_change.changes.items() if granted}
    ticked = set(bulk_change.confirmed_purposes) | (set(confirmed) & granting)
    purposes = Purpose.objects.filter(slug__in=list(bulk_change.changes))
    missing = [p.name for p in unconfirmed_grants(purposes, bulk_change.changes, ticked)]
    if missing:
        raise _confirmation_missing(missing)
    return sorted(ticked)


def confirm_bulk_change(*, actor: User, bulk_change: BulkChange, confirmed: Collection[str] = ()) -> bool:
    """Queue or run a previewed change that still holds. Returns True when it was handed to Celery.

    Raises PreviewOutdated (and marks the change out of date) when anything in
    the preview no longer holds. `confirmed` are the purposes whose own
    confirmation was ticked on the preview page (an artist's change); a grant
    that needs one and has none is refused before anything is queued.
    """
    if bulk_change.status == Status.STALE:
        raise PreviewOutdated(list(bulk_change.drift))
    if bulk_change.status != Status.DRAFT:
        raise LabelError(gettext("This change was already confirmed."))
    if bulk_change.created_by_id != actor.pk:
        raise LabelError(gettext("Only the manager who previewed a change can confirm it."))
    confirmed_purposes = _confirmed_for(bulk_change, confirmed)
    drift = find_drift(bulk_change=bulk_change, actor=actor)
    if drift:
        BulkChange.objects.filter(pk=bulk_change.pk, status=Status.DRAFT).update(status=Status.STALE, drift=drift)
        raise PreviewOutdated(drift)
    queued = bulk_change.will_change > settings.LABELS_BULK_SYNC_MAX_CELLS
    with transaction.atomic():
        updated = BulkChange.objects.filter(pk=bulk_change.pk, status=Status.DRAFT).update(
            status=Status.QUEUED, queued_at=timezone.now(), confirmed_purposes=confirmed_purposes
        )
        if not updated:
            raise LabelError(gettext("This change was already confirmed."))
        if queued:
            enqueue_apply(bulk_change.pk)
    if queued:
        return True
    apply_bulk_change(bulk_change.pk)
    return False


def enqueue_apply(bulk_change_id: int) -> None:
    """Hand the change to Celery once the caller's transaction commits.

    A broker outage is logged, never raised: the change is committed as
    queued, and the sweep enqueues it again.
    """

    def send() -> None:
        # By name: labels.tasks imports this module.
        enqueue(task_named("labels.apply_bulk_change"), bulk_change_id)

    transaction.on_commit(send)


# --- Apply --------------------------------------------------------------------------------------------


def _lease_end() -> datetime.datetime:
    return timezone.now() + datetime.timedelta(seconds=settings.LABELS_BULK_LEASE_SECONDS)


def _claim(bulk_change_id: int, request_meta: RequestMeta | None) -> _Claim | None:
    token = uuid.uuid4()
    now = timezone.now()
    claimed = BulkChange.objects.filter(pk=bulk_change_id, status=Status.QUEUED).update(
        status=Status.RUNNING,
        claim_token=token,
        lease_expires_at=_lease_end(),
        started_at=Coalesce("started_at", Value(now, output_field=DateTimeField())),
    )
    if not claimed:
        return None
    bulk = BulkChange.objects.select_related("label", "artist", "created_by").get(pk=bulk_change_id)
    deadline = time.monotonic() + settings.LABELS_BULK_TASK_BUDGET_SECONDS
    return _Claim(bulk=bulk, token=token, actor=bulk.created_by, request_meta=request_meta, deadline=deadline)


def _held(claim: _Claim) -> QuerySet[BulkChange]:
    return BulkChange.objects.filter(pk=claim.bulk.pk, claim_token=claim.token, status=Status.RUNNING)


def _finish(claim: _Claim, status: str, error: str = "") -> None:
    fields = {"status": status, "finished_at": timezone.now(), "claim_token": None, "lease_expires_at": None}
    if status == Status.DONE:
        # Cells found already so on the way are not counted; the bar ends full all the same.
        fields["progress_done"] = F("progress_total")
    else:
        fields["error"] = error
    _held(claim).update(**fields)


def _release(claim: _Claim, *, lost: bool) -> None:
    """Give the change back as queued (after a time budget, or a time limit) and enqueue the rest."""
    with transaction.atomic():
        fields: dict[str, Any] = {
            "status": Status.QUEUED,
            "claim_token": None,
            "lease_expires_at": None,
            "queued_at": timezone.now(),
        }
        if lost:
            fields["lost_count"] = F("lost_count") + 1
        if _held(claim).update(**fields):
            enqueue_apply(claim.bulk.pk)


def _requeue_or_fail(claim: _Claim) -> None:
    bulk = BulkChange.objects.get(pk=claim.bulk.pk)
    if bulk.lost_count + 1 >= settings.LABELS_BULK_MAX_LOST:
        _held(claim).update(lost_count=F("lost_count") + 1)
        _finish(claim, Status.FAILED, _lost_message(bulk.lost_count + 1, bulk.applied, bulk.progress_total))
    else:
        _release(claim, lost=True)


def apply_bulk_change(bulk_change_id: int, *, request_meta: RequestMeta | None = None) -> BulkChange | None:
    """Apply a confirmed change from its items, artist chunk by artist chunk.

    Only a queued change is claimed, so a redelivered task does nothing. Each
    chunk's consent writes and the change's progress commit together, and
    only while this claim holds; work beyond the time budget goes to a fresh
    task.
    """
    claim = _claim(bulk_change_id, request_meta)
    if claim is None:
        return None
    try:
        if claim.actor is None or not claim.actor.is_active:
            # Without this, a deleted manager would become actor None: the system,
            # which may withdraw anything.
            raise LabelError(gettext("The manager who confirmed this change no longer has an active account."))
        finished = _apply_items(claim)
    except _ClaimLost:
        logger.warning("bulk change %s was taken over by another worker", bulk_change_id)
    except SoftTimeLimitExceeded:
        # The chunk in flight rolled back; count it as a lost worker, so a chunk
        # that can never finish in time ends failed instead of looping.
        _requeue_or_fail(claim)
    except (ConsentError, LabelError) as exc:
        _finish(claim, Status.FAILED, exc.message)
    except Exception as exc:
        _finish(claim, Status.FAILED, f"Unexpected error: {type(exc).__name__}")
        raise
    else:
        if finished:
            _finish(claim, Status.DONE)
    return BulkChange.objects.get(pk=bulk_change_id)


def _pending_artists(bulk: BulkChange) -> list[ArtistCells]:
    rows = (
        BulkChangeItem.objects.filter(bulk_change=bulk, action=Action.CHANGE, artist_id__gt=bulk.resume_after_artist)
        .order_by()
        .values_list("artist_id")
        .annotate(tracks=Count("track_id", distinct=True), cells=Count("*"))
        .order_by("artist_id")
    )
    return [ArtistCells(artist_id=a, tracks=t, cells=c) for a, t, c in rows]


def _chunks_of_artists(artists: Iterable[ArtistCells], limit: int) -> list[list[ArtistCells]]:
    """Whole artists per chunk, so each artist is in exactly one consent call (one email)."""
    chunks: list[list[ArtistCells]] = []
    current: list[ArtistCells] = []
    size = 0
    for artist in artists:
        if current and size + artist.tracks > limit:
            chunks.append(current)
            current, size = [], 0
        current.append(artist)
        size += artist.tracks
    if current:
        chunks.append(current)
    return chunks


def _apply_items(claim: _Claim) -> bool:
    """True when every chunk is done; False when the rest was handed to a fresh task."""
    chunks = _chunks_of_artists(_pending_artists(claim.bulk), settings.LABELS_BULK_CHUNK_TRACKS)
    for i, chunk in enumerate(chunks):
        _apply_chunk(claim, chunk)
        if i + 1 < len(chunks) and time.monotonic() > claim.deadline:
            _release(claim, lost=False)
            return False
    return True


def _chunk_asks(claim: _Claim, owners: list[int]) -> list[tuple[int, str, bool, int]]:
    """What the chunk asks, per (artist, purpose slug, new state): its number of cells. Deleted tracks drop out.

    One aggregate, so the refusals are decided per artist without reading every cell.
    """
    return list(
        _chunk_items(claim, owners)
        .filter(Exists(Track.objects.filter(pk=OuterRef("track_id"))))
        .order_by()
        .values_list("artist_id", "purpose__slug", "new_granted")
        .annotate(n=Count("*"))
    )


def _chunk_items(claim: _Claim, owners: Collection[int]) -> QuerySet[BulkChangeItem]:
    return BulkChangeItem.objects.filter(bulk_change=claim.bulk, action=Action.CHANGE, artist_id__in=pk_in(owners))


def _write_chunk(claim: _Claim, allowed: list[int]) -> consent_services.ChangeResult:
    """The chunk's consent writes for the artists whose delegation allows them, in one consent call."""
    bulk = claim.bulk
    arguments = {
        "actor": claim.actor,
        "source": AuditEvent.Source.CSV if bulk.kind == BulkChange.Kind.CSV else AuditEvent.Source.BULK,
        "request_meta": claim.request_meta,
        "confirmed_purposes": bulk.confirmed_purposes,
        "bulk_change": _write_ref(bulk),
        "unchanged_since": bulk.previewed_at or bulk.created_at,
    }
    items = _chunk_items(claim, allowed).order_by()
    if bulk_write.supported():
        return bulk_write.write_cells(
            owner_ids=allowed, cells=items.values_list("track_id", "purpose_id", "new_granted"), **arguments
        )
    states: dict[uuid.UUID, dict[str, bool]] = defaultdict(dict)
    for track_uuid, slug, granted in items.values_list("track__uuid", "purpose__slug", "new_granted"):
        states[track_uuid][slug] = granted
    return consent_services.set_track_consents(
        tracks=Track.objects.filter(pk__in=items.values("track_id")), states=states, **arguments
    )


def _apply_chunk(claim: _Claim, chunk: list[ArtistCells]) -> None:
    bulk, actor = claim.bulk, claim.actor
    owners = [a.artist_id for a in chunk]
    total = sum(a.cells for a in chunk)
    asks = _chunk_asks(claim, owners)
    delegations = delegated_scopes(actor, owners, label_id=bulk.label_id)
    refused_owners = {
        artist_id
        for artist_id, slug, granted, _ in asks
        if not can_change_consent(
            actor, owner_id=artist_id, granted=granted, purpose_slug=slug, delegations=delegations
        )
    }
    outcome = ChunkOutcome()
    _note_refusals(
        outcome,
        asks,
        refused_owners,
        total,
        gettext_noop("the delegation no longer allows it; nothing changed for them"),
    )
    allowed = [o for o in owners if o not in refused_owners]
    try:
        with transaction.atomic():
            if any(artist_id not in refused_owners for artist_id, *_ in asks):
                result = _write_chunk(claim, allowed)
                outcome.applied, outcome.notified = result.event_count, len(result.chain_heads)
                if result.skipped:
                    outcome.detail.append(
                        _detail(
                            "",
                            result.skipped,
                            gettext_noop("changed by the artist since the preview; left as they set it"),
                        )
                    )
            _commit_chunk(claim, chunk, total, outcome)
    except ConsentPermissionDenied:
        # A delegation narrowed between our check and the service's locked one:
        # the service wrote nothing for the chunk.
        raced = ChunkOutcome()
        _note_refusals(
            raced, asks, set(owners), total, gettext_noop("the artist changed the delegation while this was applied")
        )
        with transaction.atomic():
            _commit_chunk(claim, chunk, total, raced)


def _detail(artist: str, n: int, reason: str) -> dict:
    return {"artist": artist, "purpose": "", "tracks": n, "reason": reason}


def _note_refusals(
    outcome: ChunkOutcome, asks: list[tuple[int, str, bool, int]], refused_owners: set[int], total: int, reason: str
) -> None:
    """Record refused artists by name, and cells whose track no longer exists."""
    per_owner: dict[int, int] = defaultdict(int)
    for artist_id, _, _, n in asks:
        if artist_id in refused_owners:
            per_owner[artist_id] += n
    if per_owner:
        names = dict(User.objects.filter(pk__in=list(per_owner)).values_list("pk", "display_name"))
        outcome.detail += [_detail(names.get(a, ""), n, reason) for a, n in per_owner.items()]
        outcome.refused += sum(per_owner.values())
    gone = total - sum(n for *_, n in asks)
    if gone:
        outcome.detail.append(_detail("", gone, gettext_noop("the track was deleted")))
        outcome.refused += gone


def _commit_chunk(claim: _Claim, chunk: list[ArtistCells], total: int, outcome: ChunkOutcome) -> None:
    """Progress and the resume point, in the chunk's transaction, only while the claim holds."""
    bulk = claim.bulk
    bulk.applied += outcome.applied
    bulk.artists_notified += outcome.notified
    bulk.refused += outcome.refused
    bulk.progress_done += total
    bulk.refused_detail = [*bulk.refused_detail, *outcome.detail]
    bulk.resume_after_artist = chunk[-1].artist_id
    held = _held(claim).update(
        applied=bulk.applied,
        artists_notified=bulk.artists_notified,
        refused=bulk.refused,
        progress_done=bulk.progress_done,
        refused_detail=bulk.refused_detail,
        resume_after_artist=bulk.resume_after_artist,
        lease_expires_at=_lease_end(),
    )
    if not held:
        raise _ClaimLost()


# --- Undo -----------------------------------------------------------------------------------------------


def _insert_undo_items(undo: BulkChange, original: BulkChange) -> None:
    """The reverse of every cell `original` wrote and nobody changed since: one INSERT ... SELECT."""
    events = _table(AuditEvent)
    sql = f"""
        INSERT INTO {_table(BulkChangeItem)}
            (bulk_change_id, artist_id, track_id, purpose_id, shown_granted, new_granted, action, isrc_key)
        SELECT %s, e.artist_id, e.track_id, e.purpose_id, e.new_value = %s, e.old_value = %s, %s, ''
        FROM {events} e
        WHERE e.bulk_change_id = %s AND e.kind = %s AND e.track_id IS NOT NULL AND e.purpose_id IS NOT NULL
          AND NOT EXISTS (
              SELECT 1 FROM {events} later
              WHERE later.track_id = e.track_id AND later.purpose_id = e.purpose_id
                AND later.kind = %s AND later.id > e.id
          )
    """  # noqa: S608
    granted = consent_services.GRANTED
    changed = AuditEvent.Kind.CONSENT_CHANGED
    params: list[Any] = [undo.pk, granted, granted, Action.CHANGE, original.pk, changed, changed]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def undo_window_minutes() -> int:
    return settings.LABELS_UNDO_WINDOW_SECONDS // 60


def undo_available(bulk_change: BulkChange) -> bool:
    """Whether `undo_bulk_change` would take this change now (what the pages offer)."""
    return (
        bulk_change.status in (Status.DONE, Status.FAILED)
        and bulk_change.kind != BulkChange.Kind.UNDO
        and bulk_change.applied > 0
        and bulk_change.finished_at is not None
        and (timezone.now() - bulk_change.finished_at).total_seconds() <= settings.LABELS_UNDO_WINDOW_SECONDS
        and not BulkChange.objects.filter(undo_of=bulk_change).exists()
    )


def undo_would_grant_needing_confirmation(bulk_change: BulkChange, purposes: Iterable[Purpose]) -> list[Purpose]:
    """The purposes whose own confirmation an undo of this change asks for: those the change withdrew."""
    if bulk_change.kind != BulkChange.Kind.EDIT:
        return []
    return [p for p in purposes if needs_own_confirmation(p) and bulk_change.changes.get(p.slug) is False]


def undo_bulk_change(*, actor: User, bulk_change: BulkChange, confirmed: Collection[str] = ()) -> BulkChange:
    """Apply the reverse of every cell the change wrote, as a new bulk change (audited like any other).

    A cell changed again since (by the artist or anyone) is left as it is now.
    """
    window = settings.LABELS_UNDO_WINDOW_SECONDS
    if bulk_change.kind == BulkChange.Kind.UNDO:
        raise LabelError(gettext("An undo cannot itself be undone; make a new change instead."))
    if bulk_change.status not in (Status.DONE, Status.FAILED) or bulk_change.finished_at is None:
        raise LabelError(gettext("Only a finished change can be undone."))
    if BulkChange.objects.filter(undo_of=bulk_change).exists():
        raise LabelError(gettext("This change was already undone."))
    if (timezone.now() - bulk_change.finished_at).total_seconds() > window:
        raise LabelError(
            ngettext(
                "The undo window (%(minutes)d minute) has passed.",
                "The undo window (%(minutes)d minutes) has passed.",
                window // 60,
            )
            % {"minutes": window // 60}
        )
    try:
        with transaction.atomic():
            undo = BulkChange.objects.create(
                label=bulk_change.label,
                artist=bulk_change.artist,
                created_by=actor,
                kind=BulkChange.Kind.UNDO,
                filter=bulk_change.filter,
                confirmed_purposes=list(confirmed),
                undo_of=bulk_change,
                previewed_at=timezone.now(),
            )
            _insert_undo_items(undo, bulk_change)
            items = BulkChangeItem.objects.filter(bulk_change=undo)
            regrants = items.filter(needing_confirmation("purpose__"), new_granted=True).exclude(
                purpose__slug__in=list(confirmed)
            )
            names = sorted(set(regrants.values_list("purpose__name", flat=True)))
            if names:
                raise LabelError(
                    gettext("This undo grants %(purposes)s again; tick the box to confirm that before undoing.")
                    % {"purposes": ", ".join(gettext(name) for name in names)}
                )
            touched = items.count()
            queued = touched > settings.LABELS_BULK_SYNC_MAX_CELLS
            BulkChange.objects.filter(pk=undo.pk).update(
                status=Status.QUEUED, queued_at=timezone.now(), will_change=touched, progress_total=touched
            )
            if queued:
                enqueue_apply(undo.pk)
    except IntegrityError:
        raise LabelError(gettext("This change was already undone.")) from None
    if not queued:
        apply_bulk_change(undo.pk)
    undo.refresh_from_db()
    return undo


# --- Sweep -------------------------------------------------------------------------------------------------


def _lost_message(lost: int, applied: int, total: int) -> str:
    return (
        f"The worker applying this change stopped {lost} times, so it was stopped. "
        f"{applied} of {total} changes were applied (each is in the artists' audit logs, and they were emailed); "
        "the rest were not made. Preview again to finish."
    )


def _resume_or_fail(pk: int, lost_count: int, applied: int, total: int, now: datetime.datetime) -> str:
    expired = Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)
    held = BulkChange.objects.filter(expired, pk=pk, status=Status.RUNNING, lost_count=lost_count)
    with transaction.atomic():
        if lost_count + 1 >= settings.LABELS_BULK_MAX_LOST:
            done = held.update(
                status=Status.FAILED,
                finished_at=now,
                claim_token=None,
                lease_expires_at=None,
                lost_count=lost_count + 1,
                error=_lost_message(lost_count + 1, applied, total),
            )
            return "failed" if done else ""
        if held.update(
            status=Status.QUEUED, claim_token=None, lease_expires_at=None, lost_count=lost_count + 1, queued_at=now
        ):
            enqueue_apply(pk)
            return "resumed"
    return ""


def sweep_bulk_changes(*, now: datetime.datetime | None = None) -> SweepResult:
    """Keep every confirmed change moving.

    A running change whose lease ran out lost its worker (killed, or cut off):
    it is queued again (its committed chunks stay done) or, after too many
    losses, failed with what was applied. A queued change nobody picked up
    (the broker lost the task) is enqueued again.
    """
    now = now or timezone.now()
    expired = Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)
    lost = list(
        BulkChange.objects.filter(expired, status=Status.RUNNING).values_list(
            "pk", "lost_count", "applied", "progress_total"
        )[:1000]
    )
    outcomes = [_resume_or_fail(pk, n, applied, total, now) for pk, n, applied, total in lost]
    grace = now - datetime.timedelta(seconds=settings.LABELS_BULK_SWEEP_GRACE_SECONDS)
    waiting = Q(queued_at__lt=grace) | Q(queued_at__isnull=True)
    requeued = 0
    for pk in BulkChange.objects.filter(waiting, status=Status.QUEUED).values_list("pk", flat=True)[:1000]:
        with transaction.atomic():
            if BulkChange.objects.filter(waiting, pk=pk, status=Status.QUEUED).update(queued_at=now):
                enqueue_apply(pk)
                requeued += 1
    return SweepResult(resumed=outcomes.count("resumed"), failed=outcomes.count("failed"), requeued=requeued)
