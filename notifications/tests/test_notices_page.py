"""The notices page: every email queued for the signed-in user, its delivery state, readable here."""

from __future__ import annotations

import pytest
from django.urls import reverse

from notifications.models import Notification
from notifications.services import queue_notification

pytestmark = pytest.mark.django_db


def queue(user, key: str, **fields) -> Notification:
    notice = queue_notification(
        kind=Notification.Kind.CONSENT_PROPOSAL,
        to_email=user.email,
        dedupe_key=key,
        context={
            "artist_name": user.display_name,
            "label_name": "Northern Records",
            "purpose_name": "Recommendation",
            "track_count": 3,
            "message": "",
            "proposal_path": "/labels/proposals/1/",
        },
        recipient=user,
    )
    if fields:
        Notification.objects.filter(pk=notice.pk).update(**fields)
    return notice


def test_lists_only_the_users_own_notices_with_their_state(artist, other_artist, artist_client):
    queue(artist, "mine-sent", status=Notification.Status.SENT)
    queue(artist, "mine-failed", status=Notification.Status.FAILED, last_error="550 mailbox unavailable")
    queue(artist, "mine-queued")
    queue(other_artist, "theirs")
    html = artist_client.get(reverse("notifications:list")).content.decode()
    assert html.count("<tr>") == 1 + 3  # header and the artist's three
    assert "Sent" in html and "Failed" in html and "Queued" in html
    assert "550 mailbox" not in html  # the server's error text is for staff


def test_a_notice_reads_as_the_email_says_and_another_users_is_not_found(artist, other_artist, artist_client):
    mine = queue(artist, "mine")
    theirs = queue(other_artist, "theirs")
    response = artist_client.get(reverse("notifications:detail", args=[mine.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Northern Records" in html and "Recommendation" in html
    assert "· Notices · Creator Consent Portal</title>" in html
    assert artist_client.get(reverse("notifications:detail", args=[theirs.pk])).status_code == 404


def test_notices_need_a_signed_in_user(client):
    response = client.get(reverse("notifications:list"))
    assert response.status_code == 302
    assert reverse("account_login") in response.url
