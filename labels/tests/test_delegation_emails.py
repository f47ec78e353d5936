"""Delegation emails are worded when rendered, in each recipient's language, from stored facts."""

from __future__ import annotations

import pytest
from django.utils import translation

from labels import services
from labels.models import Delegation
from notifications.models import Notification

pytestmark = pytest.mark.django_db


def _text(message) -> str:
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def test_the_same_change_reaches_a_german_artist_in_german_and_an_english_manager_in_english(
    artist, label_setup, smtp_server, django_capture_on_commit_callbacks
):
    label, manager, delegate = label_setup
    artist.language = "de"
    artist.save(update_fields=["language"])
    manager.language = "en-gb"
    manager.save(update_fields=["language"])
    delegation = delegate(artist, {"recommendation": "grant_withdraw", "fraud_detection": "withdraw"})
    smtp_server.messages.clear()

    # Ended by the German artist in a German request: the manager's email is English all the same.
    with translation.override("de"), django_capture_on_commit_callbacks(execute=True):
        services.end_delegation(artist=artist, delegation=Delegation.objects.get(pk=delegation.pk))

    stored = Notification.objects.filter(kind="delegation_changed").latest("pk").context
    assert stored["event"] == "ended" and "headline" not in stored  # the facts, not a sentence
    [to_artist] = smtp_server.to(artist.email)
    [to_manager] = smtp_server.to(manager.email)
    name = artist.display_name or artist.email
    assert to_artist["Subject"] == f"{name} hat die Delegation an {label.name} beendet"
    assert "Status: Beendet" in _text(to_artist)
    assert to_manager["Subject"] == f"{name} ended the delegation to {label.name}"
    assert "Status: Ended" in _text(to_manager)


def test_scopes_are_worded_in_the_recipients_language(
    artist, label_setup, smtp_server, django_capture_on_commit_callbacks
):
    _, manager, delegate = label_setup
    artist.language = "de"
    artist.save(update_fields=["language"])
    with django_capture_on_commit_callbacks(execute=True):
        delegate(artist, {"recommendation": "grant_withdraw", "fraud_detection": "withdraw"})
    german = _text(smtp_server.to(artist.email)[-1])
    english = _text(smtp_server.to(manager.email)[-1])
    assert "Nur widerrufen" in german or "Erteilen und widerrufen" in german
    assert "Grant and withdraw" in english and "Withdraw only" in english
