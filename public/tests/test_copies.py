"""The rebuild queue: claimed with a conditional update, retried with backoff, swept, repaired."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from public import copies, services
from public.models import DistributionCopy
from public.tests.factories import set_third_party

pytestmark = pytest.mark.django_db
Status = DistributionCopy.Status


def test_a_row_is_claimed_once(make_public_track, change_answer):
    track = make_public_track("good.mp3")
    change_answer(track, True, run_on_commit=False)

    token = services.claim(track.pk)
    assert token is not None
    assert services.claim(track.pk) is None  # a second task gets nothing
    assert services.build_one(track.pk).result == "skipped"
    assert DistributionCopy.objects.get(track=track).claim_token == token


def test_a_failing_build_is_retried_with_backoff_then_marked_failed(
    make_public_track, change_answer, monkeypatch, settings
):
    settings.PUBLIC_COPY_MAX_ATTEMPTS = 3
    track = make_public_track("good.mp3")

    def broken(*args, **kwargs):
        raise copies.provenance.SigningError("C2PA signing failed: test")

    monkeypatch.setattr(copies.provenance, "sign", broken)
    change_answer(track, True, run_on_commit=False)
    delays = []
    for attempt in range(1, 4):
        DistributionCopy.objects.filter(track=track).update(next_attempt_at=timezone.now())
        outcome = services.build_one(track.pk)
        row = DistributionCopy.objects.get(track=track)
        assert row.attempts == attempt and "C2PA signing failed" in row.last_error
        if attempt < 3:
            assert outcome.result == "retry" and row.status == Status.PENDING
            assert row.next_attempt_at > timezone.now()
            delays.append(outcome.retry_in)
        else:
            assert outcome.result == "failed" and row.status == Status.FAILED
    assert delays[1] > settings.PUBLIC_COPY_RETRY_BASE_SECONDS * 2**1 / 2 - 0.001
    # The failed copy still said "reserved": it is not served for a granted track.
    assert row.embedded_granted is False


def test_the_sweep_releases_an_abandoned_claim_and_enqueues_what_is_due(make_public_track, change_answer, settings):
    settings.PUBLIC_COPY_SWEEP_GRACE_SECONDS = 0
    track = make_public_track("good.mp3")
    change_answer(track, True, run_on_commit=False)
    services.claim(track.pk)  # a worker that then died
    DistributionCopy.objects.filter(track=track).update(claimed_at=timezone.now() - timedelta(hours=1))

    result = services.sweep()  # enqueues; tasks run in-process in these tests

    assert result["released"] == 1 and result["enqueued"] == 1
    row = DistributionCopy.objects.get(track=track)
    assert row.status == Status.CURRENT and row.embedded_granted is True


def test_the_sweep_repairs_a_copy_whose_answer_no_longer_matches(
    make_public_track, monkeypatch, client, django_capture_on_commit_callbacks
):
    from consent import hooks

    track = make_public_track("good.mp3", granted=True)
    monkeypatch.setattr(hooks, "_listeners", {})  # a change that reached no listener
    set_third_party(track.owner, track, False)
    row = DistributionCopy.objects.get(track=track)
    assert row.status == Status.CURRENT and row.embedded_granted is True
    # Even before the sweep, the request-time check refuses the stale copy.
    assert client.get(f"/t/{track.uuid}/audio")["ETag"].endswith('-reserved-original"')

    with django_capture_on_commit_callbacks(execute=True):
        result = services.sweep()

    assert result["repaired"] == 1
    row.refresh_from_db()
    assert row.status == Status.CURRENT and row.embedded_granted is False


def test_a_copy_built_for_an_answer_that_changed_meanwhile_is_discarded(
    make_public_track, change_answer, django_capture_on_commit_callbacks
):
    track = make_public_track("good.mp3")
    change_answer(track, True, run_on_commit=False)
    token = services.claim(track.pk)
    built = copies.build(track, services.signals_for(services.answer_for(track.pk)))
    assert built.embedded_granted is True
    change_answer(track, False, run_on_commit=False)  # while the worker was building

    with django_capture_on_commit_callbacks(execute=True):
        outcome = services.finish(track.pk, token, built)

    assert outcome.result == "stale"
    assert not default_storage.exists(built.name)
    row = DistributionCopy.objects.get(track=track)
    # Rebuilt for the answer in force once the stale result was thrown away.
    assert row.status == Status.CURRENT and row.embedded_granted is False and row.file != built.name


def test_the_consent_change_and_its_rebuild_request_commit_or_roll_back_together(make_public_track):
    track = make_public_track("good.mp3")
    before = DistributionCopy.objects.get(track=track)
    assert before.status == Status.CURRENT

    with pytest.raises(RuntimeError), transaction.atomic():
        set_third_party(track.owner, track, True)
        assert DistributionCopy.objects.get(track=track).status == Status.PENDING
        raise RuntimeError("the change fails after the hook ran")

    assert DistributionCopy.objects.get(track=track).status == Status.CURRENT
    assert not track.consents.filter(granted=True).exists()


def test_the_copy_file_goes_with_the_track(make_public_track, django_capture_on_commit_callbacks):
    from tracks.services import delete_track

    track = make_public_track("good.flac")
    name = DistributionCopy.objects.get(track=track).file
    assert default_storage.exists(name)

    with django_capture_on_commit_callbacks(execute=True):
        delete_track(track=track, actor=track.owner)

    assert not default_storage.exists(name)
    assert not DistributionCopy.objects.exists()


def test_a_rebuild_replaces_the_previous_copy_file(make_public_track, change_answer):
    track = make_public_track("good.wav")
    old = DistributionCopy.objects.get(track=track).file

    change_answer(track, True)

    new = DistributionCopy.objects.get(track=track).file
    assert new != old and default_storage.exists(new) and not default_storage.exists(old)


def test_making_a_track_public_again_retries_a_failed_copy(
    make_public_track, monkeypatch, settings, django_capture_on_commit_callbacks
):
    from public.services import set_track_public

    settings.PUBLIC_COPY_MAX_ATTEMPTS = 1

    def broken(*args, **kwargs):
        raise copies.provenance.SigningError("C2PA signing failed: test")

    with monkeypatch.context() as patched:
        patched.setattr(copies.provenance, "sign", broken)
        track = make_public_track("good.mp3")
    assert DistributionCopy.objects.get(track=track).status == Status.FAILED
    set_track_public(actor=track.owner, track=track, public=False)

    with django_capture_on_commit_callbacks(execute=True):
        set_track_public(actor=track.owner, track=track, public=True)

    row = DistributionCopy.objects.get(track=track)
    assert row.status == Status.CURRENT and row.embedded_granted is False and row.last_error == ""
