"""The words of consent, each defined once: who acted, where a change came from, what a label may do.

Models, services, forms, views and templates use these TextChoices (the
models keep them as `AuditEvent.ActorKind`, `AuditEvent.Source` and
`Delegation.Scope`); no module spells their values as string literals.
"""

from __future__ import annotations

from django.db import models


class ActorKind(models.TextChoices):
    ARTIST = "artist", "Artist"
    STAFF = "staff", "Staff"
    LABEL = "label", "Label"
    SYSTEM = "system", "System"


class Source(models.TextChoices):
    WEB = "web", "Web"
    UPLOAD = "upload", "Upload form"
    ACCOUNT_DEFAULT = "account_default", "Account default"
    ADMIN = "admin", "Admin"
    BULK = "bulk", "Bulk edit"
    CSV = "csv", "CSV import"
    API = "api", "API"
    POLICY_LAPSE = "policy_lapse", "Policy lapse"
    POLICY_ACK = "policy_ack", "Policy acknowledgement"
    ACCOUNT_DELETION = "account_deletion", "Account deletion"
    SYSTEM = "system", "System"


class Scope(models.TextChoices):
    """What an artist lets a label do with one purpose, weakest first."""

    NONE = "none", "Nothing"
    WITHDRAW = "withdraw", "Withdraw only"
    GRANT_WITHDRAW = "grant_withdraw", "Grant and withdraw"

    @classmethod
    def rank(cls, value: str) -> int:
        ranks: dict[str, int] = {cls.NONE: 0, cls.WITHDRAW: 1, cls.GRANT_WITHDRAW: 2}
        return ranks.get(value, 0)
