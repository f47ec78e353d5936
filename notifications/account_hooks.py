"""notifications' part in account flows (registered in NotificationsConfig.ready).

It delivers account notices (export ready, account deleted) through the
outbox, empties the outbox of a deleted account, and exports the notices an
account received.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Q

from accounts.hooks import (
    AccountDeletion,
    AccountNotice,
    ErasureStep,
    ExportSection,
    erasure_steps,
    export_sections,
    set_notice_sender,
)
from accounts.models import User
from notifications.models import Notification
from notifications.notices import account_email
from notifications.services import queue_notice


def queue_account_notice(notice: AccountNotice) -> None:
    """Rendered by accounts, stored as an account email: the worker sends it like any other."""
    recipient = User.objects.filter(pk=notice.recipient_id).first() if notice.recipient_id else None
    queue_notice(
        account_email(
            to_email=notice.to_email,
            dedupe_key=notice.dedupe_key,
            subject=notice.subject,
            text=notice.text,
            html=notice.html,
            recipient=recipient,
        )
    )


def _mine(user) -> Q:
    return Q(recipient=user) | Q(to_email__iexact=user.email)


def clear_outbox(deletion: AccountDeletion) -> None:
    """Every notice to the account goes, sent or not: the farewell notice, queued after this, replaces them."""
    Notification.objects.filter(_mine(deletion.user)).delete()


def notices(user) -> Iterator[dict[str, Any]]:
    rows = Notification.objects.filter(_mine(user)).order_by("created_at", "pk")
    for row in rows.iterator(chunk_size=2000):
        context = dict(row.context)
        if row.kind == Notification.Kind.ACCOUNT_EMAIL:
            # Sign-in and reset emails carry one-time links; the archive keeps
            # what they were about, not a key someone could still use.
            context = {"subject": context.get("subject", "")}
        yield {
            "kind": row.kind,
            "to": row.to_email,
            "status": row.status,
            "message_id": row.message_id,
            "created_at": row.created_at,
            "sent_at": row.sent_at,
            "content": context,
        }


def register() -> None:
    set_notice_sender(queue_account_notice)
    erasure_steps.register(ErasureStep("notifications.clear_outbox", clear_outbox, order=80))
    export_sections.register(
        ExportSection(
            "notices.json",
            notices,
            order=70,
            description="Every email notice we sent you (or have queued), with what it said.",
        )
    )
