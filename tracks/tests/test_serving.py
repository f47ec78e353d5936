from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tracks.tests.conftest import fixture_bytes, stored_files

pytestmark = pytest.mark.django_db

TRACK_URLS = ["tracks:detail", "tracks:status", "tracks:edit", "tracks:delete", "tracks:audio", "tracks:artwork"]


@pytest.mark.parametrize("url_name", [*TRACK_URLS, "tracks:artwork_thumbnail"])
def test_another_artist_gets_404_for_every_url_of_a_track(url_name, ready_track, other_artist):
    client = Client()
    client.force_login(other_artist)
    response = client.get(reverse(url_name, kwargs={"uuid": ready_track.uuid}))
    assert response.status_code == 404
    assert fixture_bytes("good.mp3")[:64] not in b"".join(getattr(response, "streaming_content", [response.content]))


@pytest.mark.parametrize("url_name", [*TRACK_URLS, "tracks:artwork_thumbnail"])
def test_an_anonymous_visitor_gets_404_for_every_url_of_a_track(url_name, ready_track):
    response = Client().get(reverse(url_name, kwargs={"uuid": ready_track.uuid}))
    assert response.status_code == 404


def test_another_artist_cannot_delete_a_track(ready_track, other_artist, media):
    client = Client()
    client.force_login(other_artist)
    files = stored_files(media)
    response = client.post(reverse("tracks:delete", kwargs={"uuid": ready_track.uuid}))
    assert response.status_code == 404
    ready_track.refresh_from_db()
    assert stored_files(media) == files


def test_an_unknown_track_is_404(artist_client):
    response = artist_client.get(reverse("tracks:audio", kwargs={"uuid": "00000000-0000-4000-8000-000000000000"}))
    assert response.status_code == 404


def test_the_owner_gets_the_whole_file_with_range_support_advertised(ready_track, artist_client):
    response = artist_client.get(reverse("tracks:audio", kwargs={"uuid": ready_track.uuid}))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == fixture_bytes("good.mp3")
    assert response["Content-Type"] == "audio/mpeg"
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Length"] == str(len(fixture_bytes("good.mp3")))
    assert response["Cache-Control"] == "private, max-age=3600"
    assert response["ETag"] == f'"{ready_track.sha256}"'
    assert response["Content-Disposition"].startswith("inline")


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [("bytes=0-99", 0, 99), ("bytes=100-", 100, None), ("bytes=-50", None, None), ("bytes=10-999999", 10, None)],
)
def test_a_byte_range_is_served_as_partial_content(range_header, first, last, ready_track, artist_client):
    data = fixture_bytes("good.mp3")
    size = len(data)
    if first is None:
        first, last = size - 50, size - 1
    last = size - 1 if last is None else last

    response = artist_client.get(reverse("tracks:audio", kwargs={"uuid": ready_track.uuid}), HTTP_RANGE=range_header)

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert response["Content-Length"] == str(last - first + 1)
    assert b"".join(response.streaming_content) == data[first : last + 1]


@pytest.mark.parametrize("range_header", ["bytes=999999-", "bytes=50-10", "bytes=-0", "bytes=abc-def", "bytes=-"])
def test_an_unsatisfiable_range_is_416_with_the_size(range_header, ready_track, artist_client):
    response = artist_client.get(reverse("tracks:audio", kwargs={"uuid": ready_track.uuid}), HTTP_RANGE=range_header)

    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(fixture_bytes('good.mp3'))}"


@pytest.mark.parametrize("range_header", ["items=0-5", "bytes=0-1,5-9"])
def test_other_units_and_multiple_ranges_get_the_whole_file(range_header, ready_track, artist_client):
    response = artist_client.get(reverse("tracks:audio", kwargs={"uuid": ready_track.uuid}), HTTP_RANGE=range_header)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == fixture_bytes("good.mp3")


def test_if_range_with_a_stale_etag_gets_the_whole_file(ready_track, artist_client):
    url = reverse("tracks:audio", kwargs={"uuid": ready_track.uuid})
    stale = artist_client.get(url, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"something-else"')
    fresh = artist_client.get(url, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=f'"{ready_track.sha256}"')
    assert stale.status_code == 200
    assert fresh.status_code == 206


def test_head_request_reports_size_without_a_body(ready_track, artist_client):
    response = artist_client.head(reverse("tracks:audio", kwargs={"uuid": ready_track.uuid}))
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(fixture_bytes("good.mp3")))
    assert b"".join(response.streaming_content) == b""


def test_artwork_is_served_as_jpeg_to_the_owner(ready_track, artist_client):
    for url_name in ("tracks:artwork", "tracks:artwork_thumbnail"):
        response = artist_client.get(reverse(url_name, kwargs={"uuid": ready_track.uuid}))
        assert response.status_code == 200
        assert response["Content-Type"] == "image/jpeg"
        assert b"".join(response.streaming_content)[:3] == b"\xff\xd8\xff"


def test_a_track_without_artwork_has_no_artwork_url(artist, upload_track, artist_client):
    upload_track("good.wav")
    track = artist.tracks.get()
    assert artist_client.get(reverse("tracks:artwork", kwargs={"uuid": track.uuid})).status_code == 404


def test_media_is_never_linked_by_its_storage_name(ready_track, artist_client):
    html = artist_client.get(ready_track.get_absolute_url()).content.decode()
    assert ready_track.audio_file.name not in html
    assert ready_track.artwork.name not in html
    assert "/media" not in html
    assert f'src="{reverse("tracks:audio", kwargs={"uuid": ready_track.uuid})}"' in html


def test_a_file_missing_from_storage_is_404_not_500(ready_track, artist_client):
    from django.core.files.storage import default_storage

    default_storage.delete(ready_track.audio_file.name)
    response = artist_client.get(reverse("tracks:audio", kwargs={"uuid": ready_track.uuid}))
    assert response.status_code == 404
