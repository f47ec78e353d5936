from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from notifications.models import Notification, message_id_for
from notifications.services import queue_notification
from notifications.tasks import deliver_notifications, is_transient, retry_countdown, sweep_notifications

pytestmark = pytest.mark.django_db


def test_a_queued_email_is_delivered_over_smtp_with_a_stable_message_id(smtp_server, queue_email):
    row = queue_email(to_email="ada@example.test")

    row.refresh_from_db()
    assert row.status == Notification.Status.SENT
    assert row.attempts == 1
    [message] = smtp_server.messages
    assert message["To"] == "ada@example.test"
    assert message["Subject"] == "Subject 1"
    assert message["Message-ID"] == message_id_for("test:1") == row.message_id
    assert message.get_body(("plain",)).get_content().strip() == "Body 1"
    assert "<p>Body 1</p>" in message.get_body(("html",)).get_content()


def test_nothing_is_sent_if_the_transaction_rolls_back(smtp_server, django_capture_on_commit_callbacks):
    class Abort(Exception):
        pass

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Abort), transaction.atomic():
        queue_notification(
            kind=Notification.Kind.ACCOUNT_EMAIL,
            to_email="ada@example.test",
            dedupe_key="rolled-back",
            context={"subject": "s", "body": "b"},
        )
        raise Abort

    assert not Notification.objects.exists()
    assert smtp_server.messages == []


def test_the_same_dedupe_key_is_queued_once(smtp_server, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        first = queue_notification(
            kind=Notification.Kind.ACCOUNT_EMAIL,
            to_email="a@example.test",
            dedupe_key="k",
            context={"subject": "s", "body": "b"},
        )
        second = queue_notification(
            kind=Notification.Kind.ACCOUNT_EMAIL,
            to_email="a@example.test",
            dedupe_key="k",
            context={"subject": "s", "body": "b"},
        )

    assert first is not None
    assert second is None
    assert Notification.objects.count() == 1
    assert len(smtp_server.messages) == 1


def test_running_the_delivery_task_twice_for_one_row_sends_one_email(smtp_server, queue_email):
    row = queue_email(deliver=False)

    deliver_notifications.delay([row.id])
    deliver_notifications.delay([row.id])

    assert len(smtp_server.messages) == 1
    row.refresh_from_db()
    assert row.attempts == 1


def test_a_temporary_smtp_refusal_schedules_a_retry_with_backoff(smtp_server, queue_email):
    smtp_server.refuse_next(1)

    row = queue_email()

    row.refresh_from_db()
    assert row.status == Notification.Status.PENDING
    assert row.attempts == 1
    assert "451" in row.last_error
    assert row.next_attempt_at > timezone.now()
    assert smtp_server.messages == []

    with time_machine.travel(row.next_attempt_at + timedelta(seconds=1)):
        deliver_notifications.delay([row.id])

    row.refresh_from_db()
    assert row.status == Notification.Status.SENT
    assert row.attempts == 2
    assert len(smtp_server.messages) == 1


def test_a_permanent_rejection_is_recorded_as_failed(smtp_server, queue_email, monkeypatch):
    async def reject(server, session, envelope):
        return "550 5.1.1 No such user"

    monkeypatch.setattr(smtp_server, "handle_DATA", reject)

    row = queue_email()

    row.refresh_from_db()
    assert row.status == Notification.Status.FAILED
    assert "550" in row.last_error


def test_delivery_gives_up_after_the_configured_attempts(smtp_server, queue_email, settings):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 2
    smtp_server.refuse_next(10)
    row = queue_email()

    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        deliver_notifications.delay([row.id])

    row.refresh_from_db()
    assert row.status == Notification.Status.FAILED
    assert row.attempts == 2
    assert "gave up after 2 attempts" in row.last_error


def test_an_unreachable_mail_server_is_a_transient_failure(settings, queue_email):
    from conftest import free_port

    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": free_port(), "timeout": 2},
        }
    }

    row = queue_email()

    row.refresh_from_db()
    assert row.status == Notification.Status.PENDING
    assert "ConnectionRefusedError" in row.last_error


def test_retry_countdowns_grow_and_stay_below_the_visibility_timeout(settings):
    settings.NOTIFICATIONS_RETRY_BASE_SECONDS = 30
    ceilings = [retry_countdown(attempt) for attempt in range(1, 30)]

    assert all(0 < countdown <= settings.NOTIFICATIONS_RETRY_MAX_SECONDS for countdown in ceilings)
    assert (
        settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
        > settings.NOTIFICATIONS_RETRY_MAX_SECONDS
    )
    assert retry_countdown(1) <= 60 < retry_countdown(6)


def test_transient_and_permanent_smtp_errors_are_told_apart():
    import smtplib

    assert is_transient(smtplib.SMTPServerDisconnected("gone"))
    assert is_transient(ConnectionRefusedError())
    assert is_transient(smtplib.SMTPDataError(451, b"later"))
    assert not is_transient(smtplib.SMTPDataError(550, b"no such user"))
    assert not is_transient(smtplib.SMTPRecipientsRefused({"a@x": (550, b"no")}))
    assert not is_transient(ValueError("template broke"))


def test_the_sweep_sends_rows_the_broker_never_got(smtp_server, queue_email, settings):
    settings.NOTIFICATIONS_SWEEP_GRACE_SECONDS = 0
    rows = [queue_email(deliver=False) for _ in range(3)]

    result = sweep_notifications.delay().get()

    assert result == {"released": 0, "enqueued": 3, "fan_outs_restarted": 0}
    assert sorted(smtp_server.message_ids()) == sorted(row.message_id for row in rows)


def test_the_sweep_releases_a_row_abandoned_by_a_killed_worker(smtp_server, queue_email, settings):
    settings.NOTIFICATIONS_SWEEP_GRACE_SECONDS = 0
    row = queue_email(deliver=False)
    Notification.objects.filter(id=row.id).update(
        status=Notification.Status.SENDING, claimed_at=timezone.now() - timedelta(hours=1)
    )

    result = sweep_notifications.delay().get()

    assert result["released"] == 1
    row.refresh_from_db()
    assert row.status == Notification.Status.SENT
    assert smtp_server.message_ids() == [row.message_id]


def test_the_sweep_leaves_a_row_another_worker_is_sending(smtp_server, queue_email, settings):
    settings.NOTIFICATIONS_SWEEP_GRACE_SECONDS = 0
    row = queue_email(deliver=False)
    Notification.objects.filter(id=row.id).update(status=Notification.Status.SENDING, claimed_at=timezone.now())

    sweep_notifications.delay()

    assert smtp_server.messages == []


@pytest.mark.parametrize("setting", [1, 4])
def test_a_batch_is_sent_over_at_most_the_configured_smtp_connections(
    smtp_server, queue_email, monkeypatch, settings, setting
):
    import smtplib

    settings.NOTIFICATIONS_SMTP_CONNECTIONS = setting

    connections = []
    real_init = smtplib.SMTP.__init__

    def counting_init(self, *args, **kwargs):
        connections.append(args)
        real_init(self, *args, **kwargs)

    rows = [queue_email(deliver=False) for _ in range(5)]
    monkeypatch.setattr(smtplib.SMTP, "__init__", counting_init)

    deliver_notifications.delay([row.id for row in rows])

    assert len(smtp_server.messages) == 5
    assert 1 <= len(connections) <= setting


def test_the_sweep_hands_out_released_rows_in_the_same_run_despite_the_grace_period(smtp_server, queue_email, settings):
    settings.NOTIFICATIONS_SWEEP_GRACE_SECONDS = 30  # for fresh rows, which still have their own task coming
    row = queue_email(deliver=False)
    lease = settings.NOTIFICATIONS_CLAIM_LEASE_SECONDS
    Notification.objects.filter(id=row.id).update(
        status=Notification.Status.SENDING, claimed_at=timezone.now() - timedelta(seconds=lease + 1)
    )

    result = sweep_notifications.delay().get()

    assert result == {"released": 1, "enqueued": 1, "fan_outs_restarted": 0}
    row.refresh_from_db()
    assert row.status == Notification.Status.SENT
    assert smtp_server.message_ids() == [row.message_id]


def test_a_sending_task_renews_its_claim_and_only_on_rows_it_still_sends(queue_email):
    from notifications.tasks import renew_claims

    sending, sent = queue_email(deliver=False), queue_email(deliver=False)
    long_ago = timezone.now() - timedelta(minutes=5)
    Notification.objects.filter(id=sending.id).update(status=Notification.Status.SENDING, claimed_at=long_ago)
    Notification.objects.filter(id=sent.id).update(status=Notification.Status.SENT, claimed_at=long_ago)

    assert renew_claims([sending.id, sent.id]) == 1

    sending.refresh_from_db(), sent.refresh_from_db()
    assert sending.claimed_at > long_ago
    assert sent.claimed_at == long_ago


def test_the_default_lease_lets_a_killed_workers_notices_out_within_two_minutes(settings):
    # Worst case: killed just after a renewal, the lease runs out, and the
    # sweep that releases a row hands it out in the same run.
    worst = settings.NOTIFICATIONS_CLAIM_LEASE_SECONDS + settings.NOTIFICATIONS_SWEEP_INTERVAL_SECONDS
    assert worst <= 120
    assert (
        settings.CELERY_BEAT_SCHEDULE["notifications-sweep"]["schedule"]
        == settings.NOTIFICATIONS_SWEEP_INTERVAL_SECONDS
    )
