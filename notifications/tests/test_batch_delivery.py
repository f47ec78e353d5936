"""A batch's emails: built once per content, sent over a connection kept between batches."""

import email
import smtplib
import socket
from email import policy

import pytest
from celery.exceptions import Retry

from notifications.models import Notification
from notifications.rendering import MessageBuilder
from notifications.tasks import deliver_notifications, kept_mailers

pytestmark = pytest.mark.django_db


def _parsed(data: bytes):
    return email.message_from_bytes(data, policy=policy.default)


def test_the_shared_encoding_is_the_email_django_would_send(queue_email):
    rows = [
        queue_email(deliver=False, to_email=f"fan{n}@example.test", subject="Same", body="Same body") for n in range(3)
    ]

    builder = MessageBuilder(rows)
    for row in rows:
        outgoing = builder.outgoing(row)
        assert outgoing.data is not None
        ours = _parsed(outgoing.data)
        django = _parsed(outgoing.email.message(policy=policy.SMTP).as_bytes())
        for header in ("From", "To", "Subject", "Message-ID", "Auto-Submitted", "MIME-Version"):
            assert ours[header] == django[header], header
        assert ours["To"] == row.to_email and ours["Message-ID"] == row.message_id
        for kind in ("plain", "html"):
            assert ours.get_body((kind,)).get_content() == django.get_body((kind,)).get_content()


def test_an_address_that_is_not_plain_ascii_gets_its_own_encoding(queue_email):
    row = queue_email(deliver=False, to_email="zoë@example.test")

    assert MessageBuilder([row]).outgoing(row).data is None


def _count_connections(monkeypatch) -> list:
    opened = []
    real_init = smtplib.SMTP.__init__

    def counting_init(self, *args, **kwargs):
        opened.append(args)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(smtplib.SMTP, "__init__", counting_init)
    return opened


@pytest.mark.parametrize("connections", [1, 3])
def test_consecutive_batches_reuse_their_smtp_connections(smtp_server, queue_email, monkeypatch, settings, connections):
    settings.NOTIFICATIONS_SMTP_CONNECTIONS = connections
    first, second = [queue_email(deliver=False) for _ in range(3)], [queue_email(deliver=False) for _ in range(3)]
    opened = _count_connections(monkeypatch)

    deliver_notifications.delay([row.id for row in first])
    deliver_notifications.delay([row.id for row in second])

    # Each sender opens one connection at most, and keeps it for the next batch.
    assert 1 <= len(opened) <= connections
    assert sorted(smtp_server.message_ids()) == sorted(row.message_id for row in first + second)
    assert not Notification.objects.exclude(status=Notification.Status.SENT).exists()


def test_a_kept_connection_that_went_dead_is_replaced_before_the_next_batch(
    smtp_server, queue_email, monkeypatch, settings
):
    settings.NOTIFICATIONS_SMTP_CONNECTIONS = 1  # kept by the task's own thread, where this test can reach it
    deliver_notifications.delay([queue_email(deliver=False).id])
    _key, mailer, _used = kept_mailers._kept
    mailer.connection.sock.shutdown(socket.SHUT_RDWR)  # as when the server drops an idle client
    opened = _count_connections(monkeypatch)

    row = queue_email(deliver=False)
    deliver_notifications.delay([row.id])

    assert len(opened) == 1
    row.refresh_from_db()
    assert row.status == Notification.Status.SENT
    assert smtp_server.message_ids()[-1] == row.message_id


def test_a_connection_idle_too_long_is_not_reused(smtp_server, queue_email, monkeypatch, settings):
    settings.NOTIFICATIONS_SMTP_IDLE_SECONDS = 0
    opened = _count_connections(monkeypatch)

    deliver_notifications.delay([queue_email(deliver=False).id])
    deliver_notifications.delay([queue_email(deliver=False).id])

    assert len(opened) == 2
    assert len(smtp_server.messages) == 2


@pytest.mark.parametrize(
    "address",
    [
        "fan@example.test",
        "first.last+tag@mail.example.test",
        "o'brien@example.test",
        "x_y-z=1@sub-domain.example.test",
        "Portal <noreply@localhost>",
        "noreply@localhost",
        '"quoted name"@example.test',
        "zoë@example.test",
        "fan@exämple.test",
    ],
)
def test_an_envelope_address_is_what_djangos_backend_would_use(address, smtp_server):
    from django.core import mail

    from notifications.tasks import envelope_address

    backend = mail.mailers.default  # not opened: only its address handling is asked
    try:
        expected = backend.prep_address(address)
    except ValueError as error:
        with pytest.raises(ValueError, match=str(error)[:20]):
            envelope_address(backend, address, {})
    else:
        assert envelope_address(backend, address, {}) == expected


@pytest.mark.django_db(transaction=True)
def test_each_delivering_thread_keeps_its_own_connection(smtp_server, monkeypatch, settings):
    # As on the threads pool with one connection per task: two threads, two batches each, each thread reusing
    # the connection it opened.
    settings.NOTIFICATIONS_SMTP_CONNECTIONS = 1
    import threading

    from django.db import connections

    # Written directly (committed, no delivery queued): the threads are the only ones to send them.
    batches = [
        Notification.objects.bulk_create(
            Notification(
                kind=Notification.Kind.ACCOUNT_EMAIL,
                to_email=f"fan{b}-{n}@example.test",
                dedupe_key=f"threads:{b}:{n}",
                context={"subject": f"Notice {n}", "body": "Hello"},
            )
            for n in range(3)
        )
        for b in range(4)
    ]
    opened = _count_connections(monkeypatch)
    errors = []

    def deliver(own):
        try:
            for batch in own:
                deliver_notifications.delay([row.id for row in batch])
            kept_mailers.discard(kept_mailers._kept[1])
        except Exception as error:  # reported by the main thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver, args=(batches[n::2],)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(opened) == 2
    rows = [row for batch in batches for row in batch]
    assert sorted(smtp_server.message_ids()) == sorted(row.message_id for row in rows)
    assert not Notification.objects.exclude(status=Notification.Status.SENT).exists()


def test_a_shared_encoding_serves_later_batches_until_its_date_would_be_stale(monkeypatch):
    from notifications import rendering

    made = rendering._shared_encoding("Same", "Same body", "<p>Same</p>")
    assert rendering._shared_encoding("Same", "Same body", "<p>Same</p>") is made
    assert rendering._shared_encoding("Other", "Same body", "<p>Same</p>") is not made

    monkeypatch.setattr(rendering, "ENCODING_MAX_AGE_SECONDS", -1)
    assert rendering._shared_encoding("Same", "Same body", "<p>Same</p>") is not made


@pytest.mark.django_db(transaction=True)
def test_a_batch_goes_out_over_several_connections_at_once(smtp_server, monkeypatch, settings):
    import threading

    from notifications import tasks

    settings.NOTIFICATIONS_SMTP_CONNECTIONS = 3
    rows = Notification.objects.bulk_create(
        Notification(
            kind=Notification.Kind.ACCOUNT_EMAIL,
            to_email=f"fan{n}@example.test",
            dedupe_key=f"concurrent:{n}",
            context={"subject": "Same", "body": "Same body"},
        )
        for n in range(9)
    )
    # Each sender's first message waits for the other two senders' first: it passes only if three
    # connections send at the same time (with fewer, the barrier breaks and the task fails).
    all_three = threading.Barrier(3, timeout=30)
    first = threading.local()
    connections_used = set()
    real_send_plain = tasks.send_plain

    def send_plain(smtp, *args):
        connections_used.add(id(smtp))
        if not getattr(first, "done", False):
            first.done = True
            all_three.wait()
        real_send_plain(smtp, *args)

    monkeypatch.setattr(tasks, "send_plain", send_plain)

    assert deliver_notifications.delay([row.id for row in rows]).result == {"sent": 9, "retry": 0, "failed": 0}
    assert len(connections_used) == 3
    assert sorted(smtp_server.message_ids()) == sorted(row.message_id for row in rows)
    assert not Notification.objects.exclude(status=Notification.Status.SENT).exists()


@pytest.mark.django_db(transaction=True)
def test_a_connection_lost_mid_batch_leaves_its_message_to_retry_and_the_others_go_out(
    smtp_server, monkeypatch, settings
):
    from notifications import tasks

    settings.NOTIFICATIONS_SMTP_CONNECTIONS = 2
    rows = Notification.objects.bulk_create(
        Notification(
            kind=Notification.Kind.ACCOUNT_EMAIL,
            to_email=f"fan{n}@example.test",
            dedupe_key=f"lost:{n}",
            context={"subject": "Same", "body": "Same body"},
        )
        for n in range(6)
    )
    lost = rows[2]
    real_send_plain = tasks.send_plain

    def send_plain(smtp, sender, recipients, data, wire):
        if recipients == [lost.to_email]:
            smtp.close()
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        real_send_plain(smtp, sender, recipients, data, wire)

    monkeypatch.setattr(tasks, "send_plain", send_plain)
    monkeypatch.setattr(tasks, "retry_countdown", lambda attempt: 3600)
    with pytest.raises(Retry):  # the lost message, in an hour
        deliver_notifications.delay([row.id for row in rows])

    lost.refresh_from_db()
    assert lost.status == Notification.Status.PENDING and "SMTPServerDisconnected" in lost.last_error
    others = [row for row in rows if row.id != lost.id]
    assert sorted(smtp_server.message_ids()) == sorted(row.message_id for row in others)
    assert set(Notification.objects.filter(status=Notification.Status.SENT).values_list("id", flat=True)) == {
        row.id for row in others
    }


def test_the_dot_stuffed_data_is_what_smtplib_would_send():
    from notifications import rendering

    body = ".starts with a dot\n..two\nmiddle . dot\n."
    encoding = rendering._SharedEncoding("Subject", body, "<p>.x</p>\n.\n")
    data, wire = encoding.for_recipient("fan@example.test", "<id@example.test>")

    expected = smtplib._quote_periods(data)
    if expected[-2:] != b"\r\n":
        expected += b"\r\n"
    assert wire == expected + b".\r\n"
    assert b"\r\n..starts with a dot" in wire


@pytest.mark.django_db(transaction=True)
def test_a_failed_mark_fails_the_task_and_leaves_no_sender_waiting(smtp_server, monkeypatch, settings):
    from django.db import DatabaseError

    from notifications import tasks

    settings.NOTIFICATIONS_SMTP_CONNECTIONS = 3
    rows = Notification.objects.bulk_create(
        Notification(
            kind=Notification.Kind.ACCOUNT_EMAIL,
            to_email=f"fan{n}@example.test",
            dedupe_key=f"mark-fails:{n}",
            context={"subject": "Same", "body": "Same body"},
        )
        for n in range(9)
    )
    monkeypatch.setattr(tasks.PipelinedMarks, "_SQL", "UPDATE no_such_table SET x = 1 WHERE id = $1")

    with pytest.raises(DatabaseError):
        deliver_notifications.delay([row.id for row in rows])

    # Nothing is recorded as sent; the rows stay claimed until their lease runs out and the sweep hands
    # them out again (each sent again with its same Message-ID).
    assert not Notification.objects.filter(status=Notification.Status.SENT).exists()


def test_the_sent_mark_is_prepared_on_the_connection_and_again_after_psycopg_drops_it(
    smtp_server, queue_email, settings
):
    from django.db import connection

    from conftest import service_missing

    if connection.vendor != "postgresql":
        service_missing("PostgreSQL: the sent mark is a prepared statement there only; set DATABASE_URL")
    settings.NOTIFICATIONS_SMTP_CONNECTIONS = 1
    rows = [queue_email(deliver=False) for _ in range(4)]

    def prepared() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM pg_prepared_statements WHERE name = 'notifications_mark_sent'")
            return [name for (name,) in cursor.fetchall()]

    deliver_notifications.delay([rows[0].id])
    deliver_notifications.delay([rows[1].id])
    assert prepared() == ["notifications_mark_sent"]
    # What psycopg sends after a rollback when it holds prepared statements of its own on the connection.
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    assert prepared() == []
    deliver_notifications.delay([row.id for row in rows[2:]])
    assert prepared() == ["notifications_mark_sent"]
    assert sorted(smtp_server.message_ids()) == sorted(row.message_id for row in rows)
    assert not Notification.objects.exclude(status=Notification.Status.SENT).exists()
