"""Past one machine: two web processes, two workers and beat on one PostgreSQL, one Redis and S3.

Everything here runs as it would on separate machines: gunicorn processes that
share nothing but the database, the broker and the object store, Celery
workers and one beat as separate processes, a real SMTP server. Artists hold a
session created for them in the database (both web processes honour it) and
upload and change consent over real HTTP, spread across both web processes;
one worker is SIGKILLed midway.
"""

from __future__ import annotations

import os
import re
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from io import StringIO

import pytest
import requests
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client

from conftest import service_missing
from consent.models import Consent
from notifications.models import Notification
from notifications.tests.test_faults import assert_each_received_once
from tests.utils import wait_until
from tracks.models import Track
from tracks.tests.conftest import fixture_bytes

pytestmark = [pytest.mark.real_worker, pytest.mark.django_db(transaction=True)]

ARTISTS = 6
# Distinct recordings (one artist may not upload the same file twice); the
# first two go up before the worker is killed, the last two after.
WAVES = (("good.mp3", "good.flac"), ("good.ogg", "good.m4a"))
# Each track's consent is saved twice; the second save decides what stays granted.
FINAL_STATES: tuple[set[str], ...] = (
    {"fraud_detection"},
    {"recommendation"},
    set(),
    {"recommendation", "fraud_detection"},
)

# Short sweeps and leases, so that work a killed worker held is handed on within
# the test. The leases stay above the tasks' hard time limit, as in production.
CLUSTER_ENV = {
    "CELERY_TASK_SOFT_TIME_LIMIT": "10",
    "CELERY_TASK_TIME_LIMIT": "12",
    "TRACKS_CLAIM_TIMEOUT_SECONDS": "13",
    "TRACKS_SWEEP_GRACE_SECONDS": "1",
    "TRACKS_SWEEP_INTERVAL_SECONDS": "2",
    "NOTIFICATIONS_CLAIM_LEASE_SECONDS": "13",
    "NOTIFICATIONS_SWEEP_GRACE_SECONDS": "1",
    "NOTIFICATIONS_SWEEP_INTERVAL_SECONDS": "2",
}


@dataclass
class Artist:
    user: object
    http: requests.Session
    wanted: dict[str, set[str]] = field(default_factory=dict)

    def csrf(self, base_url: str) -> str:
        if "csrftoken" not in self.http.cookies:
            self.http.get(f"{base_url}/tracks/upload/", timeout=30).raise_for_status()
        return self.http.cookies["csrftoken"]

    def upload(self, base_url: str, name: str) -> str:
        response = self.http.post(
            f"{base_url}/tracks/upload/",
            data={"csrfmiddlewaretoken": self.csrf(base_url), "consent": ["recommendation"]},
            files=[("files", (name, fixture_bytes(name), "application/octet-stream"))],
            headers={"Accept": "application/json"},
            timeout=60,
        )
        assert response.status_code == 201, response.text
        [result] = response.json()["results"]
        found = re.search(r"/tracks/([0-9a-f-]{36})/", result["url"])
        assert found, result["url"]
        return found.group(1)

    def save_consent(self, base_url: str, track_uuid: str, purposes: set[str]) -> None:
        response = self.http.post(
            f"{base_url}/consent/tracks/{track_uuid}/",
            data={"csrfmiddlewaretoken": self.csrf(base_url), "purpose": sorted(purposes)},
            allow_redirects=False,
            timeout=60,
        )
        assert response.status_code == 302, response.text
        self.wanted[track_uuid] = purposes


def session_created_for(user) -> requests.Session:
    client = Client()
    client.force_login(user)
    http = requests.Session()
    http.cookies.set("sessionid", client.cookies["sessionid"].value)
    return http


def run_wave(artists: list[Artist], urls: list[str], files: tuple[str, ...], wave: int) -> None:
    """Each artist uploads and saves consent at once, alternating between the web processes."""

    def one_artist(index: int, artist: Artist) -> None:
        for position, name in enumerate(files):
            track_uuid = artist.upload(urls[(index + position) % 2], name)
            final = FINAL_STATES[(wave * len(files) + position + index) % len(FINAL_STATES)]
            artist.save_consent(urls[(index + position + 1) % 2], track_uuid, {"recommendation", "fraud_detection"})
            artist.save_consent(urls[(index + position) % 2], track_uuid, final)

    with ThreadPoolExecutor(max_workers=len(artists)) as pool:
        for future in [pool.submit(one_artist, index, artist) for index, artist in enumerate(artists)]:
            future.result()


def processed_ready_count(*logs: str) -> int:
    return sum(len(re.findall(r"tracks\.process_track\[[^\]]+\] succeeded in [^:]+: 'ready'", log)) for log in logs)


def test_two_web_processes_and_two_workers_lose_nothing_and_repeat_nothing_when_a_worker_is_killed(
    make_user, seaweedfs, smtp_server, start_web_server, start_celery_worker, start_celery_beat
):
    if connection.vendor != "postgresql":
        service_missing("DATABASE_URL is not PostgreSQL; this test is about several processes on one PostgreSQL")
    if not os.environ.get("REDIS_URL"):
        service_missing("REDIS_URL is not set; this test is about several processes on one Redis")
    bucket = f"scale-{uuid.uuid4().hex[:12]}"
    seaweedfs.create_bucket(bucket)
    env = {**CLUSTER_ENV, **seaweedfs.env(bucket), "EMAIL_URL": smtp_server.url}
    # Everything boots at once; the workers are waited for one by one by their fixture.
    webs = [start_web_server(wait=False, **env), start_web_server(wait=False, **env)]
    beat = start_celery_beat(wait=False, **env)
    doomed = start_celery_worker(**env)
    survivor = start_celery_worker(**env)
    for process in (*webs, beat):
        process.wait_ready()
    urls = [web.url for web in webs]

    artists = [Artist(user, session_created_for(user)) for user in (make_user() for _ in range(ARTISTS))]
    # One session, honoured by both web processes.
    for url in urls:
        assert artists[0].http.get(f"{url}/dashboard/", allow_redirects=False, timeout=30).status_code == 200
    total = ARTISTS * sum(len(files) for files in WAVES)

    run_wave(artists, urls, WAVES[0], wave=0)
    wait_until(
        lambda: Track.objects.filter(status=Track.Status.READY).exists(), timeout=60, message="the first track ready"
    )
    doomed.kill()
    ready_at_kill = Track.objects.filter(status=Track.Status.READY).count()
    assert ready_at_kill < total
    run_wave(artists, urls, WAVES[1], wave=1)

    def everything_done():
        tracks_done = not Track.objects.exclude(status=Track.Status.READY).exists()
        notices = list(Notification.objects.all())
        notices_done = all(n.status == Notification.Status.SENT for n in notices)
        received = set(smtp_server.message_ids()) >= {n.message_id for n in notices}
        return tracks_done and notices_done and received

    try:
        wait_until(everything_done, timeout=120, interval=0.5, message="every upload processed and notice sent")
    except AssertionError:
        raise AssertionError(f"{survivor.log()[-3000:]}") from None

    # Every upload processed, and none to `ready` twice.
    tracks = list(Track.objects.all())
    assert len(tracks) == total
    assert processed_ready_count(doomed.log(), survivor.log()) <= total
    # Every notice delivered once: one Message-ID per outbox row, and a repeat
    # only of a message the killed worker can have had in flight (one per SMTP connection it sends over).
    notices = list(Notification.objects.all())
    assert Counter(n.kind for n in notices)[Notification.Kind.CONSENT_RECEIPT] >= ARTISTS
    assert_each_received_once(smtp_server, notices, in_flight_at_kill=settings.NOTIFICATIONS_SMTP_CONNECTIONS)
    # The consent state is what the artists last saved, and the log replays to it.
    for artist in artists:
        granted: dict[str, set[str]] = {track_uuid: set() for track_uuid in artist.wanted}
        for track_uuid, slug in Consent.objects.filter(track__owner=artist.user, granted=True).values_list(
            "track__uuid", "purpose__slug"
        ):
            granted[str(track_uuid)].add(slug)
        assert granted == artist.wanted
    out = StringIO()
    call_command("verify_audit_log", stdout=out)
    assert out.getvalue().startswith("OK:")
    # The object store holds exactly the tracks' files: nothing stray, nothing missing.
    client = seaweedfs.client()
    stored = {item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    referenced = {
        name for t in tracks for name in (t.audio_file.name, t.artwork.name, t.artwork_thumbnail.name) if name
    }
    assert stored == referenced
    # Both web processes took uploads and consent saves.
    for web in webs:
        assert '"POST /tracks/upload/' in web.log()
        assert '"POST /consent/tracks/' in web.log()
    for key in stored:
        client.delete_object(Bucket=bucket, Key=key)
    client.delete_bucket(Bucket=bucket)
