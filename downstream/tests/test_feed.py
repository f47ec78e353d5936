"""The change feed: every change, in commit order, never skipped, whatever order writers commit in."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from conftest import service_missing
from consent import services as consent_services
from tests.utils import wait_until
from tracks.models import Track

pytestmark = pytest.mark.django_db(transaction=True)


def read_all(api, purpose: str, after: str | None = None, limit: int = 2) -> tuple[list[dict], str]:
    """Page through the feed from `after` until it has nothing more; returns the changes and the last cursor."""
    seen: list[dict] = []
    params = {"purpose": purpose, "limit": limit}
    while True:
        if after:
            params["after"] = after
        response = api.get("/consent/changes", **params)
        assert response.status_code == 200, response.content
        body = response.json()
        seen.extend(body["changes"])
        after = body["next"]
        if not body["has_more"]:
            return seen, after


def test_grants_withdrawals_and_deletions_are_in_the_feed_in_order_and_resumable(
    artist, make_track, api, set_consent, delete_track
):
    first, second = make_track(owner=artist), make_track(owner=artist)
    set_consent(first, recommendation=True)
    set_consent(second, recommendation=True)
    set_consent(first, fraud_detection=True)  # another purpose: not in this feed
    set_consent(first, recommendation=False)
    delete_track(second)

    changes = wait_until(lambda: len(read_all(api, "recommendation")[0]) == 5 and read_all(api, "recommendation")[0])

    # A deleted track's grants are withdrawn first, so a reader sees the withdrawal, then the deletion.
    assert [(c["track"], c["change"], c["allowed"]) for c in changes] == [
        (str(first.uuid), "granted", True),
        (str(second.uuid), "granted", True),
        (str(first.uuid), "withdrawn", False),
        (str(second.uuid), "withdrawn", False),
        (str(second.uuid), "deleted", False),
    ]
    # Resuming from any cursor gives exactly what followed it.
    for i, change in enumerate(changes):
        rest, _ = read_all(api, "recommendation", after=change["cursor"])
        assert rest == changes[i + 1 :]


@pytest.fixture
def _postgresql_only():
    if connection.vendor != "postgresql":
        service_missing(
            "Concurrent writers need PostgreSQL; on SQLite writes are serialised (id order is commit order)."
        )


class HeldWriter(threading.Thread):
    """Writes a consent change in its own transaction, then holds it open until told to commit."""

    def __init__(self, work, *, before_work=None):
        super().__init__(daemon=True)
        self.work, self.before_work = work, before_work
        self.written, self.commit, self.done = threading.Event(), threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self.xid: int | None = None
        self.pid: int | None = None

    def run(self):
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    self.pid = cursor.fetchone()[0]
                    if self.before_work:
                        # Take a transaction id now, before any lock (as a writer with an earlier write would).
                        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
                        self.xid = cursor.fetchone()[0]
                        self.before_work.wait(timeout=30)
                self.work()
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_current_xact_id()::text::bigint")
                    self.xid = cursor.fetchone()[0]
                self.written.set()
                assert self.commit.wait(timeout=60), "never told to commit"
        except BaseException as error:
            self.error = error
            self.written.set()
        finally:
            connections.close_all()
            self.done.set()


def _grant(track_id: int, **states):
    track = Track.objects.get(pk=track_id)
    consent_services.change_consent(
        actor=track.owner,
        tracks=Track.objects.filter(pk=track_id),
        changes=states,
        source="web",
        confirmed_purposes=list(states),
    )


def test_writers_committing_in_reverse_order_never_make_the_feed_skip_a_change(
    _postgresql_only, make_user, make_track, api
):
    tracks = [make_track(owner=make_user()) for _ in range(3)]
    _, cursor = read_all(api, "recommendation")
    writers = [HeldWriter(lambda t=t: _grant(t.pk, recommendation=True)) for t in tracks]
    # Insert in order 0, 1, 2 (ids ascending), each transaction held open ...
    for writer in writers:
        writer.start()
        assert writer.written.wait(timeout=30)
        assert writer.error is None, writer.error
    collected: list[dict] = []
    # ... and commit in reverse, reading the feed from the last cursor after each commit.
    for writer in reversed(writers):
        writer.commit.set()
        assert writer.done.wait(timeout=30)
        assert writer.error is None, writer.error
        page, cursor = read_all(api, "recommendation", after=cursor)
        collected.extend(page)
        if writer is not writers[0]:
            # Writer 0 (the oldest transaction) is still open: nothing may be handed out past it.
            assert page == []

    def everything_arrived():
        nonlocal cursor
        page, cursor = read_all(api, "recommendation", after=cursor)
        collected.extend(page)
        return len(collected) == 3

    wait_until(everything_arrived, timeout=60, message="the three committed changes to reach the feed")
    assert sorted(c["track"] for c in collected) == sorted(str(t.uuid) for t in tracks)
    assert len({c["cursor"] for c in collected}) == 3


def test_a_change_that_waited_for_another_follows_it_even_with_an_older_transaction_id(
    _postgresql_only, artist, make_track, api
):
    """T2 takes its transaction id first, then waits for T1's lock on the artist's chain.

    Its withdrawal must come after T1's grant in the feed, or a consumer ends up believing the grant.
    """
    track = make_track(owner=artist)
    go = threading.Event()
    second = HeldWriter(lambda: _grant(track.pk, recommendation=False), before_work=go)
    second.start()
    wait_until(lambda: second.xid is not None, message="the second writer to take its transaction id")
    first = HeldWriter(lambda: _grant(track.pk, recommendation=True))
    first.start()
    assert first.written.wait(timeout=30) and first.error is None, first.error
    go.set()

    def second_is_waiting_for_the_lock():
        with connection.cursor() as cursor:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [second.pid])
            row = cursor.fetchone()
        return row and row[0] == "Lock"

    wait_until(second_is_waiting_for_the_lock, message="the withdrawal to wait for the grant's lock")
    first.commit.set()
    assert second.written.wait(timeout=30) and second.error is None, second.error
    second.commit.set()
    assert first.done.wait(timeout=30) and second.done.wait(timeout=30)
    assert second.xid < first.xid  # the withdrawal's transaction is the older one

    changes = wait_until(lambda: (c := read_all(api, "recommendation")[0]) and len(c) == 2 and c)
    assert [c["change"] for c in changes] == ["granted", "withdrawn"]
