"""End-to-end: a real Celery worker process, and a real browser.

Both need committed data (another process, another thread), hence transactional
tests; consent.testing puts back the rows that data migrations seeded (the
consent purposes, the policy versions) after the flush that follows each one.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.utils import wait_until
from tracks.models import Track
from tracks.tests.conftest import FIXTURES, as_upload, stored_files


@pytest.mark.real_worker
@pytest.mark.django_db(transaction=True)
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
@pytest.mark.django_db(transaction=True)
def test_browser_uploads_two_files_with_progress_bars_and_sees_both_ready(
    browser_page, live_server, artist, client, sign_in_browser, page_errors
):
    page = browser_page
    sign_in_browser(page, artist)
    errors = page_errors
    audio_statuses = []
    page.on("response", lambda r: "/audio/" in r.url and audio_statuses.append(r.status))

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
    # The player gets the stream through the authorised view and can seek in it (Range requests).
    # (Polled from here: wait_for_function would need 'unsafe-eval', which the CSP rightly refuses.)
    audio = page.locator("audio")
    wait_until(lambda: audio.evaluate("el => el.readyState >= 1"), timeout=15, message="audio metadata")
    assert 1.4 < audio.evaluate("el => el.duration") < 1.7
    audio.evaluate("el => { el.currentTime = 1.2; }")
    wait_until(lambda: audio.evaluate("el => !el.seeking"), timeout=15, message="the seek to finish")
    assert audio.evaluate("el => el.error") is None
    assert audio.evaluate("el => el.currentTime") > 1
    assert 206 in audio_statuses, audio_statuses


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_track_page_refreshes_itself_when_processing_finishes(
    browser_page, live_server, artist, client, sign_in_browser
):
    from tracks import services
    from tracks.tasks import process_track

    track = services.create_track(owner=artist, upload=as_upload("good.flac"))
    page = browser_page
    sign_in_browser(page, artist)
    # With eager Celery the task ran on commit; put the track back to "processing" to watch it settle.
    Track.objects.filter(pk=track.pk).update(status=Track.Status.PROCESSING, title="good", album="")

    page.goto(track.get_absolute_url())
    assert page.locator(".track-status .badge").inner_text() == "Processing"
    assert page.get_by_role("link", name="Refresh").is_visible()

    process_track(track.pk)

    page.locator(".track-status .badge", has_text="Ready").wait_for()
    page.get_by_role("heading", name="Fixture Tone").wait_for()
    assert not page.get_by_role("link", name="Refresh").count()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_upload_form_works_with_javascript_off(_chromium, live_server, artist, client, media, sign_in_browser):
    client.force_login(artist)
    context = _chromium.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        sign_in_browser(context, artist)
        page = context.new_page()
        page.goto(reverse("tracks:upload"))
        assert page.locator("[data-dropzone-hint]").is_hidden()
        page.set_input_files("input[type=file]", [str(FIXTURES / "good.m4a"), str(FIXTURES / "page.mp3")])
        page.get_by_role("button", name="Upload").click()

        page.get_by_role("heading", name="What happened to your files").wait_for()
        results = page.locator(".upload-results .upload-item")
        assert results.count() == 2
        assert "Ready to play." in results.nth(0).inner_text()
        assert "Not uploaded: This is a web page (HTML), not audio." in results.nth(1).inner_text()
    finally:
        context.close()
    assert [t.original_filename for t in Track.objects.filter(owner=artist)] == ["good.m4a"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_files_dropped_on_the_form_upload_with_their_own_answers(
    browser_page, live_server, artist, client, sign_in_browser
):
    import base64

    page = browser_page
    sign_in_browser(page, artist)
    page.goto(reverse("tracks:upload"))
    files = [[name, base64.b64encode((FIXTURES / name).read_bytes()).decode()] for name in ("good.wav", "photo.mp3")]
    transfer = page.evaluate_handle(
        """files => {
            const transfer = new DataTransfer();
            for (const [name, encoded] of files) {
                const bytes = Uint8Array.from(atob(encoded), c => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name));
            }
            return transfer;
        }""",
        files,
    )
    page.dispatch_event("[data-dropzone]", "dragover", {"dataTransfer": transfer})
    assert "dropzone--active" in page.locator("[data-dropzone]").get_attribute("class")
    page.dispatch_event("[data-dropzone]", "drop", {"dataTransfer": transfer})
    page.get_by_role("button", name="Upload").click()

    items = page.locator("[data-upload-list] .upload-item")
    items.nth(0).locator("[data-track-status-label]", has_text="Ready").wait_for()
    items.nth(1).get_by_role("alert").wait_for()
    assert "Not uploaded: This is a JPEG image, not audio." in items.nth(1).inner_text()
    assert [t.original_filename for t in Track.objects.filter(owner=artist)] == ["good.wav"]
