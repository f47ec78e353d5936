import re

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


def test_account_emails_name_the_portal_link_to_it_and_read_like_ours(
    client, artist, make_user, password, smtp_server, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://portal.example"
    with django_capture_on_commit_callbacks(execute=True):
        signup = {"display_name": "Nia New", "password1": password, "password2": password}
        client.post(reverse("account_signup"), {"email": "nia@example.test", **signup})
        client.post(reverse("account_signup"), {"email": artist.email, **signup})  # the address has an account
        client.logout()
        client.post(reverse("account_reset_password"), {"email": artist.email})
        client.post(reverse("account_reset_password"), {"email": "nobody@example.test"})

    subjects = {message["To"]: [] for message in smtp_server.messages}
    for message in smtp_server.messages:
        subjects[message["To"]].append(message["Subject"])
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        for body in (text, html):
            # Named as the portal, never as whatever Host header the request carried.
            assert "Creator Consent Portal" in body
            assert "Hello from" not in body and "testserver" not in body
            links = [link for link in re.findall(r"https?://[^\s<>\"]+", body) if "example.test" not in link]
            assert links and all(re.match(r"https://portal\.example(/|$)", link) for link in links), links
        # Our tone and layout: a greeting, a signature, no allauth boilerplate.
        assert text.startswith("Hello") and "— Creator Consent Portal" in text
        assert "Thank you for using" not in text
        assert html.lstrip().startswith("<!DOCTYPE html>")
        assert message["Subject"] == message["Subject"].strip() and "  " not in message["Subject"]
        assert not message["Subject"].startswith("[")

    assert subjects == {
        "nia@example.test": ["Confirm your email address to finish signing up"],
        artist.email: ["You already have an account", "Reset your password"],
        "nobody@example.test": ["There is no account with this email address"],
    }
    [welcome] = smtp_server.to("nia@example.test")
    assert welcome.get_body(("plain",)).get_content().startswith("Hello Nia New,")
