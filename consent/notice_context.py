"""What consent adds to its notices when the email is built (registered with notifications.rendering)."""

from __future__ import annotations

from consent.models import PolicyVersion
from consent.policy import affected_tracks, changes_between, changes_path, last_accepted_version
from consent.receipts import receipt_for
from notifications.models import Notification
from notifications.rendering import register_send_time_context

# How many changed lines of the terms a policy email quotes before it links to the rest.
EMAIL_DIFF_LINES = 30


def receipt_context(notification: Notification) -> dict:
    receipt = receipt_for(notification.recipient, notification.context.get("receipt_id"))
    return {"receipt": receipt} if receipt else {}


def policy_context(notification: Notification) -> dict:
    """The difference between the terms this recipient last accepted and the new ones, and their affected tracks."""
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


def register() -> None:
    register_send_time_context(Notification.Kind.CONSENT_RECEIPT, receipt_context)
    register_send_time_context(Notification.Kind.CHANGED_ON_BEHALF, receipt_context)
    register_send_time_context(Notification.Kind.POLICY_CHANGE, policy_context)
