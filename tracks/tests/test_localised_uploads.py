"""Why a file was refused, in the artist's language: on the upload page and when a worker fails it later."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from tracks import tasks
from tracks.models import Track

pytestmark = pytest.mark.django_db


def test_a_refused_upload_says_why_in_the_language_the_browser_asks_for(upload_track):
    response = upload_track("empty.mp3", "text.mp3", "photo.mp3", json=True, HTTP_ACCEPT_LANGUAGE="de")

    messages = {r["filename"]: r["message"] for r in response.json()["results"]}
    assert messages["empty.mp3"].startswith("Die Datei ist leer (0 Byte).")
    assert messages["text.mp3"].startswith("Das ist eine Textdatei, kein Audio.")
    assert messages["photo.mp3"].startswith("Das ist ein JPEG-Bild, kein Audio.")
    assert "Erlaubte Formate: MP3, FLAC, WAV, AIFF, Ogg Vorbis, Opus oder M4A (AAC)." in messages["photo.mp3"]


def test_a_worker_records_a_processing_failure_in_the_owners_language(artist, ready_track):
    artist.language = "de"
    artist.save(update_fields=["language"])
    Track.objects.filter(pk=ready_track.pk).update(status=Track.Status.PROCESSING)
    default_storage.delete(ready_track.audio_file.name)

    assert tasks.process_track(ready_track.pk) == "failed"

    ready_track.refresh_from_db()
    assert ready_track.failure_reason == (
        "Die hochgeladene Datei wurde im Speicher nicht gefunden. Löschen Sie den Track und laden Sie ihn erneut hoch."
    )
