"""Turn outbox rows into emails: subject, plain text and HTML templates.

A batch is built at once: what the emails read from the database at send time
is read once per batch (policy notices: two or three queries for the batch,
not several per email), and a content many recipients share (the same policy
notice) is rendered once. The rendering is a pure function of the context, so
equal contexts give equal emails.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from email import policy as email_policy

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone, translation

from accounts.locale import language_for, locale, time_zone_name_for
from notifications.models import Notification
from platformkit.emails import render_email

# Rendered (subject, text, HTML) kept per worker process, by kind and context.
RENDER_CACHE_SIZE = 256


class _RenderCache[KeyT, ValueT]:
    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[KeyT, ValueT] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: KeyT) -> ValueT | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def put(self, key: KeyT, rendered: ValueT) -> None:
        with self._lock:
            self._entries[key] = rendered
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


_rendered: _RenderCache[tuple[str, str], tuple[str, str, str]] = _RenderCache(RENDER_CACHE_SIZE)


def _render_shared(kind: str, context: dict) -> tuple[str, str, str]:
    """Render once per distinct context; a receipt is one person's own, so it is not kept."""
    if "receipt" in context:
        return render_email(kind, context)
    # The same context renders differently per language and time zone (dates, wording).
    locale = f"{translation.get_language()}|{timezone.get_current_timezone_name()}"
    key = (kind, locale + json.dumps(context, sort_keys=True, default=str))
    rendered = _rendered.get(key)
    if rendered is None:
        rendered = render_email(kind, context)
        _rendered.put(key, rendered)
    return rendered


# kind -> factory(the batch's rows of that kind) -> function(row) -> extra template context, read when
# the email is built. Apps above the outbox register theirs in AppConfig.ready(): the mailbox knows no
# consent. A factory sees the whole batch, so what it reads from the database is read once per batch.
SendTimeContext = Callable[[Notification], dict]
BatchContextFactory = Callable[[list[Notification]], SendTimeContext]
_send_time_context: dict[str, BatchContextFactory] = {}


def register_send_time_context(kind: str, factory: BatchContextFactory) -> None:
    """Let the app that owns a notice kind add what must be read at send time, not when it was queued.

    A receipt is rebuilt from the append-only audit log (so the attachment says
    exactly what the log says); a policy notice written for thousands at once
    gets each recipient's own changes and affected tracks.
    """
    _send_time_context[kind] = factory


def _email(subject: str, text: str, html: str, *, to: str, message_id: str) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={"Message-ID": message_id, "Auto-Submitted": "auto-generated"},
    )
    if html:
        message.attach_alternative(html, "text/html")
    return message


_TO_SLOT = "recipient@to-slot.invalid"
_ID_SLOT = "<message-id@id-slot.invalid>"


class _SharedEncoding:
    """The MIME encoding of one rendered email, made once for every recipient of it.

    Encoding an email (headers, parts, transfer encoding) costs more than
    rendering it; copies of the same content differ only in To and Message-ID,
    which are put into the encoded header. Only plain ASCII addresses use it.
    """

    def __init__(self, subject: str, text: str, html: str) -> None:
        email = _email(subject, text, html, to=_TO_SLOT, message_id=_ID_SLOT)
        head, _, body = email.message(policy=email_policy.SMTP).as_bytes().partition(b"\r\n\r\n")
        self.usable = head.count(_TO_SLOT.encode()) == 1 and head.count(_ID_SLOT.encode()) == 1
        self.head, self.body = head, body
        # The DATA as SMTP carries it (RFC 5321 4.5.2: a line's leading dot doubled, then CRLF.CRLF), made once:
        # the slots are filled mid-line, so they never start a line.
        ending = b"" if body.endswith(b"\r\n") else b"\r\n"
        self._wire_head = dot_stuffed(head)
        self._wire_body = b"\r\n\r\n" + dot_stuffed(body) + ending + b".\r\n"

    def _fill(self, head: bytes, to: str, message_id: str) -> bytes:
        return head.replace(_TO_SLOT.encode(), to.encode(), 1).replace(_ID_SLOT.encode(), message_id.encode(), 1)

    def for_recipient(self, to: str, message_id: str) -> tuple[bytes, bytes] | None:
        """(the message, its DATA as sent over SMTP) for this copy, or None when it needs its own encoding."""
        if not (self.usable and to.isascii() and message_id.isascii()):
            return None
        return (
            self._fill(self.head, to, message_id) + b"\r\n\r\n" + self.body,
            self._fill(self._wire_head, to, message_id) + self._wire_body,
        )


_LINE_STARTING_WITH_A_DOT = re.compile(rb"(?m)^\.")


def dot_stuffed(data: bytes) -> bytes:
    """Each line that starts with a dot gets a second one, as smtplib does to the DATA it sends."""
    return _LINE_STARTING_WITH_A_DOT.sub(b"..", data)


# A shared encoding is kept per worker process too, not only per batch (encoding costs a few milliseconds,
# as much as the rest of a batch of 50 takes to build), but not for long: its Date header is the time it was
# made, and stays within this many seconds of the time each copy is sent.
ENCODING_MAX_AGE_SECONDS = 30
_encoded: _RenderCache[tuple[str, str, str, str], tuple[float, _SharedEncoding]] = _RenderCache(64)


def _shared_encoding(subject: str, text: str, html: str) -> _SharedEncoding:
    key = (settings.DEFAULT_FROM_EMAIL, subject, text, html)
    found = _encoded.get(key)
    if found is None or time.monotonic() - found[0] > ENCODING_MAX_AGE_SECONDS:
        found = (time.monotonic(), _SharedEncoding(subject, text, html))
        _encoded.put(key, found)
    return found[1]


@dataclass
class Outgoing:
    """One row's email: the message, and its wire form when it was made from a shared encoding."""

    notification: Notification
    email: EmailMultiAlternatives
    data: bytes | None = None
    # `data` dot-stuffed and ended for SMTP's DATA, when `data` is there.
    wire: bytes | None = None


class MessageBuilder:
    """Builds the emails of one batch of outbox rows."""

    def __init__(self, rows: Iterable[Notification]) -> None:
        self._rows = [row for row in rows if row.recipient_id is not None]
        self._providers: dict[str, SendTimeContext] = {}

    def _context_at_send_time(self, notification: Notification) -> dict:
        factory = _send_time_context.get(notification.kind)
        if notification.recipient_id is None or factory is None:
            return {}
        if notification.kind not in self._providers:
            self._providers[notification.kind] = factory([r for r in self._rows if r.kind == notification.kind])
        return self._providers[notification.kind](notification)

    @staticmethod
    def _locale_key(notification: Notification) -> tuple[str, str | None]:
        """The language and time zone the notice is written in, whatever the worker's are. A notice to an
        address without an account is written in the language that was active when it was queued (the
        sender's page), kept in its context."""
        if notification.recipient_id is not None:
            return language_for(notification.recipient), time_zone_name_for(notification.recipient)
        return notification.context.get("language") or settings.LANGUAGE_CODE, None

    def by_locale(self, rows: Iterable[Notification]) -> list[tuple[AbstractContextManager[None], list[Notification]]]:
        """The rows grouped by the language and time zone they are written in, each group in the order given:
        a batch switches to each locale once, not once per email (switching cost as much as rendering)."""
        groups: dict[tuple[str, str | None], list[Notification]] = {}
        for row in rows:
            groups.setdefault(self._locale_key(row), []).append(row)
        return [(locale(*key), group) for key, group in groups.items()]

    def _rendered(self, notification: Notification) -> tuple[str, str, str, dict | None]:
        """(subject, text, HTML, receipt or None), in the notice's own language and time zone."""
        with locale(*self._locale_key(notification)):
            return self._rendered_here(notification)

    def _rendered_here(self, notification: Notification) -> tuple[str, str, str, dict | None]:
        if notification.kind == Notification.Kind.ACCOUNT_EMAIL:
            # allauth renders its own templates when it queues the row.
            context = notification.context
            return context["subject"], context["body"], context.get("html") or "", None
        context = {
            **notification.context,
            **self._context_at_send_time(notification),
            "SITE_URL": settings.SITE_URL,
            "SITE_NAME": settings.SITE_NAME,
        }
        return (*_render_shared(notification.kind, context), context.get("receipt"))

    def outgoing(self, notification: Notification, *, in_its_locale: bool = False) -> Outgoing:
        """The row's email; `in_its_locale`: the caller has switched to the row's locale (see by_locale)."""
        if in_its_locale:
            subject, text, html, receipt = self._rendered_here(notification)
        else:
            subject, text, html, receipt = self._rendered(notification)
        message_id = notification.message_id  # a hash: made once per email
        email = _email(subject, text, html, to=notification.to_email, message_id=message_id)
        if receipt:
            email.attach(
                f"consent-receipt-{receipt.get('receipt_id', 'receipt')}.json",
                json.dumps(receipt, indent=2, sort_keys=True),
                "application/json",
            )
            return Outgoing(notification, email)
        encoded = _shared_encoding(subject, text, html).for_recipient(notification.to_email, message_id)
        if encoded is None:
            return Outgoing(notification, email)
        return Outgoing(notification, email, *encoded)

    def build(self, notification: Notification) -> EmailMultiAlternatives:
        return self.outgoing(notification).email


def build_message(notification: Notification) -> EmailMultiAlternatives:
    return MessageBuilder([notification]).build(notification)
