from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from conftest import service_missing
from consent import selectors, services
from consent.models import AuditChainHead, AuditEvent, Consent
from tracks.models import Track

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        service_missing("PostgreSQL: row locks (SELECT ... FOR UPDATE) exist only there; set DATABASE_URL")


def run_concurrently(*jobs):
    """Start every job at the same instant, each on its own connection; re-raise any failure."""
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def runner(job):
        try:
            barrier.wait(timeout=10)
            job()
        except BaseException as error:  # reported to the test thread below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=runner, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a save never finished (deadlock?)"
    if errors:
        raise errors[0]


def replayed_state(artist) -> dict[tuple[int, str], bool]:
    state = {}
    for track_id, slug, new in (
        AuditEvent.objects.filter(artist=artist, kind="consent_changed")
        .order_by("seq")
        .values_list("track_id", "purpose_slug", "new_value")
    ):
        state[(track_id, slug)] = new == "granted"
    return state


def current_state(artist) -> dict[tuple[int, str], bool]:
    return {
        (track_id, slug): granted
        for track_id, slug, granted in Consent.objects.filter(track__owner=artist).values_list(
            "track_id", "purpose__slug", "granted"
        )
    }


def test_concurrent_saves_of_different_purposes_lose_no_update_and_never_fork(artist, make_tracks):
    make_tracks(50, owner=artist)
    tracks = Track.objects.filter(owner=artist)

    def save(slug):
        return lambda: services.change_consent(actor=artist, tracks=tracks, changes={slug: True}, source="web")

    for _ in range(3):
        run_concurrently(save("recommendation"), save("fraud_detection"))

    assert Consent.objects.filter(track__owner=artist, granted=True).count() == 100
    assert AuditEvent.objects.filter(artist=artist).count() == 100
    seqs = list(AuditEvent.objects.filter(artist=artist).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 101))
    assert AuditChainHead.objects.get(artist=artist).seq == 100
    assert selectors.verify_chains().ok


def test_concurrent_opposite_saves_leave_state_equal_to_the_log(artist, make_tracks):
    make_tracks(40, owner=artist)
    tracks = Track.objects.filter(owner=artist)

    def save(granted):
        return lambda: services.change_consent(
            actor=artist, tracks=tracks, changes={"recommendation": granted}, source="web"
        )

    for _ in range(4):
        run_concurrently(save(True), save(False), save(True))

    assert current_state(artist) == replayed_state(artist)
    assert selectors.verify_chains().ok


def test_concurrent_saves_by_two_artists_keep_separate_chains(artist, other_artist, make_tracks):
    make_tracks(30, owner=artist)
    make_tracks(30, owner=other_artist)

    def save(user):
        return lambda: services.change_consent(
            actor=user, tracks=Track.objects.filter(owner=user), changes={"recommendation": True}, source="web"
        )

    run_concurrently(save(artist), save(other_artist))
    report = selectors.verify_chains()
    assert report.ok and report.chains == 2 and report.events == 60
