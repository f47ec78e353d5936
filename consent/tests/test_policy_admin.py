from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from consent.policy import campaign_for
from notifications.models import Notification

pytestmark = pytest.mark.django_db


@pytest.fixture
def make_draft(new_policy_version):
    def make(**fields):
        return new_policy_version(
            summary="Clearer wording.", effective_at=timezone.now() + timedelta(days=10), is_material=True, **fields
        )

    return make


def test_staff_publish_a_draft_from_the_admin_and_watch_the_notice_go_out(
    make_draft, staff_client, artist, other_artist, staff_user, smtp_server, django_capture_on_commit_callbacks
):
    draft = make_draft()
    changelist = reverse("admin:consent_policyversion_changelist")

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(changelist, {"action": "publish", "_selected_action": [draft.pk]}, follow=True)

    assert f"Version {draft.version} is published" in response.text
    draft.refresh_from_db()
    assert draft.published_at is not None
    assert Notification.objects.filter(campaign=campaign_for(draft)).count() == 3
    assert len(smtp_server.messages) == 3
    page = staff_client.get(changelist)
    assert "3 / 0 / 3" in page.text


def test_a_published_version_can_no_longer_be_edited(make_draft, staff_client, django_capture_on_commit_callbacks):
    draft = make_draft()
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            reverse("admin:consent_policyversion_changelist"), {"action": "publish", "_selected_action": [draft.pk]}
        )

    page = staff_client.get(reverse("admin:consent_policyversion_change", args=[draft.pk]))

    assert page.status_code == 200
    assert 'name="full_text"' not in page.text


def test_publishing_a_meaning_change_without_time_to_reconfirm_is_refused_with_a_message(
    make_draft, staff_client, purposes
):
    draft = make_draft()
    draft.effective_at = timezone.now() - timedelta(days=1)
    draft.save()
    draft.purposes_changed.set([purposes["generative_training"]])

    response = staff_client.post(
        reverse("admin:consent_policyversion_changelist"),
        {"action": "publish", "_selected_action": [draft.pk]},
        follow=True,
    )

    assert "was not published" in response.text
    draft.refresh_from_db()
    assert draft.published_at is None
