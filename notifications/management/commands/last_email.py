"""Print the newest email(s) the development file backend wrote, decoded.

The files under var/mail/ hold raw MIME (quoted-printable wraps long links);
this shows them as a person reads them, links whole.
"""

import email
import email.policy
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def mail_folder() -> Path:
    mailer = settings.MAILERS.get("default", {})
    if mailer.get("BACKEND") != "django.core.mail.backends.filebased.EmailBackend":
        raise CommandError("Email is not being written to files (EMAIL_URL is set); check that mailbox instead.")
    return Path(mailer["OPTIONS"]["file_path"])


def read_messages(path: Path) -> list[email.message.EmailMessage]:
    # The file backend appends each message followed by a line of dashes.
    chunks = path.read_bytes().split(b"\n" + b"-" * 79 + b"\n")
    return [email.message_from_bytes(chunk.strip(), policy=email.policy.default) for chunk in chunks if chunk.strip()]


class Command(BaseCommand):
    help = "Show the newest development emails (under var/mail/) decoded, newest last."

    def add_arguments(self, parser):
        parser.add_argument("-n", "--count", type=int, default=1, help="how many emails to show (default 1)")
        parser.add_argument("--to", default="", help="only emails to this address")

    def handle(self, *args, count: int, to: str, **options):
        folder = mail_folder()
        files = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime) if folder.exists() else []
        messages = [message for path in files for message in read_messages(path)]
        if to:
            messages = [message for message in messages if to.lower() in str(message["To"]).lower()]
        if not messages:
            raise CommandError(f"No emails in {folder} yet.")
        for message in messages[-count:]:
            body = message.get_body(("plain",))
            self.stdout.write(f"To: {message['To']}\nSubject: {message['Subject']}\nDate: {message['Date']}\n")
            self.stdout.write(body.get_content() if body else "(no plain-text part)")
            self.stdout.write("-" * 72)
