"""Media on S3, against a real S3-compatible server (SeaweedFS, started by the `seaweedfs` fixture).

Uploads are written to the bucket, processing reads them back, the owner
streams byte ranges fetched as ranged GetObject requests, signed URLs expire,
and deleting a track (or failing to create one) leaves no object behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
import wave
from pathlib import Path

import pytest
import requests
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from tests.utils import wait_until
from tracks.models import Track
from tracks.tests.conftest import as_upload, fixture_bytes

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def record_get_object_bytes() -> list[int]:
    """The body size of every GetObject the media storage's S3 client makes from now on."""
    fetched: list[int] = []

    def after_get_object(parsed, **kwargs):
        fetched.append(parsed.get("ContentLength", 0))

    from storages.backends.s3 import S3Storage

    assert isinstance(default_storage, S3Storage), "the test's media storage is S3"
    client = default_storage.connection.meta.client
    client.meta.events.register("after-call.s3.GetObject", after_get_object)
    return fetched


def test_an_upload_is_stored_in_the_bucket_and_processing_reads_it_back(s3_media, artist, upload_track):
    response = upload_track("good.mp3")

    assert response.status_code == 200
    track = Track.objects.get(owner=artist)
    # Processing read the object back: tags and the embedded cover came from it.
    assert track.status == Track.Status.READY, track.failure_reason
    assert track.title == "Fixture Tone"
    assert s3_media.keys() == sorted([track.audio_file.name, track.artwork.name, track.artwork_thumbnail.name])
    assert s3_media.get(track.audio_file.name) == fixture_bytes("good.mp3")
    assert s3_media.get(track.artwork.name)[:3] == b"\xff\xd8\xff"


def test_rejected_and_duplicate_uploads_leave_no_object_in_the_bucket(s3_media, artist, upload_track):
    upload_track("good.flac")
    kept = s3_media.keys()

    response = upload_track("truncated.flac", as_upload("good.flac", upload_name="again.flac"), json=True)

    assert [result["code"] for result in response.json()["results"]] == ["truncated", "duplicate"]
    assert Track.objects.filter(owner=artist).count() == 1
    assert s3_media.keys() == kept


def test_a_database_failure_after_storing_removes_the_object(s3_media, track_rows_fail_to_save, upload_track):
    response = upload_track("good.mp3")

    assert response.status_code == 422
    assert "could not be saved because of a problem on our side" in response.content.decode()
    assert s3_media.keys() == []


def write_silent_wav(path: Path, *, megabytes: int) -> int:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(44_100)
        silence = bytes(MB)
        for _ in range(megabytes):
            out.writeframes(silence)
    return path.stat().st_size


def test_a_large_upload_streams_to_the_bucket_in_parts_without_holding_the_file_in_memory(s3_media, artist, tmp_path):
    from tracks import services
    from tracks.uploads import HashingUploadHandler

    source = tmp_path / "long.wav"
    size = write_silent_wav(source, megabytes=96)
    # Loading boto's service model is a one-off cost of the process, not of an upload.
    default_storage.exists("warm-up")

    tracemalloc.start()
    try:
        # What the upload view does with the request body: the streaming
        # handler spools and hashes it, then the service stores it.
        handler = HashingUploadHandler(None)
        handler.new_file("files", "long.wav", "audio/wav", size)
        with source.open("rb") as body:
            while chunk := body.read(64 * 1024):
                handler.receive_data_chunk(chunk, 0)
        uploaded = handler.file_complete(size)
        track = services.create_track(owner=artist, upload=uploaded)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    head = s3_media.client.head_object(Bucket=s3_media.bucket, Key=track.audio_file.name)
    assert head["ContentLength"] == size
    parts = -(-size // (8 * MB))
    assert head["ETag"].strip('"').endswith(f"-{parts}")  # a multipart upload, in 8 MB parts
    assert peak < size // 2, f"peak traced memory {peak / MB:.1f} MB for a {size / MB:.0f} MB upload"


def test_the_owner_gets_a_byte_range_fetched_as_a_ranged_get(s3_media, ready_track, artist_client):
    data = fixture_bytes("good.mp3")
    fetched = record_get_object_bytes()

    response = artist_client.get(reverse("tracks:audio", kwargs={"uuid": ready_track.uuid}), HTTP_RANGE="bytes=100-199")

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert b"".join(response.streaming_content) == data[100:200]
    assert fetched == [100]  # not the whole object


def test_the_owner_streams_the_whole_file_and_head_reads_no_body(s3_media, ready_track, artist_client):
    url = reverse("tracks:audio", kwargs={"uuid": ready_track.uuid})
    data = fixture_bytes("good.mp3")
    fetched = record_get_object_bytes()

    whole = artist_client.get(url)
    head = artist_client.head(url)
    suffix = artist_client.get(url, HTTP_RANGE="bytes=-10")
    beyond = artist_client.get(url, HTTP_RANGE="bytes=999999-")

    assert (whole.status_code, whole["Content-Length"]) == (200, str(len(data)))
    assert b"".join(whole.streaming_content) == data
    assert (head.status_code, head["Content-Length"], b"".join(head.streaming_content)) == (200, str(len(data)), b"")
    assert b"".join(suffix.streaming_content) == data[-10:]
    assert (beyond.status_code, beyond["Content-Range"]) == (416, f"bytes */{len(data)}")
    assert fetched == [len(data), 10]


def test_only_the_owner_gets_audio_from_the_bucket(s3_media, ready_track, other_artist):
    fetched = record_get_object_bytes()
    url = reverse("tracks:audio", kwargs={"uuid": ready_track.uuid})

    anonymous = Client().get(url, HTTP_RANGE="bytes=0-99")
    other_client = Client()
    other_client.force_login(other_artist)
    other = other_client.get(url, HTTP_RANGE="bytes=0-99")

    assert (anonymous.status_code, other.status_code) == (404, 404)
    assert fetched == []


def test_a_track_whose_object_is_gone_is_404_not_500(s3_media, ready_track, artist_client):
    s3_media.client.delete_object(Bucket=s3_media.bucket, Key=ready_track.audio_file.name)

    response = artist_client.get(reverse("tracks:audio", kwargs={"uuid": ready_track.uuid}))

    assert response.status_code == 404


def test_deleting_a_track_removes_its_objects(s3_media, ready_track, artist_client, django_capture_on_commit_callbacks):
    assert len(s3_media.keys()) == 3  # audio, artwork, thumbnail

    with django_capture_on_commit_callbacks(execute=True):
        response = artist_client.post(reverse("tracks:delete", kwargs={"uuid": ready_track.uuid}))

    assert response.status_code == 302
    assert s3_media.keys() == []


def test_signed_urls_expire_after_the_configured_time_and_unsigned_access_is_refused(s3_media):
    s3_media.client.put_object(Bucket=s3_media.bucket, Key="audio/signed.mp3", Body=b"private bytes")
    env = {
        **os.environ,
        **s3_media.env,
        "STORAGE_S3_URL_EXPIRE_SECONDS": "3",
        "DJANGO_SETTINGS_MODULE": "creatorportal.settings",
    }
    script = (
        "import django; django.setup()\n"
        "from django.core.files.storage import default_storage\n"
        "print(default_storage.url('audio/signed.mp3'), flush=True)"
    )
    # Read the URL as soon as it is printed: the interpreter's shutdown is no part of its lifetime.
    child = subprocess.Popen([sys.executable, "-c", script], cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, text=True)
    try:
        url = child.stdout.readline().strip()
        fresh = requests.get(url, timeout=5)
    finally:
        child.communicate(timeout=60)

    assert "X-Amz-Expires=3&" in url
    assert (fresh.status_code, fresh.content) == (200, b"private bytes"), fresh.content
    unsigned = requests.get(f"{s3_media.server.endpoint_url}/{s3_media.bucket}/audio/signed.mp3", timeout=5)
    assert unsigned.status_code == 403

    def refused_as_expired():
        answer = requests.get(url, timeout=5)
        return answer.status_code == 403 and b"expired" in answer.content

    wait_until(refused_as_expired, timeout=30, interval=0.5, message="the signed URL to be refused as expired")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("STORAGE_S3_ADDRESSING_STYLE", "sideways"),
        ("STORAGE_S3_URL_EXPIRE_SECONDS", "soon"),
        # Shorter than the hard time limit (360 s): a live worker's track could be taken from it.
        ("TRACKS_CLAIM_TIMEOUT_SECONDS", "100"),
    ],
)
def test_a_bad_storage_or_sweep_variable_stops_startup_naming_it(variable, value):
    env = {**os.environ, "STORAGE_BACKEND": "s3", "STORAGE_S3_BUCKET": "media", variable: value}
    env.pop("CELERY_TASK_TIME_LIMIT", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert variable in result.stderr
