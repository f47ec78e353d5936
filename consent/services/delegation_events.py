"""Label delegations as events in the artist's audit chain."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from consent.models import (
    AuditEvent,
    PolicyVersion,
)
from consent.services.audit import (
    append_events,
    event_row,
    head_summary,
    lock_chain_heads,
    purposes_by_slug,
)
from consent.services.errors import (
    ChangeResult,
)
from platformkit.request_meta import RequestMeta

if TYPE_CHECKING:
    from accounts.models import User

Source = AuditEvent.Source
Kind = AuditEvent.Kind


@dataclass(frozen=True)
class DelegationChange:
    """One fact of a delegation that changed: its status (`purpose_slug` None) or one purpose's scope."""

    purpose_slug: str | None
    old: str
    new: str


def record_delegation_events(
    *,
    actor: User | None,
    artist_id: int,
    label_id: int,
    changes: Iterable[DelegationChange],
    request_meta: RequestMeta | None = None,
    apply: Callable[[], object] | None = None,
) -> ChangeResult:
    """Append one delegation event per change that changes something to the artist's chain.

    `apply`, if given, runs after the chain head is locked and before the
    events are written, so the delegation row changes under the same lock the
    consent writers take: a bulk change in flight either finished before the
    delegation ended or sees it ended.
    """
    changes = [change for change in changes if change.old != change.new]
    with transaction.atomic():
        heads = lock_chain_heads([artist_id])
        if apply is not None:
            apply()
        if not changes:
            return ChangeResult()
        purposes = purposes_by_slug({change.purpose_slug for change in changes if change.purpose_slug})
        now = timezone.now()
        receipt_id = uuid.uuid4()
        policy = PolicyVersion.objects.in_force()
        append_events(
            heads,
            [
                event_row(
                    artist_id=artist_id,
                    actor=actor,
                    kind=Kind.DELEGATION_CHANGED,
                    source=Source.WEB,
                    now=now,
                    request_meta=request_meta,
                    policy=policy,
                    receipt_id=receipt_id,
                    purpose=purposes.get(change.purpose_slug) if change.purpose_slug else None,
                    old_value=change.old[:32],
                    new_value=change.new[:32],
                    label_id=label_id,
                )
                for change in changes
            ],
        )
        return ChangeResult(
            receipt_id=receipt_id,
            event_count=len(changes),
            chain_heads=head_summary(heads, [artist_id]),
        )
