"""A large bulk change applied by a real Celery worker process, chunk by chunk."""

from __future__ import annotations

import pytest

from accounts.models import Delegation
from consent.models import AuditEvent, BulkChange
from labels import bulk as bulk_changes
from labels import services
from notifications.models import Notification
from tests.utils import wait_until
from tracks.models import Track

SCOPES = {"recommendation": "grant_withdraw", "fraud_detection": "withdraw", "generative_training": "none"}


@pytest.mark.real_worker
@pytest.mark.django_db(transaction=True)
def test_a_large_bulk_change_runs_in_the_worker_with_progress_and_one_email_per_artist(
    start_celery_worker, settings, make_user, make_tracks
):
    settings.LABELS_BULK_SYNC_MAX_CELLS = 100
    manager = make_user(display_name="Mia Manager")
    label = services.create_label(owner=manager, name="Worker Records")
    artists = [make_user(display_name=f"W{i}") for i in range(8)]
    for artist in artists:
        make_tracks(250, owner=artist)
        Delegation.objects.create(artist=artist, label=label, status=Delegation.Status.ACTIVE, scopes=SCOPES)
    # Small chunks in the worker, so progress moves in several committed steps.
    worker = start_celery_worker(LABELS_BULK_CHUNK_TRACKS="500")

    bulk = bulk_changes.preview_bulk_edit(
        actor=manager,
        label=label,
        tracks=Track.objects.all(),
        changes={"recommendation": True},
        filter_params={},
        selection=None,
    )
    assert bulk.will_change == 2000
    assert bulk_changes.confirm_bulk_change(actor=manager, bulk_change=bulk) is True

    def finished():
        bulk.refresh_from_db()
        return bulk.finished

    wait_until(finished, timeout=60, message="the bulk change to finish in the worker")
    assert bulk.status == BulkChange.Status.DONE, bulk.error
    assert (bulk.applied, bulk.progress_done, bulk.progress_total) == (2000, 2000, 2000)
    assert AuditEvent.objects.filter(bulk_change=bulk).count() == 2000
    # Four chunks of two artists each: every artist was in exactly one consent call.
    assert len(set(AuditEvent.objects.filter(bulk_change=bulk).values_list("receipt_id", flat=True))) == 4
    for artist in artists:
        assert Notification.objects.filter(recipient=artist, kind="changed_on_behalf").count() == 1
    assert "labels.apply_bulk_change" in worker.log()
