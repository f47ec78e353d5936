"""A change of the answer reaches every channel: headers and meta at once, the file after a rebuild by a real worker.

Between the change and the rebuild the audio is served without the stale
copy: the original, with the current headers.
"""

from __future__ import annotations

import hashlib

import pytest

from public.models import DistributionCopy
from public.tests import crawler
from public.tests.crawler import ABSENT, GRANTED, RESERVED
from tests.utils import wait_until


def _copy_says(track, granted: bool) -> bool:
    copy = DistributionCopy.objects.filter(track=track).first()
    return bool(copy and copy.status == DistributionCopy.Status.CURRENT and copy.embedded_granted is granted)


def _worker_env(settings) -> dict[str, str]:
    return {
        "PUBLIC_C2PA_CERT_CHAIN": settings.PUBLIC_C2PA_CERT_CHAIN,
        "PUBLIC_C2PA_PRIVATE_KEY": settings.PUBLIC_C2PA_PRIVATE_KEY,
        "SITE_URL": settings.SITE_URL,
    }


def _assert_reserved_everywhere_but_never_the_stale_copy(base: str, track) -> None:
    page = crawler.fetch(base, f"/t/{track.uuid}/")
    assert set(crawler.from_headers(page.headers).values()) == {RESERVED}
    assert crawler.from_meta(page.body.decode())["tdm-reservation meta"] == RESERVED
    audio = crawler.fetch(base, f"/t/{track.uuid}/audio")
    assert set(crawler.from_headers(audio.headers).values()) == {RESERVED}
    # Either the rebuilt copy (reserved inside) or the original (nothing inside): never a grant.
    inside = crawler.from_file(audio.body, "mp3")
    assert GRANTED not in inside.values(), inside
    if set(inside.values()) == {ABSENT}:
        assert hashlib.sha256(audio.body).hexdigest() == track.sha256


@pytest.mark.real_worker
@pytest.mark.django_db(transaction=True)
def test_a_withdrawal_changes_headers_and_meta_at_once_and_the_file_within_a_minute(
    start_celery_worker, live_server, settings, make_public_track
):
    start_celery_worker(**_worker_env(settings))
    track = make_public_track("good.mp3", granted=True)
    wait_until(lambda: _copy_says(track, True), timeout=60, message="the first copy")
    granted_copy = crawler.fetch(live_server.url, f"/t/{track.uuid}/audio")
    assert set(crawler.from_file(granted_copy.body, "mp3").values()) == {GRANTED}

    from public.tests.factories import set_third_party

    set_third_party(track.owner, track, False)  # commits; the rebuild is queued on commit

    _assert_reserved_everywhere_but_never_the_stale_copy(live_server.url, track)
    wait_until(lambda: _copy_says(track, False), timeout=60, message="the rebuilt copy, within a minute")
    audio = crawler.fetch(live_server.url, f"/t/{track.uuid}/audio")
    assert set(crawler.from_file(audio.body, "mp3").values()) == {RESERVED}
    assert audio.headers["ETag"] != granted_copy.headers["ETag"]


@pytest.mark.real_worker
@pytest.mark.django_db(transaction=True)
def test_a_stale_copy_is_never_served_while_the_worker_is_stopped(
    start_celery_worker, live_server, settings, make_public_track
):
    from public.tasks import sweep_distribution_copies
    from public.tests.factories import set_third_party

    worker = start_celery_worker(**_worker_env(settings))
    track = make_public_track("good.mp3", granted=True)
    wait_until(lambda: _copy_says(track, True), timeout=60, message="the first copy")
    worker.stop()

    set_third_party(track.owner, track, False)
    settings.PUBLIC_COPY_SWEEP_GRACE_SECONDS = 0
    for _ in range(3):
        _assert_reserved_everywhere_but_never_the_stale_copy(live_server.url, track)
        sweep_distribution_copies()  # what beat does; the work waits in the broker
    copy = DistributionCopy.objects.get(track=track)
    assert copy.embedded_granted is True and copy.status == DistributionCopy.Status.PENDING

    start_celery_worker(**_worker_env(settings))
    wait_until(lambda: _copy_says(track, False), timeout=60, message="the rebuild once a worker is back")
    audio = crawler.fetch(live_server.url, f"/t/{track.uuid}/audio")
    assert set(crawler.from_file(audio.body, "mp3").values()) == {RESERVED}
