"""Builders of the account notices (templates under templates/emails/<kind>/), rendered by accounts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.urls import reverse

from accounts.hooks import AccountDeletion, AccountNotice
from platformkit.emails import render_email

if TYPE_CHECKING:
    from accounts.models import DataExport


def _notice(kind: str, context: dict, *, to_email: str, dedupe_key: str, recipient_id: int | None) -> AccountNotice:
    subject, text, html = render_email(kind, {**context, "SITE_URL": settings.SITE_URL})
    return AccountNotice(
        to_email=to_email, subject=subject, text=text, html=html, dedupe_key=dedupe_key, recipient_id=recipient_id
    )


def account_deleted_notice(deletion: AccountDeletion) -> AccountNotice:
    """The last email to the address: what was done, and the chain head to keep as proof."""
    user = deletion.user
    return _notice(
        "account_deleted",
        {"summary": deletion.summary, "via": deletion.via},
        to_email=user.email,
        dedupe_key=f"account-deleted:{user.pk}",
        # None: the account is gone when the email is sent.
        recipient_id=None,
    )


def data_export_ready_notice(export: DataExport) -> AccountNotice:
    user = export.user
    context = {
        "user": user,
        "export": export,
        "url": settings.SITE_URL + reverse("accounts:data_export_download", args=[export.uuid]),
    }
    return _notice(
        "data_export_ready", context, to_email=user.email, dedupe_key=f"data-export:{export.uuid}", recipient_id=user.pk
    )
