"""The consent pages in a real Chromium: with JavaScript, and without it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from consent.models import Consent
from notifications.models import Notification
from tracks.models import Track

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, client, live_server, artist):
    client.force_login(artist)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


def granted(artist) -> set[tuple[str, str]]:
    return set(Consent.objects.filter(track__owner=artist, granted=True).values_list("track__title", "purpose__slug"))


def test_matrix_with_javascript_ticks_a_column_and_confirms_generative_training(
    browser_page, live_server, client, artist, make_track
):
    make_track(owner=artist, title="Alpha")
    make_track(owner=artist, title="Beta")
    page = browser_page
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # CSP violations are reported as console errors; the 400 is the refused
    # confirmation below, which is expected.
    page.on("console", lambda msg: msg.type == "error" and "status of 400" not in msg.text and errors.append(msg.text))
    sign_in(page, client, live_server, artist)

    page.goto(reverse("consent:matrix"))
    page.get_by_role("button", name="all (tick for every track on this page: Recommendation)", exact=True).click()
    page.get_by_label("Allow Generative AI training for Alpha").check()
    page.get_by_role("button", name="Save this page").click()

    page.wait_for_url("**/consent/confirm/**")
    assert granted(artist) == {("Alpha", "recommendation"), ("Beta", "recommendation")}
    assert page.get_by_text("Nothing has been granted yet").is_visible()
    page.get_by_role("button", name="Allow Generative AI training", exact=True).click()
    assert page.get_by_text("Tick the box to confirm").is_visible()
    assert ("Alpha", "generative_training") not in granted(artist)

    page.get_by_label("I understand, and I allow Generative AI training on this track.").check()
    page.get_by_role("button", name="Allow Generative AI training", exact=True).click()
    page.wait_for_url("**/consent/")
    assert ("Alpha", "generative_training") in granted(artist)
    assert errors == []


def test_matrix_and_track_panel_work_without_javascript(_chromium, live_server, client, artist, make_track):
    track = make_track(owner=artist, title="Gamma")
    context = _chromium.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        sign_in(page, client, live_server, artist)

        page.goto(reverse("consent:matrix"))
        page.get_by_label("Allow Fraud detection for Gamma").check()
        page.get_by_role("button", name="Save this page").click()
        page.wait_for_load_state()
        assert granted(artist) == {("Gamma", "fraud_detection")}
        assert page.get_by_text("Fraud detection allowed on 1 track").is_visible()

        page.goto(reverse("tracks:detail", kwargs={"uuid": track.uuid}))
        page.get_by_label("Fraud detection").uncheck()
        page.get_by_role("button", name="Save choices for this track").click()
        page.wait_for_load_state()
        assert granted(artist) == set()
        assert Track.objects.filter(pk=track.pk).exists()
    finally:
        context.close()


def test_upload_with_javascript_sends_the_opt_in_choice(browser_page, live_server, client, artist):
    from pathlib import Path

    from consent.models import AuditEvent

    media = Path(__file__).resolve().parents[2] / "tracks" / "tests" / "fixtures"
    page = browser_page
    sign_in(page, client, live_server, artist)
    page.goto(reverse("tracks:upload"))
    assert page.locator("[data-dropzone-hint]").is_visible()  # upload.js is running
    page.get_by_label("Recommendation").check()
    page.set_input_files("input[type=file]", [str(media / "good.mp3"), str(media / "good.flac")])
    page.get_by_role("button", name="Upload").click()
    page.locator("[data-upload-list] .upload-item a").nth(1).wait_for()

    tracks = Track.objects.filter(owner=artist)
    assert tracks.count() == 2
    assert set(Consent.objects.filter(track__in=tracks, granted=True).values_list("purpose__slug", flat=True)) == {
        "recommendation"
    }
    assert set(AuditEvent.objects.filter(artist=artist).values_list("kind", "source")) == {
        ("track_uploaded", "upload"),
        ("consent_changed", "upload"),
    }
    # Two files in one upload: one consent save, one receipt.
    assert Notification.objects.filter(recipient=artist, kind=Notification.Kind.CONSENT_RECEIPT).count() == 1
