"""Turn an outbox row into an email: subject, plain text and HTML templates."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from notifications.models import Notification

# kind -> function(notification) -> extra template context, read when the email is built.
# Apps above the outbox register theirs in AppConfig.ready(): the mailbox knows no consent.
SendTimeContext = Callable[[Notification], dict]
_send_time_context: dict[str, SendTimeContext] = {}


def register_send_time_context(kind: str, provider: SendTimeContext) -> None:
    """Let the app that owns a notice kind add what must be read at send time, not when it was queued.

    A receipt is rebuilt from the append-only audit log (so the attachment says
    exactly what the log says); a policy notice written for thousands at once
    gets each recipient's own changes and affected tracks.
    """
    _send_time_context[kind] = provider


def _context_at_send_time(notification: Notification) -> dict:
    provider = _send_time_context.get(notification.kind)
    if notification.recipient_id is None or provider is None:
        return {}
    return provider(notification)


def build_message(notification: Notification) -> EmailMultiAlternatives:
    context: dict = {}
    if notification.kind == Notification.Kind.ACCOUNT_EMAIL:
        # allauth renders its own templates when it queues the row.
        subject = notification.context["subject"]
        text = notification.context["body"]
        html = notification.context.get("html") or ""
    else:
        context = {
            **notification.context,
            **_context_at_send_time(notification),
            "SITE_URL": settings.SITE_URL,
            "SITE_NAME": settings.SITE_NAME,
            "notification": notification,
        }
        prefix = f"emails/{notification.kind}"
        subject = " ".join(render_to_string(f"{prefix}/subject.txt", context).split())
        text = render_to_string(f"{prefix}/body.txt", context)
        html = render_to_string(f"{prefix}/body.html", context)

    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.to_email],
        headers={"Message-ID": notification.message_id, "Auto-Submitted": "auto-generated"},
    )
    if html:
        message.attach_alternative(html, "text/html")
    receipt = context.get("receipt")
    if receipt:
        message.attach(
            f"consent-receipt-{receipt.get('receipt_id', 'receipt')}.json",
            json.dumps(receipt, indent=2, sort_keys=True),
            "application/json",
        )
    return message
