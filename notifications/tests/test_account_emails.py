import pytest
from django.urls import reverse

from notifications.models import Notification

pytestmark = pytest.mark.django_db


def test_verification_email_goes_through_the_outbox_and_survives_a_mail_outage(
    client, password, settings, django_capture_on_commit_callbacks
):
    from conftest import free_port

    # Nothing listens on this port: the mail server is down.
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": free_port(), "timeout": 2},
        }
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("account_signup"),
            {"email": "late@example.test", "display_name": "Late", "password1": password, "password2": password},
        )

    # Sign-up succeeded; the email waits in the outbox for the next attempt.
    assert response.status_code == 302
    row = Notification.objects.get(to_email="late@example.test")
    assert row.kind == Notification.Kind.ACCOUNT_EMAIL
    assert row.status == Notification.Status.PENDING
    assert "/accounts/confirm-email/" in row.context["body"]
    assert row.recipient.email == "late@example.test"


def test_password_reset_email_is_delivered_from_the_outbox(
    client, artist, smtp_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("account_reset_password"), {"email": artist.email})

    row = Notification.objects.get(to_email=artist.email)
    assert row.status == Notification.Status.SENT
    [message] = smtp_server.to(artist.email)
    assert "/accounts/password/reset/key/" in message.get_body(("plain",)).get_content()
    assert message["Message-ID"] == row.message_id
