import pytest
from django.urls import reverse

from notifications.models import Notification

pytestmark = pytest.mark.django_db


def test_staff_see_a_failed_notice_and_send_it_again_from_the_admin(
    client, staff_user, smtp_server, queue_email, monkeypatch, django_capture_on_commit_callbacks
):
    async def reject(server, session, envelope):
        return "550 5.1.1 Mailbox unavailable"

    original = smtp_server.handle_DATA
    monkeypatch.setattr(smtp_server, "handle_DATA", reject)
    row = queue_email(to_email="gone@example.test")
    row.refresh_from_db()
    assert row.status == Notification.Status.FAILED
    client.force_login(staff_user)

    changelist = client.get(reverse("admin:notifications_notification_changelist") + "?status__exact=failed")
    assert "gone@example.test" in changelist.text
    assert "550" in changelist.text

    monkeypatch.setattr(smtp_server, "handle_DATA", original)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:notifications_notification_changelist"),
            {"action": "resend", "_selected_action": [row.pk]},
            follow=True,
        )

    assert "1 notification queued again." in response.text
    row.refresh_from_db()
    assert row.status == Notification.Status.SENT
    assert smtp_server.message_ids() == [row.message_id]


def test_the_outbox_cannot_be_edited_or_deleted_from_the_admin(client, staff_user, queue_email):
    row = queue_email(deliver=False)
    client.force_login(staff_user)

    change = client.get(reverse("admin:notifications_notification_change", args=[row.pk]))
    delete = client.get(reverse("admin:notifications_notification_delete", args=[row.pk]))

    assert change.status_code == 200
    assert 'name="to_email"' not in change.text
    assert delete.status_code == 403
