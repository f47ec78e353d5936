import uuid

import pytest
from django.db import transaction

from consent.notices import DIGEST_TITLES, ChangedCell, queue_consent_change_notices
from notifications.models import Notification

pytestmark = pytest.mark.django_db


def cells_for(artist, count, *, slug="recommendation", name="Recommendation", granted=True):
    return [ChangedCell(artist.pk, f"Song {i}", slug, name, granted) for i in range(count)]


def test_thousands_of_changes_make_one_email_with_a_digest(artist, smtp_server, django_capture_on_commit_callbacks):
    receipt_id = uuid.uuid4()
    cells = cells_for(artist, 4_000) + cells_for(
        artist, 1_000, slug="fraud_detection", name="Fraud detection", granted=False
    )

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        queued = queue_consent_change_notices(
            actor=artist,
            receipt_id=receipt_id,
            source="web",
            cells=cells,
            chain_heads={artist.pk: {"seq": 5000, "hash": "ab" * 32}},
        )

    assert queued == 1
    [message] = smtp_server.messages
    assert message["To"] == artist.email
    assert message["Subject"] == "Your consent receipt: 5000 changes saved"
    text = message.get_body(("plain",)).get_content()
    assert "allowed on 4000 tracks" in text
    assert f"and {4000 - DIGEST_TITLES} more" in text
    assert "withdrawn on 1000 tracks" in text
    assert "ab" * 32 in text
    assert f"/consent/log/?receipt={receipt_id}" in text


def test_a_change_by_someone_else_is_a_notice_on_the_artists_behalf(
    artist, staff_user, smtp_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        queue_consent_change_notices(
            actor=staff_user,
            receipt_id=uuid.uuid4(),
            source="admin",
            cells=cells_for(artist, 2, granted=False),
            chain_heads={},
        )

    row = Notification.objects.get()
    assert row.kind == Notification.Kind.CHANGED_ON_BEHALF
    [message] = smtp_server.messages
    assert message["Subject"].startswith("Portal staff changed consent")
    assert "cannot be turned off" in message.get_body(("plain",)).get_content()


def test_each_artist_touched_by_one_save_gets_one_email(
    artist, other_artist, staff_user, smtp_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        queued = queue_consent_change_notices(
            actor=staff_user,
            receipt_id=uuid.uuid4(),
            source="admin",
            cells=cells_for(artist, 30, granted=False) + cells_for(other_artist, 3, granted=False),
            chain_heads={},
        )

    assert queued == 2
    assert len(smtp_server.to(artist.email)) == 1
    assert len(smtp_server.to(other_artist.email)) == 1
