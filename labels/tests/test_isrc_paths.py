"""One ISRC, however it is written: a tag, the edit form and a label's CSV agree."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from mutagen.id3 import ID3, TSRC

from tracks.models import Track
from tracks.tests.conftest import fixture_bytes

SPELLINGS = ["GB AYE 25 00001", "gb-aye-25-00001", "GBAYE2500001", "ISRC: GB\u2013AYE\u201325\u201300001"]
CODE = "GBAYE2500001"


def _mp3_tagged_with(isrc: str) -> SimpleUploadedFile:
    data = io.BytesIO(fixture_bytes("good.mp3"))
    tags = ID3(data)
    tags.setall("TSRC", [TSRC(encoding=3, text=[isrc])])
    data.seek(0)
    tags.save(data)
    return SimpleUploadedFile("tagged.mp3", data.getvalue(), content_type="audio/mpeg")


def _through_a_tag(spelling, *, artist, client, django_capture_on_commit_callbacks, **_) -> str:
    client.force_login(artist)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("tracks:upload"), {"files": [_mp3_tagged_with(spelling)]})
    assert response.status_code == 200, response.content
    track = Track.objects.get(owner=artist)
    assert track.status == Track.Status.READY, track.failure_reason
    return track.isrc


def _through_the_form(spelling, *, artist, client, make_tracks, **_) -> str:
    (track,) = make_tracks(1, owner=artist)
    client.force_login(artist)
    response = client.post(
        reverse("tracks:edit", kwargs={"uuid": track.uuid}),
        {"title": track.title, "artist_name": "", "album": "", "year": "", "isrc": spelling},
    )
    assert response.status_code == 302, response.content
    track.refresh_from_db()
    return track.isrc


def _through_a_csv(spelling, *, artist, client, make_tracks, label_setup, **_) -> str:
    label, manager, delegate = label_setup
    (track,) = make_tracks(1, owner=artist)
    Track.objects.filter(pk=track.pk).update(isrc=CODE)
    delegate(artist, {"recommendation": "grant_withdraw"})
    body = f'isrc,recommendation\n"{spelling}",granted\n'.encode()
    client.force_login(manager)
    response = client.post(
        f"/labels/{label.slug}/import/",
        {"file": SimpleUploadedFile("import.csv", body, content_type="text/csv")},
    )
    assert response.status_code == 200
    report = response.context["report"]
    assert report.errors == [], report.errors
    assert report.will_change == 1
    # The row found the track stored under the normalised code.
    return Track.objects.get(pk=track.pk).isrc


PATHS: dict[str, Callable[..., str]] = {"tag": _through_a_tag, "form": _through_the_form, "csv": _through_a_csv}


@pytest.mark.django_db
@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("path", PATHS)
def test_every_spelling_of_an_isrc_is_one_code_on_every_path(
    path, spelling, artist, client, make_tracks, label_setup, django_capture_on_commit_callbacks
):
    stored = PATHS[path](
        spelling,
        artist=artist,
        client=client,
        make_tracks=make_tracks,
        label_setup=label_setup,
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )
    assert stored == CODE
