"""A bulk change applies exactly what its preview (or dry run) showed, or refuses and says why."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from consent import services as consent_services
from consent.models import AuditEvent
from consent.selectors import verify_chains
from labels import bulk as bulk_changes
from labels import services
from labels.models import BulkChange
from labels.selectors import roster_tracks
from labels.tests.conftest import REC_SCOPES, granted, preview
from tracks import services as track_services
from tracks.models import Track
from tracks.tests.conftest import as_upload

UPLOADED_ISRC = "GBAYE2400001"  # the ISRC tag of tracks/tests/fixtures/good.mp3


@pytest.fixture
def roster(label_setup, make_user, make_tracks, set_state):
    """Two artists on the roster, every track granted recommendation."""
    label, manager, delegate = label_setup
    artists = [make_user(display_name=f"Roster {i}") for i in range(2)]
    for artist in artists:
        set_state(artist, make_tracks(3, owner=artist), "recommendation", True)
        delegate(artist, REC_SCOPES)
    return label, manager, artists


def _upload_with_defaults(artist, django_capture_on_commit_callbacks) -> Track:
    """The artist grants recommendation to future uploads, then uploads through the real view."""
    consent_services.set_upload_defaults(actor=artist, artist=artist, choices={"recommendation": True})
    uploader = Client()
    uploader.force_login(artist)
    with django_capture_on_commit_callbacks(execute=True):
        response = uploader.post(reverse("tracks:upload"), {"files": [as_upload("good.mp3")]})
    assert response.status_code == 200, response.content
    track = Track.objects.get(owner=artist, original_filename="good.mp3")
    assert track.status == Track.Status.READY, track.failure_reason
    assert granted(track, "recommendation")
    return track


def _preview_withdraw_all(client, label) -> BulkChange:
    client.post(
        f"/labels/{label.slug}/bulk/preview/",
        {"all_matching": "1", "purpose": "recommendation", "action": "withdraw"},
    )
    return BulkChange.objects.latest("pk")


def test_a_track_uploaded_between_preview_and_confirm_is_not_changed_and_the_confirm_says_so(
    client, roster, django_capture_on_commit_callbacks
):
    label, manager, artists = roster
    client.force_login(manager)
    bulk = _preview_withdraw_all(client, label)
    assert bulk.will_change == 6
    new_track = _upload_with_defaults(artists[0], django_capture_on_commit_callbacks)

    response = client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/confirm/", follow=True)

    page = response.content.decode()
    assert "This preview no longer holds" in page
    assert "1 track that the preview did not list does match now (uploaded or changed since)." in page
    bulk.refresh_from_db()
    assert bulk.status == BulkChange.Status.STALE and bulk.applied == 0
    assert not AuditEvent.objects.filter(bulk_change=bulk).exists()
    assert all(granted(t, "recommendation") for t in Track.objects.all())
    # Out of date stays out of date: confirming again changes nothing either.
    client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/confirm/")
    assert not AuditEvent.objects.filter(bulk_change=bulk).exists()

    # A new preview lists the new track too, and applying it does exactly that.
    response = client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/again/")
    fresh = BulkChange.objects.latest("pk")
    assert response["Location"] == f"/labels/{label.slug}/bulk/{fresh.pk}/"
    assert fresh.will_change == 7 and fresh.status == BulkChange.Status.DRAFT
    client.post(f"/labels/{label.slug}/bulk/{fresh.pk}/confirm/")
    fresh.refresh_from_db()
    assert fresh.status == BulkChange.Status.DONE and fresh.applied == 7
    assert not granted(new_track, "recommendation")
    assert verify_chains().ok


def test_consent_changed_and_changed_back_since_the_preview_makes_it_out_of_date(client, roster):
    label, manager, artists = roster
    client.force_login(manager)
    bulk = _preview_withdraw_all(client, label)
    mine = Track.objects.filter(owner=artists[1])
    one = mine.filter(pk=mine.first().pk)
    consent_services.change_consent(actor=artists[1], tracks=one, changes={"recommendation": False}, source="web")
    consent_services.change_consent(actor=artists[1], tracks=one, changes={"recommendation": True}, source="web")

    with pytest.raises(bulk_changes.PreviewOutdated) as caught:
        bulk_changes.confirm_bulk_change(actor=manager, bulk_change=bulk)

    assert caught.value.drift == ["Consent on 1 track in the preview changed since it was made."]
    assert not AuditEvent.objects.filter(bulk_change=bulk).exists()


def test_a_delegation_narrowed_since_the_preview_makes_it_out_of_date(client, roster):
    label, manager, artists = roster
    client.force_login(manager)
    bulk = _preview_withdraw_all(client, label)
    delegation = artists[0].delegations.get()
    services.change_scopes(artist=artists[0], delegation=delegation, scopes={**REC_SCOPES, "recommendation": "none"})

    response = client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/confirm/", follow=True)

    assert (
        "You may no longer make 3 of the changes (a delegation was narrowed or ended) — "
        "Roster 0: withdraw Recommendation." in response.content.decode()
    )
    assert not AuditEvent.objects.filter(bulk_change=bulk).exists()
    assert all(granted(t, "recommendation") for t in Track.objects.all())


def test_a_track_deleted_or_no_longer_matching_since_the_preview_makes_it_out_of_date(client, roster):
    label, manager, artists = roster
    client.force_login(manager)
    client.post(
        f"/labels/{label.slug}/bulk/preview/",
        {"all_matching": "1", "q": "Track", "purpose": "recommendation", "action": "withdraw"},
    )
    bulk = BulkChange.objects.get()
    first, second = Track.objects.filter(owner=artists[0]).order_by("pk")[:2]
    Track.objects.filter(pk=first.pk).update(title="Renamed")
    track_services.delete_track(track=second, actor=artists[0])

    drift = bulk_changes.find_drift(bulk_change=bulk, actor=manager)

    assert drift == [
        "1 track in the preview was deleted.",
        "1 track in the preview does not match the filter any more.",
    ]


def test_the_confirm_check_takes_the_same_number_of_queries_for_any_size(
    label_setup, make_user, make_tracks, set_state
):
    label, manager, delegate = label_setup

    def queries_for_confirm_check(artist_count: int, tracks_each: int) -> int:
        for _ in range(artist_count):
            artist = make_user()
            make_tracks(tracks_each, owner=artist)
            delegate(artist, REC_SCOPES)
        bulk = preview(manager, label, {"recommendation": True, "fraud_detection": False}, tracks=roster_tracks(label))
        with CaptureQueriesContext(connection) as captured:
            assert bulk_changes.find_drift(bulk_change=bulk, actor=manager) == []
        return len(captured)

    assert queries_for_confirm_check(1, 2) == queries_for_confirm_check(12, 40)


def test_the_preview_is_a_constant_number_of_statements(label_setup, make_user, make_tracks):
    label, manager, delegate = label_setup

    def statements_for_preview(artist_count: int) -> tuple[int, int]:
        for _ in range(artist_count):
            artist = make_user()
            make_tracks(5, owner=artist)
            delegate(artist, {**REC_SCOPES, "recommendation": "none"})
        with CaptureQueriesContext(connection) as captured:
            bulk = preview(manager, label, {"recommendation": True}, tracks=roster_tracks(label))
        return len(captured), bulk.refused

    small, refused_small = statements_for_preview(1)
    large, refused_large = statements_for_preview(10)
    assert (refused_small, refused_large) == (5, 55)
    assert small == large


def test_a_cell_the_artist_changes_after_the_confirmation_is_left_as_they_set_it(roster, settings):
    label, manager, artists = roster
    bulk = preview(manager, label, {"recommendation": False})
    settings.LABELS_BULK_SYNC_MAX_CELLS = 0  # confirmed now, applied later by a task
    assert bulk_changes.confirm_bulk_change(actor=manager, bulk_change=bulk) is True
    # Between the confirmation and the worker: the artist withdraws, then grants again.
    mine = Track.objects.filter(owner=artists[0]).order_by("pk").first()
    one = Track.objects.filter(pk=mine.pk)
    consent_services.change_consent(actor=artists[0], tracks=one, changes={"recommendation": False}, source="web")
    consent_services.change_consent(actor=artists[0], tracks=one, changes={"recommendation": True}, source="web")

    result = bulk_changes.apply_bulk_change(bulk.pk)

    assert result.status == BulkChange.Status.DONE and result.applied == 5
    assert granted(mine, "recommendation")
    assert {
        "artist": "",
        "purpose": "",
        "tracks": 1,
        "reason": "changed by the artist since the preview; left as they set it",
    } in result.refused_detail
    assert verify_chains().ok


# --- CSV -------------------------------------------------------------------------------------------


def _import(client, label, body: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("consent.csv", body.encode(), content_type="text/csv")
    return client.post(f"/labels/{label.slug}/import/", {"file": upload})


def test_csv_apply_refuses_when_a_track_uploaded_since_the_dry_run_shares_the_rows_isrc(
    client, roster, django_capture_on_commit_callbacks
):
    label, manager, artists = roster
    named = Track.objects.filter(owner=artists[0]).order_by("pk").first()
    Track.objects.filter(pk=named.pk).update(isrc=UPLOADED_ISRC)
    client.force_login(manager)
    response = _import(client, label, f"isrc,recommendation\n{UPLOADED_ISRC},not_granted\n")
    report, bulk = response.context["report"], response.context["bulk"]
    assert report.ok and report.will_change == 1
    # The artist uploads the same recording again (with upload defaults): the
    # row's ISRC now names two tracks, which the dry run did not say.
    uploaded = _upload_with_defaults(artists[0], django_capture_on_commit_callbacks)
    assert uploaded.isrc == UPLOADED_ISRC

    response = client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/confirm/", follow=True)

    page = response.content.decode()
    assert f"ISRC {UPLOADED_ISRC} now matches more than one track in your roster" in page
    assert "Check the file again" in page
    bulk.refresh_from_db()
    assert bulk.status == BulkChange.Status.STALE
    assert granted(named, "recommendation") and granted(uploaded, "recommendation")
    assert not AuditEvent.objects.filter(bulk_change=bulk).exists()


def test_csv_apply_does_exactly_what_the_dry_run_said_and_nothing_for_a_track_uploaded_since(
    client, roster, django_capture_on_commit_callbacks
):
    label, manager, artists = roster
    tracks = list(Track.objects.filter(owner=artists[0]).order_by("pk"))
    body = "track_id,recommendation\n" + "".join(f"{t.uuid},not_granted\n" for t in tracks[:2])
    client.force_login(manager)
    response = _import(client, label, body)
    bulk = response.context["bulk"]
    uploaded = _upload_with_defaults(artists[0], django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/confirm/")
    bulk.refresh_from_db()
    assert bulk.status == BulkChange.Status.DONE and bulk.applied == 2
    changed = set(AuditEvent.objects.filter(bulk_change=bulk).values_list("track_id", flat=True))
    assert changed == {tracks[0].pk, tracks[1].pk}
    assert granted(uploaded, "recommendation") and granted(tracks[2], "recommendation")


def test_csv_apply_refuses_when_a_cell_changed_since_the_dry_run(client, roster):
    label, manager, artists = roster
    tracks = list(Track.objects.filter(owner=artists[1]).order_by("pk"))
    client.force_login(manager)
    # Row 2 is "already so" in the dry run; the artist then withdraws it.
    response = _import(
        client, label, f"track_id,recommendation\n{tracks[0].uuid},not_granted\n{tracks[1].uuid},granted\n"
    )
    bulk = response.context["bulk"]
    assert (bulk.will_change, bulk.already) == (1, 1)
    consent_services.change_consent(
        actor=artists[1], tracks=Track.objects.filter(pk=tracks[1].pk), changes={"recommendation": False}, source="web"
    )
    before = timezone.now()

    response = client.post(f"/labels/{label.slug}/bulk/{bulk.pk}/confirm/", follow=True)

    assert "Consent on 1 track in the preview changed since it was made." in response.content.decode()
    assert not AuditEvent.objects.filter(bulk_change=bulk).exists()
    assert not AuditEvent.objects.filter(created_at__gte=before).exists()
