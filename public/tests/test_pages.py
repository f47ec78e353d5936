"""Public pages: who sees what, the artist's switch, validators, Range and HEAD, and what crawlers see."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.storage import default_storage
from django.utils.html import escape

from public.models import DistributionCopy, PublicTrack
from public.tests import crawler
from public.tests.crawler import GRANTED, RESERVED

pytestmark = pytest.mark.django_db


def _urls(track) -> list[str]:
    return [f"/t/{track.uuid}/", f"/t/{track.uuid}/audio", f"/t/{track.uuid}/artwork"]


@pytest.mark.parametrize("who", ["anonymous", "other artist", "staff"])
def test_a_private_track_is_404_to_everyone_but_its_artist(who, client, make_public_track, other_artist, staff_user):
    track = make_public_track("good.mp3", public=False)
    if who == "other artist":
        client.force_login(other_artist)
    elif who == "staff":
        client.force_login(staff_user)
    for url in _urls(track):
        assert client.get(url).status_code == 404, url
        assert client.head(url).status_code == 404, url
    assert client.get(f"/public/tracks/{track.uuid}/").status_code in (302, 404)


def test_the_artist_previews_a_private_track_with_its_signals(client, artist, make_public_track):
    track = make_public_track("good.mp3", public=False)
    client.force_login(artist)
    page = client.get(f"/t/{track.uuid}/")
    assert page.status_code == 200
    assert "Only you can see this page" in page.text
    assert page["Cache-Control"] == "private, no-cache"
    assert crawler.from_headers(page.headers)["Content-Usage header"] == RESERVED


def test_a_public_track_page_shows_title_artist_player_and_badge(client, artist, make_public_track):
    track = make_public_track("good.mp3")
    page = client.get(f"/t/{track.uuid}/")
    assert page.status_code == 200
    assert track.display_title in page.text
    assert artist.display_name in page.text or track.artist_name in page.text
    assert f'src="/t/{track.uuid}/audio"' in page.text
    assert "AI training by other companies: not allowed" in page.text
    assert page["Cache-Control"] == "public, no-cache"


def test_only_the_artist_can_switch_a_track_public_and_only_once_processed(
    client, artist, other_artist, make_public_track, make_track_row
):
    track = make_public_track("good.mp3", public=False)
    client.force_login(other_artist)
    assert client.post(f"/public/tracks/{track.uuid}/", {"public": "1"}).status_code == 404
    assert not PublicTrack.objects.filter(track=track, is_public=True).exists()

    client.force_login(artist)
    response = client.post(f"/public/tracks/{track.uuid}/", {"public": "1"}, follow=True)
    assert "The track is public" in response.text
    assert client.get(f"/t/{track.uuid}/").status_code == 200

    processing = make_track_row(owner=artist, status="processing")
    response = client.post(f"/public/tracks/{processing.uuid}/", {"public": "1"}, follow=True)
    assert "Only a processed track can be made public" in response.text
    response = client.post(f"/public/tracks/{track.uuid}/", {"public": "maybe"}, follow=True)
    assert "Choose whether the track should be public or private" in response.text


def test_the_artist_page_has_a_stable_address_and_lists_only_public_tracks(client, artist, make_public_track):
    shown = make_public_track("good.mp3", granted=True)
    hidden = make_public_track("good.wav", public=False)
    address = artist.public_page.get_absolute_url()
    page = client.get(address)
    assert page.status_code == 200
    assert shown.display_title in page.text and f"/t/{hidden.uuid}/" not in page.text
    assert "AI training by other companies: allowed" in page.text
    from public.services import set_track_public

    set_track_public(actor=artist, track=shown, public=False)
    assert client.get(address).status_code == 404
    set_track_public(actor=artist, track=shown, public=True)
    artist.public_page.refresh_from_db()
    assert artist.public_page.get_absolute_url() == address


def test_the_etag_changes_with_the_answer_and_a_revalidation_gets_the_current_one(
    client, make_public_track, change_answer
):
    track = make_public_track("good.mp3")
    for url in (f"/t/{track.uuid}/", f"/t/{track.uuid}/audio"):
        first = client.get(url)
        assert client.get(url, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
        unchanged = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
        assert unchanged["Content-Usage"] == "train-ai=n"
    before = {url: client.get(url)["ETag"] for url in (f"/t/{track.uuid}/", f"/t/{track.uuid}/audio")}

    change_answer(track, True)

    for url, etag in before.items():
        response = client.get(url, HTTP_IF_NONE_MATCH=etag)
        assert response.status_code == 200, url
        assert response["ETag"] != etag
        assert crawler.from_headers(response.headers)["Content-Usage header"] == GRANTED


def test_audio_answers_head_and_range_with_the_signals(client, make_public_track):
    track = make_public_track("good.mp3")
    copy = DistributionCopy.objects.get(track=track)
    full = b"".join(client.get(f"/t/{track.uuid}/audio").streaming_content)
    assert hashlib.sha256(full).hexdigest() == copy.sha256

    head = client.head(f"/t/{track.uuid}/audio")
    assert head.status_code == 200 and head["Content-Length"] == str(len(full))
    ranged = client.get(f"/t/{track.uuid}/audio", HTTP_RANGE="bytes=10-19")
    assert ranged.status_code == 206 and b"".join(ranged.streaming_content) == full[10:20]
    outside = client.get(f"/t/{track.uuid}/audio", HTTP_RANGE=f"bytes={len(full) + 5}-")
    assert outside.status_code == 416
    for response in (head, ranged, outside):
        assert response["tdm-reservation"] == "1" and response["X-Robots-Tag"] == "noai, noimageai"


def test_a_withdrawal_changes_headers_and_meta_on_the_next_request_and_the_old_copy_is_not_served(
    client, make_public_track, change_answer
):
    track = make_public_track("good.mp3", granted=True)
    granted_copy = DistributionCopy.objects.get(track=track)
    assert granted_copy.embedded_granted is True

    change_answer(track, False, run_on_commit=False)  # the rebuild never runs: no worker

    page = client.get(f"/t/{track.uuid}/")
    assert set(crawler.from_headers(page.headers).values()) == {RESERVED}
    assert crawler.from_meta(page.text)["robots meta"] == RESERVED
    audio = client.get(f"/t/{track.uuid}/audio")
    body = b"".join(audio.streaming_content)
    assert hashlib.sha256(body).hexdigest() == track.sha256  # the original, not the copy that says yes
    assert set(crawler.from_headers(audio.headers).values()) == {RESERVED}
    assert DistributionCopy.objects.get(track=track).status == DistributionCopy.Status.PENDING


def test_what_crawlers_see_is_what_they_get(client, artist, make_public_track):
    track = make_public_track("good.wav")
    client.force_login(artist)
    page = client.get(f"/public/tracks/{track.uuid}/")
    public_page = client.get(f"/t/{track.uuid}/")
    text = page.text

    for name in ("tdm-reservation", "tdm-policy", "Content-Usage", "X-Robots-Tag"):
        assert f"{name}: {public_page[name]}" in text
    for line in public_page.text.splitlines():
        if line.strip().startswith('<meta name="tdm-') or line.strip().startswith('<meta name="robots"'):
            assert escape(line.strip()) in text
    robots = client.get("/robots.txt").text
    assert "Content-Usage: /t/ train-ai=n" in robots and "Content-Usage: /t/ train-ai=n" in text
    assert "&quot;location&quot;: &quot;/t/&quot;, &quot;tdm-reservation&quot;: 1" in text
    assert 'data-copy-state="current"' in text
    assert "RIFF chunk “_PMX”" in text
    assert "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING" in text
    assert "cawg.ai_training=notAllowed" in text
    assert "Trusted" in text  # the copy's signature chains to the configured CA


def test_a_format_without_a_place_for_the_answer_is_served_unchanged_and_says_so(client, artist, make_public_track):
    track = make_public_track("good.ogg")
    assert DistributionCopy.objects.get(track=track).status == DistributionCopy.Status.UNSUPPORTED
    audio = b"".join(client.get(f"/t/{track.uuid}/audio").streaming_content)
    assert hashlib.sha256(audio).hexdigest() == track.sha256
    assert "Ogg Vorbis files have no standard place" in client.get(f"/t/{track.uuid}/").text
    client.force_login(artist)
    manage = client.get(f"/public/tracks/{track.uuid}/").text
    assert 'data-copy-state="unsupported"' in manage and "Not supported for this format" in manage
    assert "cannot carry it inside" in client.get(artist.public_page.get_absolute_url()).text


def test_the_original_upload_is_never_modified(make_public_track, change_answer):
    track = make_public_track("good.m4a", granted=True)
    change_answer(track, False)
    with default_storage.open(track.audio_file.name, "rb") as original:
        assert hashlib.sha256(original.read()).hexdigest() == track.sha256
    copy = DistributionCopy.objects.get(track=track)
    assert copy.file != track.audio_file.name and copy.sha256 != track.sha256


def test_the_track_page_links_to_its_public_settings(client, artist, make_public_track):
    track = make_public_track("good.mp3", public=False)
    client.force_login(artist)
    assert f'href="/public/tracks/{track.uuid}/"' in client.get(f"/tracks/{track.uuid}/").text
