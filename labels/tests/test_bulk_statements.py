"""The bulk apply is set-based: the statements per chunk do not grow with the tracks in it (issue 15)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import service_missing
from consent import bulk_write
from consent.models import AuditActorData, AuditEvent, AuditSubjectData
from consent.selectors import iter_state_mismatches, verify_chains
from labels import bulk as bulk_changes
from labels.models import BulkChange
from notifications.models import Notification
from platformkit.request_meta import RequestMeta
from tracks.models import Track

GW_REC = {"recommendation": "grant_withdraw", "fraud_detection": "withdraw", "generative_training": "none"}
ARTISTS = 3


@pytest.fixture
def two_rosters(label_setup, make_user, make_tracks, set_state):
    """Two groups of three artists on one label: 2 tracks each, and 40 tracks each.

    In each, the first artist already granted recommendation on half their
    tracks, so the apply both inserts and updates consent rows.
    """
    label, manager, delegate = label_setup
    groups = {}
    for size in (2, 40):
        artists = [make_user(display_name=f"Size {size} artist {i}") for i in range(ARTISTS)]
        for artist in artists:
            make_tracks(size, owner=artist)
            delegate(artist, GW_REC)
        set_state(artists[0], list(Track.objects.filter(owner=artists[0])[: size // 2]), "fraud_detection", True)
        groups[size] = artists
    return label, manager, groups


def _queued(manager, label, artists, changes=None) -> BulkChange:
    bulk = bulk_changes.preview_bulk_edit(
        actor=manager,
        label=label,
        tracks=Track.objects.filter(owner__in=artists),
        changes=changes or {"recommendation": True, "fraud_detection": False},
        filter_params={},
        selection=None,
    )
    BulkChange.objects.filter(pk=bulk.pk).update(status=BulkChange.Status.QUEUED)
    return bulk


def _apply_counting(bulk: BulkChange, request_meta=None) -> int:
    with CaptureQueriesContext(connection) as queries:
        applied = bulk_changes.apply_bulk_change(bulk.pk, request_meta=request_meta)
    assert applied is not None
    assert applied.status == BulkChange.Status.DONE, applied.error
    return len(queries.captured_queries)


def test_the_statements_per_chunk_are_the_same_for_2_and_for_40_tracks_per_chunk(
    two_rosters, settings, django_capture_on_commit_callbacks
):
    if not bulk_write.supported():
        service_missing(
            "PostgreSQL: the set-based bulk writer runs only there (elsewhere the row-wise one); set DATABASE_URL"
        )
    # One artist per chunk: three chunks in each change.
    settings.LABELS_BULK_CHUNK_TRACKS = 1
    label, manager, groups = two_rosters
    counts = {}
    for size, artists in groups.items():
        bulk = _queued(manager, label, artists)
        with django_capture_on_commit_callbacks(execute=False):
            counts[size] = _apply_counting(bulk)
        bulk.refresh_from_db()
        # 2 purposes per track granted/withdrawn as asked: recommendation everywhere, fraud where it was granted.
        assert bulk.applied == ARTISTS * size + size // 2
        assert AuditEvent.objects.filter(bulk_change=bulk).count() == bulk.applied
        assert Notification.objects.filter(recipient__in=artists, kind="changed_on_behalf").count() == ARTISTS
    assert counts[2] == counts[40]

    # And per chunk: a change of one artist runs the same statements but for two chunks fewer.
    single = _queued(manager, label, groups[40][:1], {"recommendation": False, "fraud_detection": False})
    assert single.will_change == 40
    with django_capture_on_commit_callbacks(execute=False):
        one_chunk = _apply_counting(single)
    per_chunk = (counts[40] - one_chunk) / (ARTISTS - 1)
    assert per_chunk == int(per_chunk)
    # Outside the chunk's transaction: what the chunk asks per artist, the delegations. Inside (a savepoint,
    # and the writer's own): purposes, create and lock the chain heads (2), the cells with their tracks
    # locked and their consent, the delegations again under the lock, the policy in force, the consent
    # INSERT and UPDATE (both, always), the audit events, their titles, the heads, the artists, the outbox
    # rows, the progress, the two releases. Whatever the number of tracks.
    assert per_chunk == 20, counts
    assert verify_chains().ok
    assert list(iter_state_mismatches()) == []


def test_request_data_gets_its_own_erasable_part_per_event_and_the_chain_verifies(
    two_rosters, settings, django_capture_on_commit_callbacks
):
    label, manager, groups = two_rosters
    # Titles travel in a PostgreSQL array literal: quotes, backslashes, commas, braces and NULL stay as they are.
    awkward = ['He said "hi" \\ {x}, y', "NULL", "", " spaced ", "Ünï\ncödé"]
    for track, title in zip(Track.objects.filter(owner__in=groups[2]).order_by("pk"), awkward, strict=False):
        Track.objects.filter(pk=track.pk).update(title=title)
    bulk = _queued(manager, label, groups[2])
    meta = RequestMeta(ip="192.0.2.7", user_agent='Agent "Q" \\ 1.0', request_id="req-15")
    with django_capture_on_commit_callbacks(execute=False):
        _apply_counting(bulk, request_meta=meta)
    events = AuditEvent.objects.filter(bulk_change=bulk)
    assert events.count() == ARTISTS * 2 + 1
    assert set(events.values_list("request_id", flat=True)) == {"req-15"}
    actor_parts = AuditActorData.objects.filter(event__bulk_change=bulk)
    assert actor_parts.count() == events.count()
    assert len(set(actor_parts.values_list("key", flat=True))) == events.count()
    assert set(actor_parts.values_list("ip", "user_agent")) == {(meta.ip, meta.user_agent)}
    titles = dict(AuditSubjectData.objects.filter(event__bulk_change=bulk).values_list("event_id", "track_title"))
    tracks = Track.objects.filter(owner__in=groups[2])
    # A blank title has nothing personal to keep: no row, and an empty digest.
    assert {titles.get(e.hash, "") for e in events} == set(tracks.values_list("title", flat=True))
    assert set(awkward) - {""} <= set(titles.values())
    blank = tracks.get(title="")
    assert set(events.filter(track_id=blank.pk).values_list("subject_data_digest", flat=True)) == {""}
    assert verify_chains().ok


def test_a_failed_consent_write_while_the_chain_is_sealed_writes_nothing_and_leaves_no_thread(
    two_rosters, monkeypatch, django_capture_on_commit_callbacks
):
    """The chain is sealed on a second thread while the consent rows are written; a failure there unwinds it all."""
    import threading

    if not bulk_write.supported():
        service_missing("PostgreSQL: the set-based bulk writer runs only there; set DATABASE_URL")
    label, manager, groups = two_rosters
    bulk = _queued(manager, label, groups[2])
    heads_before = list(AuditEvent.objects.values_list("artist_id", "seq").order_by("artist_id", "-seq"))

    def failing_write(*args, **kwargs):
        raise RuntimeError("the consent rows could not be written")

    monkeypatch.setattr(bulk_write, "_write_consent", failing_write)
    with django_capture_on_commit_callbacks(execute=False), pytest.raises(RuntimeError, match="could not be written"):
        bulk_changes.apply_bulk_change(bulk.pk)
    bulk.refresh_from_db()
    assert bulk.applied == 0 and bulk.status != BulkChange.Status.DONE
    assert not AuditEvent.objects.filter(bulk_change=bulk).exists()
    assert list(AuditEvent.objects.values_list("artist_id", "seq").order_by("artist_id", "-seq")) == heads_before
    assert not [t for t in threading.enumerate() if t.name.startswith("consent-seal")]
    assert verify_chains().ok
    assert list(iter_state_mismatches()) == []


def test_the_sealer_thread_reads_nothing_from_the_database(
    two_rosters, monkeypatch, django_capture_on_commit_callbacks
):
    """Its connection would be another transaction's: what it works on must all be read before it starts."""
    if not bulk_write.supported():
        service_missing("PostgreSQL: the set-based bulk writer runs only there; set DATABASE_URL")
    from django.db import connections

    label, manager, groups = two_rosters
    bulk = _queued(manager, label, groups[2] + groups[40])
    seal_and_word = bulk_write._seal_and_word
    queries_in_thread: list[int] = []

    def watched(*args, **kwargs):
        # The thread's own connection object; CaptureQueriesContext counts whatever it would run (and opens
        # it, so it is closed again: a connection left open would outlive the test database).
        try:
            with CaptureQueriesContext(connections["default"]) as captured:
                result = seal_and_word(*args, **kwargs)
        finally:
            connections["default"].close()
        queries_in_thread.append(len(captured.captured_queries))
        return result

    monkeypatch.setattr(bulk_write, "_seal_and_word", watched)
    with django_capture_on_commit_callbacks(execute=False):
        _apply_counting(bulk)
    assert queries_in_thread and set(queries_in_thread) == {0}
    bulk.refresh_from_db()
    notices = Notification.objects.filter(kind="changed_on_behalf", recipient__in=groups[2] + groups[40])
    assert notices.count() == 2 * ARTISTS
    assert {n.context["label_name"] for n in notices} == {label.name}
    assert verify_chains().ok
