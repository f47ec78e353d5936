from __future__ import annotations

import pytest
from django.urls import reverse

from tracks.models import Track
from tracks.tests.conftest import stored_files

pytestmark = pytest.mark.django_db


def test_admin_lists_searches_and_filters_tracks(ready_track, staff_client):
    url = reverse("admin:tracks_track_changelist")
    assert "Fixture Tone" in staff_client.get(url).content.decode()
    assert "Fixture Tone" in staff_client.get(url, {"q": "GBAYE2400001"}).content.decode()
    assert "Fixture Tone" not in staff_client.get(url, {"status__exact": "failed"}).content.decode()


def test_admin_cannot_add_tracks_or_change_technical_fields(ready_track, staff_client):
    assert staff_client.get(reverse("admin:tracks_track_add")).status_code == 403
    page = staff_client.get(reverse("admin:tracks_track_change", args=[ready_track.pk])).content.decode()
    assert 'name="title"' in page
    assert 'name="sha256"' not in page and 'name="status"' not in page and 'name="audio_file"' not in page


def test_deleting_in_the_admin_removes_the_files_too(
    ready_track, staff_client, media, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin:tracks_track_changelist"),
            {"action": "delete_selected", "_selected_action": [ready_track.pk], "post": "yes"},
        )
    assert response.status_code == 302
    assert not Track.objects.exists()
    assert stored_files(media) == []


def test_an_admin_deletion_is_audited_with_the_staff_member_as_actor(ready_track, staff_client, staff_user):
    from consent.models import AuditEvent

    staff_client.post(reverse("admin:tracks_track_delete", args=[ready_track.pk]), {"post": "yes"})

    event = AuditEvent.objects.get(kind=AuditEvent.Kind.TRACK_DELETED)
    assert (event.source, event.track_uuid) == (AuditEvent.Source.ADMIN, ready_track.uuid)
    assert event.actor == staff_user
