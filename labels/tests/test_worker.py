"""A large bulk change applied by a real Celery worker process, chunk by chunk."""

from __future__ import annotations

import pytest

from consent.models import AuditEvent
from labels import bulk as bulk_changes
from labels.models import BulkChange
from labels.tests.conftest import preview
from notifications.models import Notification
from tests.utils import wait_until
from tracks.models import Track


def wait_until_finished(bulk, *, timeout: float, message: str) -> None:
    def finished():
        bulk.refresh_from_db()
        return bulk.finished

    wait_until(finished, timeout=timeout, message=message)


@pytest.mark.real_worker
@pytest.mark.django_db(transaction=True)
def test_a_large_bulk_change_runs_in_the_worker_with_progress_and_one_email_per_artist(
    start_celery_worker, settings, make_direct_roster
):
    settings.LABELS_BULK_SYNC_MAX_CELLS = 100
    label, manager, artists = make_direct_roster("Worker Records", {f"W{i}": 250 for i in range(8)})
    # Small chunks in the worker, so progress moves in several committed steps.
    worker = start_celery_worker(LABELS_BULK_CHUNK_TRACKS="500")

    bulk = preview(manager, label, {"recommendation": True})
    assert bulk.will_change == 2000
    assert bulk_changes.confirm_bulk_change(actor=manager, bulk_change=bulk) is True

    wait_until_finished(bulk, timeout=60, message="the bulk change to finish in the worker")
    assert bulk.status == BulkChange.Status.DONE, bulk.error
    assert (bulk.applied, bulk.progress_done, bulk.progress_total) == (2000, 2000, 2000)
    assert AuditEvent.objects.filter(bulk_change=bulk).count() == 2000
    # Four chunks of two artists each: every artist was in exactly one consent call.
    assert len(set(AuditEvent.objects.filter(bulk_change=bulk).values_list("receipt_id", flat=True))) == 4
    for artist in artists:
        assert Notification.objects.filter(recipient=artist, kind="changed_on_behalf").count() == 1
    assert "labels.apply_bulk_change" in worker.log()


@pytest.mark.real_worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_change_has_it_resumed_by_the_sweep_each_track_changed_and_each_artist_emailed_once(
    start_celery_worker, smtp_server, settings, make_direct_roster
):
    from django.utils import timezone

    from consent.selectors import verify_chains
    from labels.bulk import sweep_bulk_changes
    from notifications.tasks import sweep_notifications

    settings.LABELS_BULK_SYNC_MAX_CELLS = 100
    label, manager, artists = make_direct_roster("Killed Worker Records", {f"K{i:02d}": 100 for i in range(40)})
    # One artist per chunk, so the change commits in 40 steps; a short lease so
    # the sweep may take the change over within the test.
    worker_env = {"LABELS_BULK_CHUNK_TRACKS": "100", "LABELS_BULK_LEASE_SECONDS": "10", "EMAIL_URL": smtp_server.url}
    first = start_celery_worker(**worker_env)

    bulk = preview(manager, label, {"recommendation": True})
    assert bulk_changes.confirm_bulk_change(actor=manager, bulk_change=bulk) is True

    def some_chunks_committed():
        bulk.refresh_from_db()
        return bulk.progress_done >= 300

    wait_until(some_chunks_committed, timeout=60, interval=0.02, message="a few chunks to commit")
    first.kill()
    bulk.refresh_from_db()
    assert bulk.status == BulkChange.Status.RUNNING, "the change finished before the worker could be killed"
    assert 0 < bulk.applied < 4000
    assert bulk.lease_expires_at > timezone.now()
    # While the lease runs, the sweep leaves the change to its (presumed live) worker.
    assert sweep_bulk_changes().resumed == 0

    start_celery_worker(**worker_env)
    wait_until(lambda: sweep_bulk_changes().resumed, timeout=30, message="the sweep to take the change over")

    wait_until_finished(bulk, timeout=120, message="the resumed change to finish")
    assert bulk.status == BulkChange.Status.DONE, bulk.error
    assert (bulk.applied, bulk.progress_done, bulk.lost_count) == (4000, 4000, 1)
    events = AuditEvent.objects.filter(bulk_change=bulk)
    # No track changed twice: one event per track, one receipt (chunk) per artist.
    assert events.count() == 4000
    assert events.values("track_id").distinct().count() == 4000
    assert len(set(events.values_list("receipt_id", flat=True))) == 40
    assert Track.objects.filter(consents__purpose__slug="recommendation", consents__granted=True).count() == 4000
    for artist in artists:
        assert Notification.objects.filter(recipient=artist, kind="changed_on_behalf").count() == 1

    def all_sent():
        # A batch of notices the killed worker had claimed waits for its lease to run out; then beat's
        # sweep (run here, as beat would once a minute) hands it to the live worker.
        sweep_notifications()
        return not Notification.objects.exclude(status=Notification.Status.SENT).exists()

    wait_until(all_sent, timeout=120, interval=1, message="every notice to be sent")
    for artist in artists:
        assert len(smtp_server.to(artist.email)) == 1, artist.email
    assert verify_chains().ok
