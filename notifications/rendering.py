"""Turn an outbox row into an email: subject, plain text and HTML templates."""

from __future__ import annotations

import datetime
import json

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

from accounts.locale import user_locale
from notifications.models import Notification

# How many changed lines of the terms a policy email quotes before it links to the rest.
EMAIL_DIFF_LINES = 30


def _context_at_send_time(notification: Notification) -> dict:
    """What is read from the database when the email is built, not when it is queued.

    A receipt is rebuilt from the append-only audit log (so the attachment says
    exactly what the log says); a policy notice written for thousands at once
    gets each recipient's own changes and affected tracks.
    """
    if notification.recipient_id is None:
        return {}
    if notification.kind in (Notification.Kind.CONSENT_RECEIPT, Notification.Kind.CHANGED_ON_BEHALF):
        from consent.receipts import receipt_for

        receipt = receipt_for(notification.recipient, notification.context.get("receipt_id"))
        if not receipt:
            return {}
        # Shown in the recipient's time zone (the email is rendered under it).
        saved_at = datetime.datetime.fromtimestamp(receipt["consentTimestamp"], tz=datetime.UTC)
        return {"receipt": receipt, "saved_at": saved_at}
    if notification.kind == Notification.Kind.POLICY_CHANGE:
        return _policy_context(notification)
    return {}


def _policy_context(notification: Notification) -> dict:
    """The difference between the terms this recipient last accepted and the new ones, and their affected tracks."""
    from consent.models import PolicyVersion
    from consent.policy import affected_tracks, changes_between, changes_path, last_accepted_version

    version = PolicyVersion.objects.filter(version=notification.context.get("version")).first()
    if version is None:
        return {}
    since = last_accepted_version(notification.recipient, before=version)
    context: dict = {"changes_path": changes_path(version, since)}
    if since is not None:
        changes = changes_between(since, version)
        changed = changes.changed_lines
        context.update(
            since_version=since.version,
            versions_since=[{"version": v.version, "summary": v.summary} for v in changes.versions],
            changed_lines=changed[:EMAIL_DIFF_LINES],
            changed_more=max(0, len(changed) - EMAIL_DIFF_LINES),
        )
    if notification.context.get("purposes_changed"):
        titles = list(
            affected_tracks(notification.recipient, version).order_by("title").values_list("title", flat=True)[:21]
        )
        context.update(affected_titles=titles[:20], affected_more=len(titles) > 20)
    return context


def build_message(notification: Notification) -> EmailMultiAlternatives:
    """The email in the recipient's language and time zone, whatever the worker's are.

    A notice to an address without an account is written in the language that
    was active when it was queued (the sender's page), kept in its context.
    """
    if notification.recipient_id is not None:
        locale = user_locale(notification.recipient)
    else:
        locale = translation.override(notification.context.get("language") or settings.LANGUAGE_CODE)
    with locale:
        return _build_message(notification)


def _build_message(notification: Notification) -> EmailMultiAlternatives:
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
