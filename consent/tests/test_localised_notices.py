"""Receipts and notices are written in the recipient's language and time zone, not the worker's."""

from __future__ import annotations

import datetime

import pytest
import time_machine
from django.utils import translation

from consent import services
from tracks.models import Track

pytestmark = pytest.mark.django_db

SAVED_AT = datetime.datetime(2027, 1, 15, 12, 0, tzinfo=datetime.UTC)


def _grant(artist, track, django_capture_on_commit_callbacks, **changes):
    # The worker (and this test) runs in English: the email must not follow it.
    with (
        translation.override("en-gb"),
        time_machine.travel(SAVED_AT, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.change_consent(actor=artist, tracks=Track.objects.filter(pk=track.pk), changes=changes, source="web")


def _text(message) -> str:
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def test_a_receipt_is_in_the_language_and_time_zone_the_artist_chose(
    artist, make_track, smtp_server, django_capture_on_commit_callbacks
):
    artist.language, artist.time_zone = "de", "Europe/Berlin"
    artist.save(update_fields=["language", "time_zone"])
    track = make_track(owner=artist, title="Nachtlied")

    _grant(artist, track, django_capture_on_commit_callbacks, recommendation=True, fraud_detection=True)

    [message] = smtp_server.messages
    assert message["Subject"] == "Ihr Einwilligungsbeleg: 2 Änderungen gespeichert"
    text = _text(message)
    assert f"Hallo {artist.display_name}," in text
    assert "Empfehlungen:\n  erlaubt für 1 Track: Nachtlied" in text
    assert "Betrugserkennung:" in text
    # 12:00 UTC is 13:00 in Berlin in January, in German date format.
    assert "Gespeichert am 15. Januar 2027 um 13:00 (Europe/Berlin)." in text
    html = message.get_body(("html",)).get_content()
    assert '<html lang="de">' in html
    assert "Diese Änderung im Änderungsprotokoll ansehen" in html


def test_an_artist_who_never_chose_gets_the_language_their_browser_last_asked_for(
    artist, make_track, smtp_server, django_capture_on_commit_callbacks
):
    artist.browser_language = "de"
    artist.save(update_fields=["browser_language"])
    track = make_track(owner=artist)

    _grant(artist, track, django_capture_on_commit_callbacks, recommendation=True)

    [message] = smtp_server.messages
    assert message["Subject"] == "Ihr Einwilligungsbeleg: 1 Änderung gespeichert"
    assert "Gespeichert am 15. Januar 2027 um 12:00 (UTC)." in _text(message)


def test_an_english_receipt_shows_the_time_in_the_artists_own_time_zone(
    artist, make_track, smtp_server, django_capture_on_commit_callbacks
):
    artist.time_zone = "Asia/Tokyo"
    artist.save(update_fields=["time_zone"])
    track = make_track(owner=artist)

    with translation.override("de"):
        _grant(artist, track, django_capture_on_commit_callbacks, recommendation=True)

    [message] = smtp_server.messages
    assert message["Subject"] == "Your consent receipt: 1 change saved"
    # 12:00 UTC is 21:00 in Tokyo.
    assert "Saved on 15 Jan 2027 at 21:00 (Asia/Tokyo)." in _text(message)


def test_a_change_made_on_the_artists_behalf_names_the_actor_in_the_artists_language(
    artist, staff_user, make_track, smtp_server, django_capture_on_commit_callbacks
):
    artist.language = "de"
    artist.save(update_fields=["language"])
    track = make_track(owner=artist, title="Morgen")
    _grant(artist, track, django_capture_on_commit_callbacks, recommendation=True)
    smtp_server.messages.clear()

    with translation.override("en-gb"), django_capture_on_commit_callbacks(execute=True):
        services.change_consent(
            actor=staff_user,
            tracks=Track.objects.filter(pk=track.pk),
            changes={"recommendation": False},
            source="admin",
        )

    [message] = smtp_server.messages
    assert message["Subject"] == "Das Portal-Team hat 1 Einwilligung für Ihre Tracks geändert"
    assert "widerrufen für 1 Track: Morgen" in _text(message)


def test_one_batch_writes_each_email_in_its_own_recipients_language_and_time_zone(
    make_user, make_track, smtp_server, django_capture_on_commit_callbacks
):
    """A batch switches to each locale once (notifications.rendering.MessageBuilder.by_locale): artists whose
    locales alternate within one batch still each get their own."""
    from notifications.models import Notification
    from notifications.tasks import deliver_notifications

    locales = [("de", "Europe/Berlin"), ("", "Asia/Tokyo"), ("de", "Asia/Tokyo"), ("de", "Europe/Berlin"), ("", "UTC")]
    artists = []
    for n, (language, time_zone) in enumerate(locales):
        artist = make_user(display_name=f"Artist {n}", language=language, time_zone=time_zone)
        track = make_track(owner=artist, title=f"Track {n}")
        # Queued, not sent: the batch below sends them together.
        with translation.override("en-gb"), time_machine.travel(SAVED_AT, tick=False):
            services.change_consent(
                actor=artist, tracks=Track.objects.filter(pk=track.pk), changes={"recommendation": True}, source="web"
            )
        artists.append(artist)
    ids = list(
        Notification.objects.filter(recipient__in=artists, kind=Notification.Kind.CONSENT_RECEIPT)
        .order_by("id")
        .values_list("id", flat=True)
    )
    assert len(ids) == len(artists)
    smtp_server.messages.clear()

    with time_machine.travel(SAVED_AT, tick=False):  # when they were queued: due, not in the future
        deliver_notifications.run(ids)

    by_recipient = {m["To"]: _text(m).split("\n") for m in smtp_server.messages}
    expected = [
        "Gespeichert am 15. Januar 2027 um 13:00 (Europe/Berlin).",
        "Saved on 15 Jan 2027 at 21:00 (Asia/Tokyo).",
        "Gespeichert am 15. Januar 2027 um 21:00 (Asia/Tokyo).",
        "Gespeichert am 15. Januar 2027 um 13:00 (Europe/Berlin).",
        "Saved on 15 Jan 2027 at 12:00 (UTC).",
    ]
    assert sorted(by_recipient) == sorted(a.email for a in artists)
    for artist, line in zip(artists, expected, strict=True):
        assert line in by_recipient[artist.email], (artist.email, line)
