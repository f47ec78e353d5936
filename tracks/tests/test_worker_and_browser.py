"""End-to-end: a real Celery worker process, and a real browser.

Both need committed data (another process, another thread), hence transactional
tests; serialized_rollback puts back the rows that data migrations seeded (the
consent purposes), which the flush after a transactional test would otherwise
remove for every test that runs later.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.utils import wait_until
from tracks.models import Track
from tracks.tests.conftest import FIXTURES, as_upload, stored_files


@pytest.mark.real_worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_upload_becomes_ready_through_a_real_worker(celery_worker_process, artist, client, media):
    client.force_login(artist)

    response = client.post(
        reverse("tracks:upload"),
        {"files": [as_upload("good.flac"), as_upload("good.m4a"), as_upload("truncated.flac")]},
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 200
    outcomes = {r["filename"]: r for r in response.json()["results"]}
    assert outcomes["truncated.flac"]["ok"] is False
    assert {outcomes["good.flac"]["status"], outcomes["good.m4a"]["status"]} == {"processing"}

    def all_settled():
        tracks = list(Track.objects.filter(owner=artist))
        return all(t.is_settled for t in tracks) and tracks

    tracks = wait_until(all_settled, timeout=60, message="the worker to process both tracks")
    assert [t.status for t in tracks] == ["ready", "ready"], celery_worker_process.log()
    for track in tracks:
        assert track.title == "Fixture Tone"
        assert track.artwork.name in stored_files(media)
    assert "tracks.process_track" in celery_worker_process.log()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_browser_uploads_two_files_with_progress_bars_and_sees_both_ready(browser_page, live_server, artist, client):
    client.force_login(artist)
    page = browser_page
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))

    page.goto(reverse("tracks:upload"))
    assert page.locator("[data-dropzone-hint]").is_visible()  # upload.js is running
    page.set_input_files("input[type=file]", [str(FIXTURES / "good.mp3"), str(FIXTURES / "good.opus")])
    assert page.locator("[data-upload-list] progress").count() == 2
    page.get_by_role("button", name="Upload").click()

    items = page.locator("[data-upload-list] .upload-item")
    for index in range(2):
        item = items.nth(index)
        item.locator("[data-track-status-label]", has_text="Ready").wait_for()
        assert item.locator("progress").evaluate("el => el.value") == 100
    assert sorted(items.locator(".upload-item__name").all_inner_texts()) == ["good.mp3", "good.opus"]
    assert not errors, errors

    assert sorted(t.status for t in Track.objects.filter(owner=artist)) == ["ready", "ready"]

    page.get_by_role("link", name="Open “Fixture Tone”").first.click()
    page.locator("audio[controls]").wait_for()
    assert page.locator(".track-status .badge").inner_text() == "Ready"
