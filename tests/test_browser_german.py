"""The German interface end to end: a browser that asks for German, in Berlin, from sign-up to consent receipt.

Controls whose wording belongs to other pages are found by their form fields;
what the test is about (the language of pages and emails, the time zone of
the times they show) is checked word for word.
"""

from __future__ import annotations

import re
import zoneinfo

import pytest
from django.urls import reverse
from django.utils import formats, translation

from accounts.models import User
from consent.models import AuditEvent, Consent
from tests.utils import wait_until
from tracks.models import Track
from tracks.tests.conftest import FIXTURES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
LINK = re.compile(r"http://\S+/accounts/confirm-email/\S+/")


def _text(message) -> str:
    return message.body.replace("\r\n", "\n")


def _receipt_time(receipt_id) -> str:
    """The save's time as the German receipt must word it: Berlin time, German date format."""
    first = AuditEvent.objects.filter(receipt_id=receipt_id).order_by("pk").first()
    assert first is not None
    saved = first.created_at.astimezone(BERLIN)
    with translation.override("de"):
        date = formats.date_format(saved, "DATE_FORMAT")
    return f"Gespeichert am {date} um {saved:%H:%M} (Europe/Berlin)."


def test_a_german_artist_signs_up_uploads_grants_and_gets_german_receipts_in_berlin_time(
    _chromium, live_server, mailoutbox, settings
):
    settings.SITE_URL = live_server.url
    # Playwright's locale sets Accept-Language (and navigator.language); the
    # time zone is what Intl reports to the sign-up page's hint script.
    context = _chromium.new_context(base_url=live_server.url, locale="de-DE", timezone_id="Europe/Berlin")
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    try:
        # Landing page and sign-up, in German because the browser asks for it.
        page.goto("/")
        page.get_by_role("heading", name="Ihre Musik wird nicht genutzt, solange Sie nicht Ja sagen.").wait_for()
        page.get_by_role("link", name="Ihr Künstlerkonto anlegen").click()
        page.get_by_label("Anzeigename").fill("Lena Lied")
        page.locator("input[name=email]").fill("lena@example.test")
        page.locator("input[name=password1]").fill("ein langes und ungewöhnliches Passwort 7")
        page.locator("input[name=password2]").fill("ein langes und ungewöhnliches Passwort 7")
        page.get_by_role("button", name="Registrieren").click()
        page.wait_for_url("**/accounts/confirm-email/")

        user = User.objects.get(email="lena@example.test")
        assert (user.time_zone, user.browser_language, user.language) == ("Europe/Berlin", "de", "")

        # The verification email is German; its link confirms the address.
        [verification] = mailoutbox
        assert verification.subject == "Bestätigen Sie Ihre E-Mail-Adresse, um die Registrierung abzuschließen"
        assert "Hallo Lena Lied," in _text(verification)
        page.goto(LINK.search(verification.body).group(0))
        page.get_by_role("button", name="Bestätigen").click()
        page.wait_for_url("**/dashboard/")

        # Upload one file, allowing recommendation from the start.
        page.goto(reverse("tracks:upload"))
        page.set_input_files("input[type=file]", [str(FIXTURES / "good.flac")])
        page.get_by_label("Empfehlungen").check()
        page.locator("[data-upload-submit]").click()
        track = wait_until(
            lambda: Track.objects.filter(owner=user, status=Track.Status.READY).first(),
            timeout=30,
            message="the upload to be processed",
        )
        upload_receipt = wait_until(
            lambda: next((m for m in mailoutbox if "Einwilligungsbeleg" in m.subject), None),
            timeout=30,
            message="the upload's receipt",
        )
        assert upload_receipt.subject == "Ihr Einwilligungsbeleg für 1 hochgeladenen Track"
        text = _text(upload_receipt)
        assert "Sie haben 1 Track hochgeladen und einige Nutzungen von Anfang an erlaubt." in text
        assert "Empfehlungen:\n  von Anfang an erlaubt für 1 Track: " in text

        # Grant fraud detection on the track's page.
        page.goto(track.get_absolute_url())
        panel = page.locator(f"form[action='{reverse('consent:track_update', args=[track.uuid])}']")
        panel.locator("input[name=purpose][value=fraud_detection]").check()
        panel.locator("button[type=submit]").click()
        wait_until(
            lambda: Consent.objects.filter(track=track, purpose__slug="fraud_detection", granted=True).exists(),
            timeout=15,
            message="the grant to be saved",
        )
        receipt = wait_until(
            lambda: next(
                (m for m in mailoutbox if m.subject == "Ihr Einwilligungsbeleg: 1 Änderung gespeichert"), None
            ),
            timeout=30,
            message="the grant's receipt",
        )
        text = _text(receipt)
        assert "Sie haben geändert, wie Ihre Musik genutzt werden darf. Dies ist Ihr Beleg." in text
        assert f"Betrugserkennung:\n  erlaubt für 1 Track: {track.title}" in text
        grant = AuditEvent.objects.get(track_uuid=track.uuid, purpose_slug="fraud_detection")
        assert _receipt_time(grant.receipt_id) in text
        html = receipt.alternatives[0][0]
        assert '<html lang="de">' in html

        # The audit log page: German, times in Berlin.
        page.goto(reverse("consent:audit_log"))
        page.get_by_role("heading", name="Änderungsprotokoll", exact=True).wait_for()
        assert page.get_by_role("columnheader", name="Wann (Europe/Berlin)").is_visible()
        shown = f"{grant.created_at.astimezone(BERLIN):%H:%M:%S}"
        assert page.get_by_text(shown).first.is_visible()
        assert errors == [], errors
    finally:
        context.close()
