"""Every consent change an artist must know about is queued with the change."""

import json

import pytest
from django.urls import reverse

from consent import services
from consent.models import AuditEvent
from consent.selectors import chain_head
from notifications.models import Notification
from tracks.models import Track

pytestmark = pytest.mark.django_db


def test_a_save_of_5000_consents_produces_one_email_with_the_receipt_attached(
    artist, make_tracks, smtp_server, django_capture_on_commit_callbacks
):
    make_tracks(2_500, owner=artist)

    with django_capture_on_commit_callbacks(execute=True):
        result = services.change_consent(
            actor=artist,
            tracks=Track.objects.filter(owner=artist),
            changes={"recommendation": True, "fraud_detection": True},
            source="web",
        )

    assert result.event_count == 5_000
    [message] = smtp_server.messages
    assert message["Subject"] == "Your consent receipt: 5000 changes saved"
    text = message.get_body(("plain",)).get_content()
    assert "allowed on 2500 tracks" in text
    assert chain_head(artist.pk).hash in text
    [attachment] = list(message.iter_attachments())
    receipt = json.loads(attachment.get_content())
    assert receipt["receipt_id"] == str(result.receipt_id)
    assert receipt["chain"]["head_hash_after_change"] == chain_head(artist.pk).hash
    assert {p["purpose"]: p["tracks_affected"] for p in receipt["purposes"]} == {
        "recommendation": 2_500,
        "fraud_detection": 2_500,
    }


def test_a_save_that_changes_nothing_sends_nothing(artist, make_track, smtp_server, django_capture_on_commit_callbacks):
    track = make_track(owner=artist)

    with django_capture_on_commit_callbacks(execute=True):
        services.change_consent(
            actor=artist, tracks=Track.objects.filter(pk=track.pk), changes={"recommendation": False}, source="web"
        )

    assert not Notification.objects.exists()
    assert smtp_server.messages == []


def test_a_staff_withdrawal_tells_the_artist_it_was_made_on_their_behalf(
    artist, staff_user, make_track, smtp_server, django_capture_on_commit_callbacks
):
    track = make_track(owner=artist, title="Night Drive")
    one = Track.objects.filter(pk=track.pk)
    services.change_consent(actor=artist, tracks=one, changes={"recommendation": True}, source="web")
    Notification.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        services.change_consent(actor=staff_user, tracks=one, changes={"recommendation": False}, source="admin")

    row = Notification.objects.get()
    assert row.kind == Notification.Kind.CHANGED_ON_BEHALF
    assert row.recipient == artist
    [message] = smtp_server.messages
    text = message.get_body(("plain",)).get_content()
    assert "Portal staff changed how your music may be used" in text
    assert "withdrawn on 1 track: Night Drive" in text


def test_the_email_links_to_the_audit_log_filtered_to_that_save(
    artist, artist_client, make_track, smtp_server, django_capture_on_commit_callbacks
):
    track = make_track(owner=artist)
    with django_capture_on_commit_callbacks(execute=True):
        result = services.change_consent(
            actor=artist, tracks=Track.objects.filter(pk=track.pk), changes={"recommendation": True}, source="web"
        )
    link = f"{reverse('consent:audit_log')}?receipt={result.receipt_id}"
    assert link in smtp_server.messages[0].get_body(("plain",)).get_content()

    # Another save, which the filtered log must leave out.
    services.change_consent(
        actor=artist, tracks=Track.objects.filter(pk=track.pk), changes={"fraud_detection": True}, source="web"
    )

    page = artist_client.get(link)

    assert page.status_code == 200
    shown = [event.pk for event in page.context["page"].object_list]
    assert shown == list(AuditEvent.objects.filter(receipt_id=result.receipt_id).values_list("pk", flat=True))


def test_changing_upload_defaults_sends_a_receipt_about_future_uploads(
    artist, smtp_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.set_upload_defaults(actor=artist, artist=artist, choices={"recommendation": True})

    [message] = smtp_server.messages
    assert message["Subject"] == "Your consent receipt: 1 change saved"
    text = message.get_body(("plain",)).get_content()
    assert "Recommendation:\n  allowed on your future uploads, from now on" in text.replace("\r\n", "\n")
    assert chain_head(artist.pk).hash in text


def test_confirming_grants_again_under_new_terms_sends_a_receipt(
    artist, artist_client, make_track, purposes, new_policy_version, smtp_server, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from consent import policy

    track = make_track(owner=artist, title="Old Song")
    services.change_consent(
        actor=artist,
        tracks=Track.objects.filter(pk=track.pk),
        changes={"generative_training": True},
        source="web",
        confirmed_purposes=["generative_training"],
    )
    version = new_policy_version(summary="s", full_text="t", effective_at=timezone.now() + timedelta(days=9))
    version.purposes_changed.set([purposes["generative_training"]])
    policy.publish_policy_version(version=version)
    smtp_server.messages.clear()

    with django_capture_on_commit_callbacks(execute=True):
        artist_client.post(reverse("policy:reconfirm", args=[version.version]))

    [message] = smtp_server.to(artist.email)
    text = message.get_body(("plain",)).get_content()
    assert "confirmed again under the new terms on 1 track: Old Song" in text


def test_one_upload_of_several_files_with_defaults_and_a_ticked_use_sends_one_receipt_listing_every_file(
    artist, artist_client, smtp_server, django_capture_on_commit_callbacks
):
    from tracks.tests.conftest import as_upload

    services.set_upload_defaults(actor=artist, artist=artist, choices={"recommendation": True})
    smtp_server.messages.clear()
    files = [as_upload(name) for name in ("good.mp3", "good.flac", "good.wav")]

    with django_capture_on_commit_callbacks(execute=True):
        response = artist_client.post(reverse("tracks:upload"), {"files": files, "consent": ["fraud_detection"]})

    assert response.status_code == 200
    assert Track.objects.filter(owner=artist).count() == 3
    # One upload action, one consent save: one receipt.
    events = AuditEvent.objects.filter(artist=artist, kind=AuditEvent.Kind.CONSENT_CHANGED)
    assert events.count() == 6
    assert len(set(events.values_list("receipt_id", flat=True))) == 1
    assert set(events.values_list("purpose_slug", "source")) == {
        ("recommendation", "account_default"),
        ("fraud_detection", "upload"),
    }
    assert Notification.objects.filter(recipient=artist, kind=Notification.Kind.CONSENT_RECEIPT).count() == 2
    [message] = smtp_server.messages
    assert message["Subject"] == "Your consent receipt for 3 uploaded tracks"
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "You uploaded 3 tracks" in text
    for purpose in ("Recommendation", "Fraud detection"):
        assert f"{purpose}:\n  allowed from the start on 3 tracks: good, good, good" in text
    [attachment] = list(message.iter_attachments())
    receipt = json.loads(attachment.get_content())
    assert {p["purpose"]: p["tracks_affected"] for p in receipt["purposes"]} == {
        "recommendation": 3,
        "fraud_detection": 3,
    }


def test_an_upload_that_fails_to_save_keeps_no_track_and_sends_no_receipt(
    artist, artist_client, smtp_server, django_capture_on_commit_callbacks, monkeypatch, _isolated_media
):
    from tracks.tests.conftest import as_upload, stored_files

    services.set_upload_defaults(actor=artist, artist=artist, choices={"recommendation": True})
    smtp_server.messages.clear()

    def no_policy(**kwargs):
        raise services.NoPolicyInForce("No policy version is in force.")

    from consent.services import writes

    monkeypatch.setattr(writes, "policy_in_force", lambda: no_policy())
    with django_capture_on_commit_callbacks(execute=True):
        response = artist_client.post(
            reverse("tracks:upload"), {"files": [as_upload("good.mp3"), as_upload("good.flac")]}
        )

    assert response.status_code == 422
    assert "problem on our side" in response.content.decode()
    assert not Track.objects.exists()
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.TRACK_UPLOADED).exists()
    assert stored_files(_isolated_media) == []
    assert smtp_server.messages == []
