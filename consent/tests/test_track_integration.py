"""Consent where tracks are created and deleted: the upload form, the track page, deletion."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from consent import selectors, services
from consent.models import AuditEvent, Consent
from tracks.models import Track

pytestmark = pytest.mark.django_db

MEDIA = Path(__file__).resolve().parents[2] / "tracks" / "tests" / "fixtures"


def upload(client, name="good.mp3", **data):
    file = SimpleUploadedFile(name, (MEDIA / name).read_bytes(), content_type="audio/mpeg")
    return client.post(reverse("tracks:upload"), {"files": [file], **data}, REMOTE_ADDR="198.51.100.4")


def test_an_uploaded_track_has_nothing_granted_and_its_upload_is_logged(
    artist_client, artist, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(artist_client)
    assert response.status_code == 200
    track = Track.objects.get(owner=artist)
    assert not Consent.objects.filter(track=track).exists()
    event = AuditEvent.objects.get(artist=artist)
    assert (event.kind, event.source, event.track_uuid, event.ip) == (
        "track_uploaded",
        "upload",
        track.uuid,
        "198.51.100.4",
    )


def test_the_upload_form_offers_opt_in_unticked_and_never_generative_training(artist_client):
    html = artist_client.get(reverse("tracks:upload")).content.decode()
    assert 'name="consent" value="recommendation"' in html
    assert 'value="generative_training"' not in html
    assert not re.search(r"<input[^>]*\schecked[\s>=]", html)


def test_choices_on_the_upload_form_are_granted_and_audited(artist_client, artist, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(artist_client, consent=["fraud_detection"])
    track = Track.objects.get(owner=artist)
    assert selectors.granted_slugs([track.pk]) == {(track.pk, "fraud_detection")}
    event = AuditEvent.objects.get(kind="consent_changed")
    assert (event.source, event.purpose_slug, event.new_value) == ("upload", "fraud_detection", "granted")


def test_generative_training_cannot_be_smuggled_through_the_upload_form(artist_client, artist):
    response = upload(artist_client, consent=["generative_training"])
    assert response.status_code == 400
    assert not Track.objects.exists() and not Consent.objects.exists()


def test_upload_defaults_apply_to_new_uploads_only_when_set(artist_client, artist, django_capture_on_commit_callbacks):
    services.set_upload_defaults(
        actor=artist, artist=artist, choices={"generative_training": True}, confirmed_purposes={"generative_training"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        upload(artist_client)
    track = Track.objects.get(owner=artist)
    assert selectors.granted_slugs([track.pk]) == {(track.pk, "generative_training")}
    assert AuditEvent.objects.get(kind="consent_changed").source == "account_default"


def test_track_page_shows_the_consent_panel_to_its_owner(artist_client, artist, make_track):
    track = make_track(owner=artist)
    html = artist_client.get(reverse("tracks:detail", kwargs={"uuid": track.uuid})).content.decode()
    assert "How this track may be used" in html
    assert reverse("consent:track_update", args=[track.uuid]) in html


def test_deleting_a_track_through_the_tracks_page_keeps_its_history(artist_client, artist, make_track):
    track = make_track(owner=artist, title="Gone but logged")
    services.change_consent(
        actor=artist, tracks=Track.objects.filter(pk=track.pk), changes={"recommendation": True}, source="web"
    )
    response = artist_client.post(reverse("tracks:delete", kwargs={"uuid": track.uuid}))
    assert response.status_code == 302
    assert not Track.objects.filter(pk=track.pk).exists()
    assert not Consent.objects.exists()
    kinds = list(
        AuditEvent.objects.order_by("seq").values_list("kind", "subject_data__track_title", "new_value", "actor_id")
    )
    # The grant is withdrawn (and logged as such) before the track goes.
    assert kinds == [
        ("consent_changed", "Gone but logged", "granted", artist.pk),
        ("consent_changed", "Gone but logged", "not_granted", artist.pk),
        ("track_deleted", "Gone but logged", "", artist.pk),
    ]
    assert selectors.verify_chains().ok
    # The deleted track's history is still on the artist's audit log page.
    log = artist_client.get(f"{reverse('consent:audit_log')}?track={track.uuid}").content.decode()
    assert "Gone but logged" in log and "Track deleted" in log


def test_track_list_links_to_the_consent_matrix(artist_client, artist, make_track):
    make_track(owner=artist)
    html = artist_client.get(reverse("tracks:list")).content.decode()
    assert f'href="{reverse("consent:matrix")}"' in html
