"""The words of consent, each defined once: who acted, where a change came from, what a label may do.

Models, services, forms, views and templates use these TextChoices (the
models keep them as `AuditEvent.ActorKind`, `AuditEvent.Source` and
`Delegation.Scope`); no module spells their values as string literals.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ActorKind(models.TextChoices):
    ARTIST = "artist", _("Artist")
    STAFF = "staff", _("Staff")
    LABEL = "label", _("Label")
    SYSTEM = "system", _("System")


class Source(models.TextChoices):
    WEB = "web", _("Web")
    UPLOAD = "upload", _("Upload form")
    ACCOUNT_DEFAULT = "account_default", _("Account default")
    ADMIN = "admin", _("Admin")
    BULK = "bulk", _("Bulk edit")
    CSV = "csv", _("CSV import")
    API = "api", _("API")
    POLICY_LAPSE = "policy_lapse", _("Policy lapse")
    POLICY_ACK = "policy_ack", _("Policy acknowledgement")
    ACCOUNT_DELETION = "account_deletion", _("Account deletion")
    SYSTEM = "system", _("System")


class Scope(models.TextChoices):
    """What an artist lets a label do with one purpose, weakest first."""

    NONE = "none", _("Nothing")
    WITHDRAW = "withdraw", _("Withdraw only")
    GRANT_WITHDRAW = "grant_withdraw", _("Grant and withdraw")

    @classmethod
    def rank(cls, value: str) -> int:
        ranks: dict[str, int] = {cls.NONE: 0, cls.WITHDRAW: 1, cls.GRANT_WITHDRAW: 2}
        return ranks.get(value, 0)
