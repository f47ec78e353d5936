from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tracks.models import Track
from tracks.tests.conftest import GOOD_AUDIO, as_upload, fixture_bytes, stored_files

pytestmark = pytest.mark.django_db


def test_upload_page_offers_a_multi_file_form_that_works_without_javascript(artist_client):
    response = artist_client.get(reverse("tracks:upload"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert 'type="file"' in html and " multiple " in html
    assert "upload.js" in html and "<script>" not in html


def test_anonymous_visitor_is_sent_to_sign_in_before_uploading(client, media):
    response = client.post(reverse("tracks:upload"), {"files": [as_upload("good.mp3")]})
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert not Track.objects.exists()
    assert stored_files(media) == []


@pytest.mark.parametrize("name", GOOD_AUDIO)
def test_each_allowed_format_uploads_and_becomes_ready(name, artist, upload_track, media):
    response = upload_track(name)

    assert response.status_code == 200
    track = Track.objects.get(owner=artist)
    assert track.status == Track.Status.READY, track.failure_reason
    assert track.original_filename == name
    assert 1.4 < track.duration_seconds < 1.7
    assert len(track.sha256) == 64
    extension = name.rpartition(".")[2]
    assert track.audio_file.name.startswith("audio/") and track.audio_file.name.endswith("." + extension)
    assert name not in track.audio_file.name
    assert track.audio_file.name in stored_files(media)
    assert f'href="{track.get_absolute_url()}"' in response.content.decode()


def test_a_mixed_batch_keeps_the_good_files_and_explains_the_bad_ones(artist, upload_track, media):
    response = upload_track("good.flac", "text.mp3", "good.opus")

    assert response.status_code == 200
    html = response.content.decode()
    assert "text.mp3" in html and "This is a text file, not audio." in html
    assert Track.objects.filter(owner=artist).count() == 2
    assert sorted(t.status for t in Track.objects.all()) == ["ready", "ready"]
    assert len([f for f in stored_files(media) if f.startswith("audio/")]) == 2


def test_tags_and_embedded_artwork_fill_in_the_track(artist, upload_track, media):
    upload_track("good.flac")

    track = Track.objects.get(owner=artist)
    assert (track.title, track.artist_name, track.album, track.year, track.isrc) == (
        "Fixture Tone",
        "Ada Artist",
        "Test Sessions",
        2024,
        "GBAYE2400001",
    )
    assert track.artwork.name.startswith("artwork/") and track.artwork_thumbnail.name.startswith("artwork/")
    assert {track.artwork.name, track.artwork_thumbnail.name} <= set(stored_files(media))


def test_id3_isrc_with_hyphens_is_normalised(artist, upload_track):
    upload_track("good.mp3")
    assert Track.objects.get(owner=artist).isrc == "GBAYE2400001"


def test_json_upload_answers_per_file_with_a_status_url(artist, upload_track):
    response = upload_track("good.ogg", json=True)

    assert response.status_code == 201
    [result] = response.json()["results"]
    track = Track.objects.get(owner=artist)
    assert result["ok"] is True
    assert result["url"] == track.get_absolute_url()
    assert result["status_url"] == reverse("tracks:status", kwargs={"uuid": track.uuid})
    # Processing is queued for after the commit, so the answer can only say "processing".
    assert result["status"] == "processing"
    track.refresh_from_db()
    assert track.status == Track.Status.READY


BAD_UPLOADS = [
    ("empty.mp3", "empty", "The file is empty"),
    ("text.mp3", "unsupported_format", "This is a text file, not audio."),
    ("page.mp3", "unsupported_format", "This is a web page (HTML), not audio."),
    ("photo.mp3", "unsupported_format", "This is a JPEG image, not audio."),
    ("truncated.flac", "truncated", "The FLAC file was cut short"),
    ("truncated.m4a", "truncated", "The M4A file was cut short"),
    ("noise-id3.mp3", "corrupt", "no valid MP3 audio frames"),
    ("noise-flac.flac", "truncated", "The FLAC file ends inside its metadata"),
    ("short.mp3", "too_short", "the shortest allowed is 1.0 s"),
    ("artwork.svg", "unsupported_format", "This is an XML or SVG document, not audio."),
    ("bomb.png", "unsupported_format", "This is a PNG image, not audio."),
    ("video.mp4", "unsupported_format", "This is a video file, not an audio recording."),
]


@pytest.mark.parametrize(("name", "code", "message"), BAD_UPLOADS)
def test_bad_file_is_refused_by_name_with_nothing_kept(name, code, message, upload_track, media):
    response = upload_track(name)

    assert response.status_code == 422
    html = response.content.decode()
    assert name in html
    assert message in html
    assert not Track.objects.exists()
    assert stored_files(media) == []


@pytest.mark.parametrize(("name", "code", "message"), BAD_UPLOADS)
def test_bad_file_gets_a_json_reason_for_the_progress_list(name, code, message, upload_track, media):
    response = upload_track(name, json=True)

    assert response.status_code == 422
    [result] = response.json()["results"]
    assert result["ok"] is False
    assert result["code"] == code
    assert message in result["message"]
    assert result["filename"] == name
    assert not Track.objects.exists()
    assert stored_files(media) == []


def test_file_over_the_size_limit_is_refused_without_being_kept(settings, upload_track, media):
    settings.TRACKS_MAX_UPLOAD_BYTES = 4096

    response = upload_track("good.flac")

    assert response.status_code == 422
    html = response.content.decode()
    assert "good.flac" in html and "The file is 22.3 KB; the largest file accepted is 4 KB." in html
    assert not Track.objects.exists()
    assert stored_files(media) == []


def test_recording_over_the_duration_limit_is_refused(settings, upload_track, media):
    settings.TRACKS_MAX_DURATION_SECONDS = 1

    response = upload_track("good.wav", json=True)

    [result] = response.json()["results"]
    assert result["code"] == "too_long"
    assert result["message"] == "The recording is 1.5 s long; the longest allowed is 1.0 s."
    assert not Track.objects.exists()
    assert stored_files(media) == []


def test_the_same_file_twice_is_refused_with_a_link_to_the_first(artist, upload_track, media):
    upload_track("good.mp3")
    first = Track.objects.get(owner=artist)
    before = stored_files(media)

    response = upload_track(as_upload("good.mp3", upload_name="another name.mp3"))

    html = response.content.decode()
    assert response.status_code == 422
    assert "You already uploaded this exact file" in html
    assert f'href="{first.get_absolute_url()}"' in html
    assert Track.objects.count() == 1
    assert stored_files(media) == before


def test_another_artist_may_upload_the_same_file(artist, other_artist, client, upload_track):
    upload_track("good.mp3")
    client.force_login(other_artist)

    response = upload_track("good.mp3", client=client)

    assert response.status_code == 200
    assert Track.objects.filter(sha256=Track.objects.get(owner=artist).sha256).count() == 2


def test_too_many_files_in_one_request_is_refused_with_the_limit(settings, upload_track, media):
    settings.TRACKS_MAX_FILES_PER_REQUEST = 2

    response = upload_track("good.mp3", "good.flac", "good.ogg")

    assert response.status_code == 400
    assert "You chose 3 files; upload at most 2 at a time." in response.content.decode()
    assert not Track.objects.exists()


def test_posting_without_files_asks_for_one(upload_track):
    response = upload_track()
    assert response.status_code == 400
    assert "Choose at least one audio file to upload." in response.content.decode()


@pytest.mark.parametrize(
    ("upload_name", "shown"),
    [
        ("../../etc/passwd.mp3", "passwd.mp3"),
        ("C:\\Users\\ada\\Music\\song.mp3", "song.mp3"),
        ("<b>bold</b> & <i>.mp3", "i&gt;.mp3"),
        ("<script>alert(1).mp3", "&lt;script&gt;alert(1).mp3"),
        ("Пісня №1 — 東京.mp3", "Пісня №1 — 東京.mp3"),
        ("tab\there\x00.mp3", "tabhere.mp3"),
    ],
)
def test_file_names_are_shown_safely_and_never_used_on_disk(upload_name, shown, artist, upload_track, media):
    response = upload_track(as_upload("good.mp3", upload_name=upload_name))

    assert response.status_code == 200
    html = response.content.decode()
    assert shown in html
    assert "<script>alert(1)" not in html
    track = Track.objects.get(owner=artist)
    assert "/" not in track.original_filename and "\\" not in track.original_filename
    [audio] = [f for f in stored_files(media) if f.startswith("audio/")]
    assert audio == track.audio_file.name
    assert audio.removeprefix("audio/").removesuffix(".mp3").isalnum()


def test_bad_input_with_a_hostile_name_is_reported_escaped(upload_track, media):
    upload = SimpleUploadedFile("<img src=x onerror=alert(1)>.mp3", b"hello", content_type="audio/mpeg")

    response = upload_track(upload)

    html = response.content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;.mp3" in html
    assert "<img src=x" not in html
    assert stored_files(media) == []


def test_content_type_and_extension_do_not_decide_the_format(artist, upload_track):
    disguised = SimpleUploadedFile("notes.txt", fixture_bytes("good.flac"), content_type="text/plain")

    response = upload_track(disguised)

    assert response.status_code == 200
    track = Track.objects.get(owner=artist)
    assert track.container == "FLAC" and track.audio_file.name.endswith(".flac")


def test_a_database_failure_leaves_no_stored_file_and_no_500(track_rows_fail_to_save, upload_track, media):
    response = upload_track("good.mp3")

    assert response.status_code == 422
    assert "could not be saved because of a problem on our side" in response.content.decode()
    assert not Track.objects.exists()
    assert stored_files(media) == []


def test_far_too_many_files_is_a_400_not_a_500(settings, upload_track):
    # Beyond DATA_UPLOAD_MAX_NUMBER_FILES Django stops parsing the request itself.
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3
    response = upload_track(*["good.mp3"] * 5)
    assert response.status_code == 400
    assert not Track.objects.exists()


@pytest.mark.parametrize("url_name", ["tracks:list", "tracks:upload"])
def test_pages_have_no_inline_scripts_or_styles_for_the_csp(url_name, artist_client, ready_track):
    html = artist_client.get(reverse(url_name)).content.decode()
    assert "style=" not in html
    assert "<script>" not in html and "<script " not in html.replace('<script src="', "")
    for url in [ready_track.get_absolute_url(), reverse("tracks:edit", kwargs={"uuid": ready_track.uuid})]:
        page = artist_client.get(url).content.decode()
        assert "style=" not in page and "<script>" not in page


def test_json_upload_without_files_explains_why(upload_track):
    response = upload_track(json=True)
    assert response.status_code == 400
    assert response.json() == {"results": [], "errors": ["Choose at least one audio file to upload."]}
