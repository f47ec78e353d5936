"""What consent adds to its notices when the email is built (registered with notifications.rendering).

Each factory receives the batch's rows of its kind, so a policy notice sent to thousands reads the
terms and each recipient's accepted version for the whole batch in a few queries.
"""

from __future__ import annotations

import datetime

from consent.models import PolicyVersion
from consent.policy import affected_titles_by_owner, changes_between, changes_path, last_accepted_versions
from consent.receipts import receipt_for
from notifications.models import Notification
from notifications.rendering import SendTimeContext, register_send_time_context

# How many changed lines of the terms a policy email quotes before it links to the rest.
EMAIL_DIFF_LINES = 30
# How many affected track titles a policy email lists before "and more".
EMAIL_AFFECTED_TITLES = 20


def receipt_context(notification: Notification) -> dict:
    receipt = receipt_for(notification.recipient, notification.context.get("receipt_id"))
    if not receipt:
        return {}
    # Shown in the recipient's time zone (the email is rendered under it).
    saved_at = datetime.datetime.fromtimestamp(receipt["consentTimestamp"], tz=datetime.UTC)
    return {"receipt": receipt, "saved_at": saved_at}


def receipt_contexts(rows: list[Notification]) -> SendTimeContext:
    # A receipt is one person's own, rebuilt from their log: nothing to share across the batch.
    return receipt_context


class PolicyContexts:
    """Each policy notice's own part (changes since the terms its recipient accepted, their
    affected tracks), read for the whole batch at once."""

    def __init__(self, rows: list[Notification]) -> None:
        self.rows = [r for r in rows if r.kind == Notification.Kind.POLICY_CHANGE and r.recipient_id is not None]
        numbers = {row.context.get("version") for row in self.rows}
        self.versions = {v.version: v for v in PolicyVersion.objects.filter(version__in=numbers)}
        self._since: dict[int, dict] = {}
        self._titles: dict[int, dict[int, list[str]]] = {}
        self._changes: dict[tuple[int, int], dict] = {}
        self._paths: dict[tuple[int, int | None], str] = {}

    def _prefetch(self, version) -> None:
        rows = [row for row in self.rows if row.context.get("version") == version.version]
        users = list({row.recipient_id: row.recipient for row in rows}.values())
        self._since[version.version] = last_accepted_versions(users, before=version)
        wanting_titles = [row.recipient_id for row in rows if row.context.get("purposes_changed")]
        self._titles[version.version] = (
            affected_titles_by_owner(wanting_titles, version, limit=EMAIL_AFFECTED_TITLES + 1) if wanting_titles else {}
        )

    def _changes_since(self, since, version) -> dict:
        key = (since.version, version.version)
        if key not in self._changes:
            changes = changes_between(since, version)
            changed = changes.changed_lines
            self._changes[key] = {
                "since_version": since.version,
                "versions_since": [{"version": v.version, "summary": v.summary} for v in changes.versions],
                "changed_lines": changed[:EMAIL_DIFF_LINES],
                "changed_more": max(0, len(changed) - EMAIL_DIFF_LINES),
            }
        return self._changes[key]

    def context_for(self, notification: Notification) -> dict:
        if notification.recipient_id is None:
            return {}
        version = self.versions.get(notification.context.get("version"))
        if version is None:
            return {}
        if version.version not in self._since:
            self._prefetch(version)
        since = self._since[version.version].get(notification.recipient_id)
        path_key = (version.version, since.version if since else None)
        if path_key not in self._paths:  # a URL reversed per email was a tenth of building one
            self._paths[path_key] = changes_path(version, since)
        context: dict = {"changes_path": self._paths[path_key]}
        if since is not None:
            context.update(self._changes_since(since, version))
        if notification.context.get("purposes_changed"):
            titles = self._titles[version.version].get(notification.recipient_id, [])
            context.update(
                affected_titles=titles[:EMAIL_AFFECTED_TITLES], affected_more=len(titles) > EMAIL_AFFECTED_TITLES
            )
        return context


def policy_contexts(rows: list[Notification]) -> SendTimeContext:
    return PolicyContexts(rows).context_for


def register() -> None:
    register_send_time_context(Notification.Kind.CONSENT_RECEIPT, receipt_contexts)
    register_send_time_context(Notification.Kind.CHANGED_ON_BEHALF, receipt_contexts)
    register_send_time_context(Notification.Kind.POLICY_CHANGE, policy_contexts)
