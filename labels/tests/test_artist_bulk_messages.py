"""The artist's own bulk changes: refusals in the artist's language, and what happens to the changes when
the account is deleted."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from consent.models import Consent, Purpose
from consent.services import ConfirmationRequired
from labels import bulk as bulk_changes
from labels.models import BulkChange
from tracks.models import Track

pytestmark = pytest.mark.django_db


def test_a_german_artist_is_told_in_german_that_the_grant_needs_its_confirmation(artist, client, make_track):
    for n in range(3):
        make_track(owner=artist, title=f"Lied {n}")
    artist.language = "de"
    artist.save(update_fields=["language"])
    client.force_login(artist)
    with translation.override("en-gb"):
        client.post(
            reverse("own_bulk:preview"),
            {"scope": "all", "bulk_purpose": "generative_training", "bulk_action": "grant"},
        )
    draft = BulkChange.objects.get(artist=artist)
    # The middleware leaves the German it activated behind; the override puts back what was there.
    with translation.override("en-gb"):
        page = client.post(reverse("own_bulk:confirm", args=[draft.pk]), follow=True).content.decode()
    assert "Die Erlaubnis für Training generativer KI braucht eine eigene Bestätigung" in page
    assert not Consent.objects.filter(granted=True).exists()


def test_consent_refusals_use_plural_forms_in_both_languages():
    purposes = list(Purpose.objects.filter(requires_confirmation=True)[:1])
    with translation.override("de"):
        assert "braucht eine eigene, ausdrückliche Bestätigung" in ConfirmationRequired(purposes).message
    with translation.override("en-gb"):
        assert ConfirmationRequired(purposes).message.endswith("needs its own explicit confirmation.")


def test_deleting_the_account_removes_the_artists_own_bulk_changes_and_their_undo(artist, make_track):
    from accounts.services import delete_account

    make_track(owner=artist, title="Gone")
    bulk = bulk_changes.preview_bulk_edit(
        actor=artist,
        artist=artist,
        tracks=Track.objects.filter(owner=artist),
        changes={"recommendation": True},
        filter_params={},
        selection=None,
    )
    bulk_changes.confirm_bulk_change(actor=artist, bulk_change=bulk)
    bulk.refresh_from_db()
    undo = bulk_changes.undo_bulk_change(actor=artist, bulk_change=bulk)
    assert undo.status == BulkChange.Status.DONE

    delete_account(user=artist, actor=artist)
    assert not BulkChange.objects.filter(pk__in=[bulk.pk, undo.pk]).exists()


def test_the_services_permission_refusals_are_in_the_readers_language():
    from consent.services import ConsentPermissionDenied

    with translation.override("de"):
        assert (
            ConsentPermissionDenied.on_tracks(3).message
            == "Sie dürfen die Einwilligung für 3 dieser Tracks nicht ändern."
        )
        assert "niemals erteilen" in ConsentPermissionDenied.staff_grant().message
    with translation.override("en-gb"):
        assert ConsentPermissionDenied.on_tracks(1).message == "You may not change consent on 1 of these tracks."


def test_a_refusal_reason_recorded_in_english_is_shown_in_the_readers_language(artist, client, make_track):
    make_track(owner=artist, title="Lied")
    bulk = bulk_changes.preview_bulk_edit(
        actor=artist,
        artist=artist,
        tracks=Track.objects.filter(owner=artist),
        changes={"recommendation": True},
        filter_params={},
        selection=None,
    )
    BulkChange.objects.filter(pk=bulk.pk).update(
        refused=1, refused_detail=[{"artist": "", "purpose": "", "tracks": 1, "reason": "the track was deleted"}]
    )
    artist.language = "de"
    artist.save(update_fields=["language"])
    client.force_login(artist)
    with translation.override("en-gb"):
        page = client.get(reverse("own_bulk:detail", args=[bulk.pk])).content.decode()
    assert "der Track wurde gelöscht" in page
    assert "the track was deleted" not in page
