import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from notifications.models import Notification
from notifications.services import queue_notification

pytestmark = pytest.mark.django_db


def test_last_email_shows_the_newest_file_email_decoded_with_links_whole(
    settings, tmp_path, capsys, django_capture_on_commit_callbacks
):
    mail_dir = tmp_path / "mail"
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": str(mail_dir)},
        }
    }
    link = "http://127.0.0.1:8000/accounts/confirm-email/" + "x" * 90 + "/"
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        queue_notification(
            kind=Notification.Kind.ACCOUNT_EMAIL,
            to_email="new@example.test",
            dedupe_key="dev-mail",
            context={"subject": "Please confirm", "body": f"To confirm, go to {link}\n"},
        )
    assert "=\n" in next(mail_dir.iterdir()).read_text(), "the raw file wraps long lines"

    call_command("last_email", to="new@example.test")

    out = capsys.readouterr().out
    assert "Subject: Please confirm" in out
    assert link in out


def test_last_email_says_so_when_there_is_none(settings, tmp_path):
    mail_dir = tmp_path / "mail"
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": str(mail_dir)},
        }
    }

    with pytest.raises(CommandError, match="No emails"):
        call_command("last_email")
