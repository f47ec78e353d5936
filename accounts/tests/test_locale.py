"""Each user's language and time zone: from the browser until chosen, then the choice, on every page."""

from __future__ import annotations

import datetime

import pytest
import time_machine
from django.urls import reverse
from django.utils.translation import ngettext, override

from accounts import services
from accounts.locale import language_for, time_zone_for
from accounts.models import User
from accounts.views import _duration

pytestmark = pytest.mark.django_db


def test_an_anonymous_visitor_gets_the_language_the_browser_asks_for(client):
    german = client.get(reverse("landing"), HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5")
    english = client.get(reverse("landing"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    assert german["Content-Language"] == "de"
    assert "Ihre Musik wird nicht genutzt, solange Sie nicht Ja sagen." in german.text
    assert english["Content-Language"] == "en-gb"
    assert "Your music is not used unless you say yes." in english.text


def test_a_language_the_portal_does_not_have_falls_back_to_english(client):
    response = client.get(reverse("landing"), HTTP_ACCEPT_LANGUAGE="ja")

    assert response["Content-Language"] == "en-gb"


def test_until_they_choose_a_user_follows_the_browser_and_it_is_remembered_for_emails(artist, artist_client):
    response = artist_client.get(reverse("accounts:profile"), HTTP_ACCEPT_LANGUAGE="de")

    assert "Profil und Einstellungen" in response.text
    artist.refresh_from_db()
    assert artist.language == ""
    assert artist.browser_language == "de"
    assert language_for(artist) == "de"


def test_a_chosen_language_wins_over_the_browser(artist, artist_client):
    artist.language = "en-gb"
    artist.save(update_fields=["language"])

    response = artist_client.get(reverse("accounts:profile"), HTTP_ACCEPT_LANGUAGE="de")

    assert response["Content-Language"] == "en-gb"
    assert "Profile and settings" in response.text


def test_the_settings_form_saves_language_and_time_zone_and_says_so_in_the_new_language(artist, artist_client):
    response = artist_client.post(
        reverse("accounts:profile"),
        {"display_name": "Ada", "language": "de", "time_zone": "Europe/Berlin"},
        HTTP_ACCEPT_LANGUAGE="en",
        follow=True,
    )

    artist.refresh_from_db()
    assert (artist.language, artist.time_zone) == ("de", "Europe/Berlin")
    assert "Ihre Einstellungen sind gespeichert." in response.text
    assert str(time_zone_for(artist)) == "Europe/Berlin"


def test_an_unknown_time_zone_is_refused_with_a_message_and_nothing_is_saved(artist, artist_client):
    response = artist_client.post(
        reverse("accounts:profile"), {"display_name": "Renamed", "language": "", "time_zone": "Mars/Olympus_Mons"}
    )

    assert response.status_code == 200
    assert "Select a valid choice" in response.text
    artist.refresh_from_db()
    assert (artist.display_name, artist.time_zone) != ("Renamed", "Mars/Olympus_Mons")
    assert artist.time_zone == "UTC"


def test_times_on_pages_are_shown_in_the_users_time_zone(artist, artist_client):
    artist.time_zone = "America/New_York"
    artist.save(update_fields=["time_zone"])
    with time_machine.travel(datetime.datetime(2026, 7, 1, 10, 0, tzinfo=datetime.UTC), tick=False):
        services.request_data_export(user=artist)

    response = artist_client.get(reverse("accounts:data"))

    # 10:00 UTC is 06:00 in New York in July (EDT), in the British English date and time format.
    assert "1 Jul 2026, 6 a.m." in response.text
    assert "America/New_York" in response.text
    assert "10:00" not in response.text


def test_sign_up_keeps_the_browser_time_zone_hint_and_language_and_mails_in_that_language(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("account_signup"),
            {
                "display_name": "Neue Künstlerin",
                "email": "neu@example.test",
                "password1": "ein langes und ungewöhnliches Passwort 7",
                "password2": "ein langes und ungewöhnliches Passwort 7",
                "time_zone": "Europe/Vienna",
            },
            HTTP_ACCEPT_LANGUAGE="de",
        )

    assert response.status_code == 302
    user = User.objects.get(email="neu@example.test")
    assert (user.time_zone, user.browser_language, user.language) == ("Europe/Vienna", "de", "")
    [message] = mailoutbox
    assert message.subject == "Bestätigen Sie Ihre E-Mail-Adresse, um die Registrierung abzuschließen"
    assert "Hallo Neue Künstlerin," in message.body


def test_a_time_zone_hint_the_system_does_not_know_leaves_utc(client):
    client.post(
        reverse("account_signup"),
        {
            "display_name": "Someone",
            "email": "someone@example.test",
            "password1": "a long and unusual passphrase 7",
            "password2": "a long and unusual passphrase 7",
            "time_zone": "<script>",
        },
    )

    assert User.objects.get(email="someone@example.test").time_zone == "UTC"


@pytest.mark.parametrize(
    ("seconds", "english", "german"),
    [
        (86400, "1 day", "1 Tag"),
        (7 * 86400, "7 days", "7 Tagen"),
        (3600, "1 hour", "1 Stunde"),
        (36 * 3600, "36 hours", "36 Stunden"),
        (60, "1 minute", "1 Minute"),
        (90 * 60, "90 minutes", "90 Minuten"),
    ],
)
def test_durations_use_the_plural_form_of_each_language(seconds, english, german):
    with override("en-gb"):
        assert _duration(seconds) == english
    with override("de"):
        assert _duration(seconds) == german


def test_german_plural_messages_choose_the_form_by_count():
    with override("de"):
        one = ngettext(
            "Your consent receipt: %(counter)s change saved", "Your consent receipt: %(counter)s changes saved", 1
        )
        many = ngettext(
            "Your consent receipt: %(counter)s change saved", "Your consent receipt: %(counter)s changes saved", 3
        )
    assert one % {"counter": 1} == "Ihr Einwilligungsbeleg: 1 Änderung gespeichert"
    assert many % {"counter": 3} == "Ihr Einwilligungsbeleg: 3 Änderungen gespeichert"
