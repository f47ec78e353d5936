"""What the consent services refuse (with a message fit to show) and what a write returns."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext, ngettext

from consent.models import (
    Purpose,
)

if TYPE_CHECKING:
    pass


GRANTED = "granted"


NOT_GRANTED = "not_granted"


class ConsentError(Exception):
    """A request the service refuses, with a message fit to show the person who made it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UnknownPurpose(ConsentError):
    pass


class ConfirmationRequired(ConsentError):
    def __init__(self, purposes: Collection[Purpose]):
        names = ", ".join(gettext(p.name) for p in purposes)
        super().__init__(
            ngettext(
                "Granting %(purposes)s needs its own explicit confirmation.",
                "Granting %(purposes)s needs their own explicit confirmation.",
                len(purposes),
            )
            % {"purposes": names}
        )
        self.purposes = list(purposes)


class ConsentPermissionDenied(ConsentError, PermissionDenied):
    @classmethod
    def staff_grant(cls) -> ConsentPermissionDenied:
        return cls(gettext("Staff may withdraw consent but never grant it."))

    @classmethod
    def on_tracks(cls, count: int) -> ConsentPermissionDenied:
        message = ngettext(
            "You may not change consent on %(count)s of these tracks.",
            "You may not change consent on %(count)s of these tracks.",
            count,
        )
        return cls(message % {"count": count})


class NoPolicyInForce(ConsentError):
    pass


@dataclass
class ChangeResult:
    receipt_id: uuid.UUID | None = None
    # purpose slug -> {"granted": n, "withdrawn": n}
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    event_count: int = 0
    # artist id -> {"seq": n, "hash": "..."} after the change
    chain_heads: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Cells left alone because they changed after `unchanged_since`.
    skipped: int = 0

    @property
    def changed(self) -> bool:
        return self.event_count > 0
