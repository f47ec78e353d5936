from __future__ import annotations

import pytest
from django.urls import reverse

from tracks import services
from tracks.models import Track
from tracks.tests.conftest import as_upload, stored_files

pytestmark = pytest.mark.django_db


def make_tracks(owner, count: int, **fields) -> list[Track]:
    """Rows without files, for pages that only list them."""
    return Track.objects.bulk_create(
        [
            Track(
                owner=owner,
                title=fields.get("title", f"Song {n:03d}"),
                sha256=f"{owner.pk:08d}{n:056d}",
                audio_file=f"audio/{n:032x}.mp3",
                container="MPEG audio",
                codec="MP3",
                duration_seconds=60 + n,
                status=fields.get("status", Track.Status.READY),
                artwork_thumbnail=f"artwork/{n:032x}-thumb.jpg" if n % 2 else "",
            )
            for n in range(count)
        ]
    )


# --- list ------------------------------------------------------------------------------------


@pytest.mark.parametrize("per_page", [25, 100])
def test_track_list_runs_a_fixed_number_of_queries_whatever_the_page_size(
    per_page, artist, artist_client, django_assert_num_queries
):
    make_tracks(artist, 120)
    url = reverse("tracks:list") + f"?per_page={per_page}&sort=title"
    # session, user, the latest material policy version (for the banner), count, page of tracks,
    # purposes and the page's consent rows (the consent columns)
    with django_assert_num_queries(7):
        response = artist_client.get(url)
    assert response.status_code == 200
    assert response.content.decode().count('class="tracks-table__art"') == per_page


def test_track_list_shows_only_the_artists_own_tracks(artist, other_artist, artist_client):
    make_tracks(artist, 2)
    make_tracks(other_artist, 1, title="Not yours")
    html = artist_client.get(reverse("tracks:list")).content.decode()
    assert "Song 000" in html and "Song 001" in html
    assert "Not yours" not in html


def test_track_list_searches_titles(artist, artist_client):
    make_tracks(artist, 12)
    html = artist_client.get(reverse("tracks:list"), {"q": "song 01"}).content.decode()
    assert "Song 010" in html and "Song 011" in html
    assert "Song 001" not in html


def test_track_list_filters_by_status(artist, artist_client):
    make_tracks(artist, 1)
    Track.objects.create(owner=artist, title="Broken one", sha256="f" * 64, status=Track.Status.FAILED)
    html = artist_client.get(reverse("tracks:list"), {"status": "failed"}).content.decode()
    assert "Broken one" in html
    assert "Song 000" not in html


@pytest.mark.parametrize(("sort", "first"), [("title", "Song 000"), ("-title", "Song 004"), ("-duration", "Song 004")])
def test_track_list_sorts(sort, first, artist, artist_client):
    make_tracks(artist, 5)
    html = artist_client.get(reverse("tracks:list"), {"sort": sort}).content.decode()
    positions = {f"Song 00{n}": html.index(f"Song 00{n}") for n in range(5)}
    assert min(positions, key=positions.get) == first


def test_track_list_paginates_keeping_the_filters(artist, artist_client):
    make_tracks(artist, 30)
    response = artist_client.get(reverse("tracks:list"), {"sort": "title", "q": "song"})
    html = response.content.decode()
    assert "Page 1 of 2" in html
    assert "?sort=title&amp;q=song&amp;page=2" in html
    second = artist_client.get(reverse("tracks:list"), {"sort": "title", "q": "song", "page": 2}).content.decode()
    assert "Song 029" in second and "Song 000" not in second


def test_track_list_survives_nonsense_parameters(artist, artist_client):
    make_tracks(artist, 3)
    response = artist_client.get(
        reverse("tracks:list"), {"sort": "drop table", "status": "x", "page": "-1", "per_page": "9"}
    )
    assert response.status_code == 200
    assert "Song 000" in response.content.decode()


def test_empty_track_list_leads_to_the_upload_page(artist_client):
    html = artist_client.get(reverse("tracks:list")).content.decode()
    assert reverse("tracks:upload") in html and "No tracks yet" in html


# --- dashboard -----------------------------------------------------------------------------


def test_dashboard_panel_invites_a_first_upload(artist_client):
    html = artist_client.get(reverse("dashboard")).content.decode()
    assert "Your catalogue is empty" in html
    assert f'href="{reverse("tracks:upload")}"' in html


def test_dashboard_panel_summarises_tracks_by_status_in_one_query(artist, artist_client, django_assert_num_queries):
    make_tracks(artist, 3)
    Track.objects.create(owner=artist, sha256="e" * 64, status=Track.Status.FAILED)
    Track.objects.create(owner=artist, sha256="d" * 64, status=Track.Status.PROCESSING)

    from tracks.templatetags.tracks_extras import track_summary

    with django_assert_num_queries(1):
        summary = track_summary(artist)
    assert summary == {"total": 5, "ready": 3, "processing": 1, "failed": 1}
    html = artist_client.get(reverse("dashboard")).content.decode()
    assert "<strong>5</strong> tracks" in html
    assert "3 ready" in html and "1 processing" in html and "1 failed" in html


# --- track page and status -------------------------------------------------------------------


def test_track_page_shows_metadata_artwork_and_a_player(ready_track, artist_client):
    html = artist_client.get(ready_track.get_absolute_url()).content.decode()
    assert "Fixture Tone" in html and "Ada Artist" in html and "Test Sessions" in html
    assert "GBAYE2400001" in html and "0:02" in html
    assert "<audio controls" in html
    assert reverse("tracks:artwork", kwargs={"uuid": ready_track.uuid}) in html
    assert "data-track-status-url" not in html  # settled: nothing to poll


def test_processing_track_page_polls_and_offers_a_refresh_link(artist, artist_client):
    track = services.create_track(owner=artist, upload=as_upload("good.flac"))
    html = artist_client.get(track.get_absolute_url()).content.decode()
    assert f'data-track-status-url="{reverse("tracks:status", kwargs={"uuid": track.uuid})}"' in html
    assert "track-status.js" in html
    assert f'<a href="{track.get_absolute_url()}">Refresh</a>' in html
    assert "<script>" not in html and "style=" not in html


def test_failed_track_page_shows_the_reason(artist, artist_client):
    track = Track.objects.create(
        owner=artist,
        sha256="c" * 64,
        status=Track.Status.FAILED,
        failure_code="truncated",
        failure_reason="The FLAC file was cut short.",
    )
    html = artist_client.get(track.get_absolute_url()).content.decode()
    assert "The FLAC file was cut short." in html
    assert "<audio" not in html


def test_status_endpoint_reports_progress_for_polling(artist, artist_client):
    track = services.create_track(owner=artist, upload=as_upload("good.flac"))
    url = reverse("tracks:status", kwargs={"uuid": track.uuid})

    processing = artist_client.get(url)
    assert processing.json()["status"] == "processing" and processing.json()["settled"] is False
    assert processing["Cache-Control"] == "no-store"

    from tracks.tasks import process_track

    process_track(track.pk)
    ready = artist_client.get(url).json()
    assert (ready["status"], ready["settled"], ready["title"]) == ("ready", True, "Fixture Tone")


# --- edit -------------------------------------------------------------------------------------


def edit(client, track, **data):
    fields = {"title": track.title, "artist_name": track.artist_name, "album": track.album, "year": "", "isrc": ""}
    fields.update(data)
    return client.post(reverse("tracks:edit", kwargs={"uuid": track.uuid}), fields)


def test_edit_saves_details_and_normalises_the_isrc(ready_track, artist_client):
    response = edit(artist_client, ready_track, title="New Title", isrc="gb-aye-25-00001", year="2025")

    assert response.status_code == 302
    ready_track.refresh_from_db()
    assert (ready_track.title, ready_track.isrc, ready_track.year) == ("New Title", "GBAYE2500001", 2025)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"isrc": "GB-AYE-25"}, "An ISRC is 12 characters"),
        ({"isrc": "12-AYE-25-00001"}, "An ISRC is 12 characters"),
        ({"year": "1066"}, "Enter a year between 1860 and"),
        ({"year": "9999"}, "Enter a year between 1860 and"),
        ({"title": "   "}, "This field is required."),
    ],
)
def test_edit_refuses_bad_details_with_a_message(data, message, ready_track, artist_client):
    before = (ready_track.title, ready_track.isrc, ready_track.year)
    response = edit(artist_client, ready_track, **data)

    assert response.status_code == 400
    assert message in response.content.decode()
    ready_track.refresh_from_db()
    assert (ready_track.title, ready_track.isrc, ready_track.year) == before


def test_edit_replaces_artwork_and_removes_the_old_files(
    ready_track, artist_client, media, django_capture_on_commit_callbacks
):
    old = {ready_track.artwork.name, ready_track.artwork_thumbnail.name}

    with django_capture_on_commit_callbacks(execute=True):
        response = edit(artist_client, ready_track, artwork_upload=as_upload("cover.png", content_type="image/png"))

    assert response.status_code == 302
    ready_track.refresh_from_db()
    new = {ready_track.artwork.name, ready_track.artwork_thumbnail.name}
    assert new.isdisjoint(old)
    assert sorted(stored_files(media)) == sorted([ready_track.audio_file.name, *new])


def test_edit_can_remove_artwork(ready_track, artist_client, media, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        edit(artist_client, ready_track, remove_artwork="on")
    ready_track.refresh_from_db()
    assert not ready_track.artwork and not ready_track.artwork_thumbnail
    assert stored_files(media) == [ready_track.audio_file.name]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("artwork.svg", "artwork.svg: This is an SVG drawing, not a raster image."),
        ("artwork.html", "artwork.html: This is a web page (HTML), not an image."),
        ("artwork.txt", "artwork.txt: This is a text file, not an image."),
        ("bomb.png", "bomb.png: The image has too many pixels"),
        ("good.mp3", "good.mp3: The file is not an image the portal can read."),
    ],
)
def test_bad_artwork_is_refused_by_name_and_nothing_changes(name, message, ready_track, artist_client, media):
    before = stored_files(media)
    old_artwork = ready_track.artwork.name

    response = edit(artist_client, ready_track, artwork_upload=as_upload(name, content_type="image/png"))

    assert response.status_code == 400
    assert message in response.content.decode()
    ready_track.refresh_from_db()
    assert ready_track.artwork.name == old_artwork
    assert stored_files(media) == before


def test_artwork_over_the_byte_limit_is_refused(settings, ready_track, artist_client, media):
    settings.ARTWORK_MAX_UPLOAD_BYTES = 100
    response = edit(artist_client, ready_track, artwork_upload=as_upload("cover.jpg", content_type="image/jpeg"))
    assert response.status_code == 400
    assert "cover.jpg: the image is larger than 100 bytes." in response.content.decode()


# --- delete ---------------------------------------------------------------------------------


def test_delete_asks_for_confirmation_first(ready_track, artist_client):
    response = artist_client.get(reverse("tracks:delete", kwargs={"uuid": ready_track.uuid}))
    assert response.status_code == 200
    assert "This cannot be undone." in response.content.decode()
    assert Track.objects.filter(pk=ready_track.pk).exists()


def test_delete_removes_the_row_and_then_the_files(
    ready_track, artist_client, media, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = artist_client.post(reverse("tracks:delete", kwargs={"uuid": ready_track.uuid}))
        assert not Track.objects.filter(pk=ready_track.pk).exists()
        # The files wait for the commit: a rolled-back delete must still find them.
        assert len(stored_files(media)) == 3

    assert response.status_code == 302 and response["Location"] == reverse("tracks:list")
    for callback in callbacks:
        callback()
    assert stored_files(media) == []


def test_deleting_an_artists_account_takes_their_files_too(
    ready_track, artist, media, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        artist.delete()
    assert stored_files(media) == []


def test_column_headers_sort_and_say_which_way(artist, artist_client):
    make_tracks(artist, 3)
    html = artist_client.get(reverse("tracks:list"), {"sort": "title", "status": "ready"}).content.decode()
    # Sorted by title ascending: the Title header offers the reverse and keeps the filter.
    assert '<th scope="col" aria-sort="ascending"><a href="?sort=-title&amp;status=ready">Title</a></th>' in html
    assert '<th scope="col" aria-sort="none"><a href="?sort=duration&amp;status=ready">Length</a></th>' in html
    default = artist_client.get(reverse("tracks:list")).content.decode()
    assert '<th scope="col" aria-sort="descending"><a href="?sort=oldest">Uploaded</a></th>' in default
