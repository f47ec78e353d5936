"""A bulk change never stays running forever: claim, lease, sweep, and every enqueue on commit."""

from __future__ import annotations

import datetime

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from consent.models import AuditEvent
from creatorportal.celery import app as celery_app
from labels import bulk as bulk_changes
from labels.models import BulkChange
from labels.tests.conftest import granted, preview
from notifications.models import Notification
from tracks.models import Track


@pytest.fixture
def roster(make_roster):
    """Three artists with five tracks each; one artist per chunk."""
    return make_roster("Lease")


def _preview(manager, label, changes=None) -> BulkChange:
    return preview(manager, label, changes or {"recommendation": True})


def _expire_lease(bulk: BulkChange, **extra) -> None:
    """What a worker SIGKILLed while holding the change leaves behind, once its lease has run out."""
    past = timezone.now() - datetime.timedelta(seconds=1)
    BulkChange.objects.filter(pk=bulk.pk).update(status=BulkChange.Status.RUNNING, lease_expires_at=past, **extra)


def test_every_task_time_limit_is_below_the_broker_visibility_timeout():
    visibility = django_settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    conf = celery_app.conf
    for name, task in celery_app.tasks.items():
        if name.startswith("celery."):
            continue
        soft = task.soft_time_limit or conf.task_soft_time_limit
        hard = task.time_limit or conf.task_time_limit
        assert soft and hard, f"{name} has no time limit"
        assert soft < hard < visibility, f"{name}: soft {soft}s, hard {hard}s, visibility timeout {visibility}s"
    # One apply task stops taking new chunks well before its soft limit.
    assert conf.task_soft_time_limit / 2 > django_settings.LABELS_BULK_TASK_BUDGET_SECONDS
    assert "labels.apply_bulk_change" in celery_app.tasks and "labels.sweep_bulk_changes" in celery_app.tasks


def test_the_sweep_runs_on_the_beat_schedule():
    tasks = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert "labels.sweep_bulk_changes" in tasks


def test_undo_is_enqueued_only_when_its_transaction_commits(roster, settings, django_capture_on_commit_callbacks):
    label, manager, _ = roster
    bulk = _preview(manager, label)
    bulk_changes.confirm_bulk_change(actor=manager, bulk_change=bulk)
    bulk.refresh_from_db()
    settings.LABELS_BULK_SYNC_MAX_CELLS = 1  # the undo goes to Celery

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        undo = bulk_changes.undo_bulk_change(actor=manager, bulk_change=bulk)
        # Not sent yet (Celery is eager in unit tests: a send would have run it).
        assert BulkChange.objects.get(pk=undo.pk).status == BulkChange.Status.QUEUED
        assert all(granted(t, "recommendation") for t in Track.objects.all())

    assert len(callbacks) == 1
    callbacks[0]()
    undo.refresh_from_db()
    assert undo.status == BulkChange.Status.DONE and undo.applied == 15
    assert not any(granted(t, "recommendation") for t in Track.objects.all())


def test_a_change_whose_worker_was_lost_resumes_after_its_last_committed_artist(
    roster, settings, django_capture_on_commit_callbacks
):
    settings.LABELS_BULK_CHUNK_TRACKS = 5
    settings.LABELS_BULK_TASK_BUDGET_SECONDS = 0  # one chunk per task
    label, manager, artists = roster
    bulk = _preview(manager, label)
    with django_capture_on_commit_callbacks(execute=False):
        bulk_changes.confirm_bulk_change(actor=manager, bulk_change=bulk)
    bulk.refresh_from_db()
    assert (bulk.status, bulk.applied, bulk.resume_after_artist) == (BulkChange.Status.QUEUED, 5, artists[0].pk)
    # The next task claims it and is killed before committing anything.
    _expire_lease(bulk)
    with django_capture_on_commit_callbacks(execute=True):
        result = bulk_changes.sweep_bulk_changes()
    assert (result.resumed, result.failed) == (1, 0)

    bulk.refresh_from_db()
    assert bulk.status == BulkChange.Status.DONE and bulk.lost_count == 1
    assert bulk.applied == 15 and bulk.progress_done == 15
    events = AuditEvent.objects.filter(bulk_change=bulk)
    assert events.count() == 15 and events.values("track_id").distinct().count() == 15
    for artist in artists:
        assert Notification.objects.filter(recipient=artist, kind="changed_on_behalf").count() == 1


def test_a_change_lost_too_often_ends_failed_saying_what_was_applied(
    client, roster, settings, django_capture_on_commit_callbacks
):
    settings.LABELS_BULK_CHUNK_TRACKS = 5
    settings.LABELS_BULK_TASK_BUDGET_SECONDS = 0
    label, manager, _artists = roster
    bulk = _preview(manager, label)
    with django_capture_on_commit_callbacks(execute=False):
        bulk_changes.confirm_bulk_change(actor=manager, bulk_change=bulk)
    _expire_lease(bulk, lost_count=settings.LABELS_BULK_MAX_LOST - 1)

    with django_capture_on_commit_callbacks(execute=True) as enqueued:
        result = bulk_changes.sweep_bulk_changes()

    assert (result.resumed, result.failed) == (0, 1) and enqueued == []
    bulk.refresh_from_db()
    assert bulk.status == BulkChange.Status.FAILED and bulk.finished_at is not None
    assert "5 of 15 changes were applied" in bulk.error
    assert sum(granted(t, "recommendation") for t in Track.objects.all()) == 5
    client.force_login(manager)
    page = client.get(f"/labels/{label.slug}/bulk/{bulk.pk}/").content.decode()
    assert "5 of 15 changes were applied" in page and "Applied</dt><dd>5</dd>" in page
    # What was applied can be undone.
    assert f'action="/labels/{label.slug}/bulk/{bulk.pk}/undo/"' in page


def test_a_change_left_running_without_a_lease_is_swept_too(roster, django_capture_on_commit_callbacks):
    label, manager, _ = roster
    bulk = _preview(manager, label)
    # A change a killed worker left "running" before leases existed.
    BulkChange.objects.filter(pk=bulk.pk).update(status=BulkChange.Status.RUNNING, lease_expires_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        bulk_changes.sweep_bulk_changes()
    bulk.refresh_from_db()
    assert bulk.status == BulkChange.Status.DONE and bulk.applied == 15


def test_a_running_change_with_a_live_lease_is_left_alone(roster):
    label, manager, _ = roster
    bulk = _preview(manager, label)
    future = timezone.now() + datetime.timedelta(minutes=5)
    BulkChange.objects.filter(pk=bulk.pk).update(status=BulkChange.Status.RUNNING, lease_expires_at=future)
    assert bulk_changes.sweep_bulk_changes() == bulk_changes.SweepResult(resumed=0, failed=0, requeued=0)
    assert BulkChange.objects.get(pk=bulk.pk).status == BulkChange.Status.RUNNING


def test_a_queued_change_the_broker_lost_is_sent_again(roster, settings, django_capture_on_commit_callbacks):
    settings.LABELS_BULK_SYNC_MAX_CELLS = 1
    label, manager, _ = roster
    bulk = _preview(manager, label)
    with django_capture_on_commit_callbacks(execute=False):
        # The broker never gets the task: its on-commit send is lost.
        assert bulk_changes.confirm_bulk_change(actor=manager, bulk_change=bulk) is True
    assert bulk_changes.sweep_bulk_changes().requeued == 0  # still within the grace period
    stale = timezone.now() - datetime.timedelta(seconds=settings.LABELS_BULK_SWEEP_GRACE_SECONDS + 1)
    BulkChange.objects.filter(pk=bulk.pk).update(queued_at=stale)
    with django_capture_on_commit_callbacks(execute=True):
        assert bulk_changes.sweep_bulk_changes().requeued == 1
    bulk.refresh_from_db()
    assert bulk.status == BulkChange.Status.DONE and bulk.applied == 15


def test_a_worker_that_lost_its_claim_commits_nothing_more(roster, settings, django_capture_on_commit_callbacks):
    settings.LABELS_BULK_CHUNK_TRACKS = 5
    label, manager, artists = roster
    bulk = _preview(manager, label)
    BulkChange.objects.filter(pk=bulk.pk).update(status=BulkChange.Status.QUEUED)
    slow = bulk_changes._claim(bulk.pk, None)
    # The slow worker's lease runs out; the sweep gives the change to another worker.
    BulkChange.objects.filter(pk=bulk.pk).update(lease_expires_at=timezone.now() - datetime.timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=False):
        assert bulk_changes.sweep_bulk_changes().resumed == 1
    other = bulk_changes._claim(bulk.pk, None)
    assert other is not None and other.token != slow.token

    first_chunk = bulk_changes._chunks_of_artists(bulk_changes._pending_artists(slow.bulk), 5)[0]
    with pytest.raises(bulk_changes._ClaimLost):
        bulk_changes._apply_chunk(slow, first_chunk)

    assert not AuditEvent.objects.filter(bulk_change=bulk).exists()
    assert not Notification.objects.filter(recipient__in=artists, kind="changed_on_behalf").exists()
    assert BulkChange.objects.get(pk=bulk.pk).resume_after_artist == 0


def test_a_chunk_cut_off_by_the_time_limit_is_requeued_and_a_change_that_keeps_hitting_it_fails(
    roster, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from celery.exceptions import SoftTimeLimitExceeded

    from consent import bulk_write
    from consent import services as consent_services

    settings.LABELS_BULK_MAX_LOST = 2
    label, manager, _ = roster
    bulk = _preview(manager, label)
    BulkChange.objects.filter(pk=bulk.pk).update(status=BulkChange.Status.QUEUED)

    def out_of_time(**kwargs):
        raise SoftTimeLimitExceeded()  # what Celery raises in the task when its soft limit passes

    # Whichever consent writer the apply uses on this database (the set-based one on PostgreSQL).
    monkeypatch.setattr(consent_services, "set_track_consents", out_of_time)
    monkeypatch.setattr(bulk_write, "write_cells", out_of_time)
    with django_capture_on_commit_callbacks(execute=False):
        first = bulk_changes.apply_bulk_change(bulk.pk)
    assert (first.status, first.lost_count, first.claim_token) == (BulkChange.Status.QUEUED, 1, None)
    second = bulk_changes.apply_bulk_change(bulk.pk)
    assert second.status == BulkChange.Status.FAILED and second.lost_count == 2
    assert "stopped 2 times" in second.error and "0 of 15 changes were applied" in second.error
    assert not AuditEvent.objects.filter(bulk_change=bulk).exists()
