from __future__ import annotations

import pytest
from django.urls import reverse

from consent import services
from consent.models import AuditEvent, Consent
from tracks.models import Track

pytestmark = pytest.mark.django_db


@pytest.fixture
def granted(artist, make_tracks):
    tracks = make_tracks(3, owner=artist)
    services.change_consent(
        actor=artist,
        tracks=Track.objects.filter(owner=artist),
        changes={"recommendation": True, "fraud_detection": True},
        source="web",
    )
    return tracks


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:consent_consent_changelist",
        "admin:consent_auditevent_changelist",
        "admin:consent_purpose_changelist",
        "admin:consent_policyversion_changelist",
        "admin:consent_uploaddefault_changelist",
    ],
)
def test_staff_can_browse_consent_admin(staff_client, granted, url_name):
    assert staff_client.get(reverse(url_name)).status_code == 200


@pytest.mark.parametrize("term", ["Track", "not-a-uuid", "3f2b8c9e-1111-4222-8333-444455556666", "%"])
def test_audit_event_admin_search_never_fails(staff_client, granted, term):
    response = staff_client.get(reverse("admin:consent_auditevent_changelist"), {"q": term})
    assert response.status_code == 200


@pytest.mark.parametrize("model", ["auditevent", "consent"])
def test_audit_events_and_consent_cannot_be_added_changed_or_deleted_in_admin(staff_client, granted, model):
    obj = AuditEvent.objects.first() if model == "auditevent" else Consent.objects.first()
    assert staff_client.get(reverse(f"admin:consent_{model}_add")).status_code == 403
    assert staff_client.get(reverse(f"admin:consent_{model}_delete", args=[obj.pk])).status_code == 403
    change = staff_client.post(reverse(f"admin:consent_{model}_change", args=[obj.pk]), {})
    assert change.status_code == 403
    assert AuditEvent.objects.count() == 6


def test_staff_withdraw_action_goes_through_the_service(staff_client, staff_user, artist, granted):
    selected = Consent.objects.filter(purpose__slug="recommendation").values_list("pk", flat=True)
    response = staff_client.post(
        reverse("admin:consent_consent_changelist"),
        {"action": "withdraw_selected", "_selected_action": [str(pk) for pk in selected]},
    )
    assert response.status_code == 302
    assert not Consent.objects.filter(purpose__slug="recommendation", granted=True).exists()
    assert Consent.objects.filter(purpose__slug="fraud_detection", granted=True).count() == 3
    events = AuditEvent.objects.filter(source="admin")
    assert events.count() == 3
    assert set(events.values_list("actor_id", "actor_kind", "artist_id")) == {(staff_user.pk, "staff", artist.pk)}
    assert events.values("receipt_id").distinct().count() == 1


def test_purpose_slug_is_fixed_once_created(staff_client):
    from consent.models import Purpose

    purpose = Purpose.objects.get(slug="recommendation")
    html = staff_client.get(reverse("admin:consent_purpose_change", args=[purpose.pk])).content.decode()
    assert 'name="slug"' not in html
    assert 'name="description"' in html


def test_audit_event_admin_offers_no_bulk_delete(staff_client, granted):
    response = staff_client.get(reverse("admin:consent_auditevent_changelist"))
    assert "delete_selected" not in response.content.decode()
