"""The one builder of the outbox's own kind: an account email, rendered before it is queued.

allauth (verification, password reset) and accounts (export ready, account
deleted) render their emails themselves; the outbox stores the rendered text
and the worker sends it like any other notice. Every other kind is built by
the app that owns it (consent/notices.py, labels/notices.py,
downstream/notices.py) and rendered from templates/emails/<kind>/ when sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notifications.models import Notification
from notifications.services import NewNotification

if TYPE_CHECKING:
    from accounts.models import User


def account_email(
    *, to_email: str, dedupe_key: str, subject: str, text: str, html: str, recipient: User | None
) -> NewNotification:
    return NewNotification(
        kind=Notification.Kind.ACCOUNT_EMAIL,
        to_email=to_email,
        dedupe_key=dedupe_key,
        context={"subject": subject, "body": text, "html": html},
        recipient=recipient,
    )
