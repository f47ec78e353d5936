"""Who may change consent on whose track: the one permission rule and the label's delegated scopes."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from consent.hooks import delegations_of
from consent.models import (
    AuditEvent,
)
from consent.vocabulary import Scope

if TYPE_CHECKING:
    from accounts.models import User

ActorKind = AuditEvent.ActorKind


def actor_kind_for(actor: User | None, artist_id: int) -> str:
    if actor is None:
        return ActorKind.SYSTEM
    if actor.pk == artist_id:
        return ActorKind.ARTIST
    if actor.is_staff:
        return ActorKind.STAFF
    # Anyone else acting for an artist does so as a label manager, within a delegation (can_change_consent).
    return ActorKind.LABEL


def can_change_consent(
    actor: User | None,
    *,
    owner_id: int,
    granted: bool,
    purpose_slug: str | None = None,
    delegations: Mapping[int, Mapping[str, str]] | None = None,
) -> bool:
    """The one permission rule for consent on a track owned by `owner_id`.

    The artist may grant and withdraw. Staff and the system may only withdraw.
    A label manager acts only inside what the owner delegated: `delegations`
    is `delegated_scopes(actor, owners)`, loaded once per change so that the
    check stays a dictionary lookup per cell.
    """
    if actor is None:
        return not granted
    if not actor.is_active:
        return False
    if actor.pk == owner_id:
        return True
    if actor.is_staff:
        return not granted
    if delegations is None or purpose_slug is None:
        return False
    scope = delegations.get(owner_id, {}).get(purpose_slug, SCOPE_NONE)
    if granted:
        return scope == SCOPE_GRANT_WITHDRAW
    return scope in (SCOPE_WITHDRAW, SCOPE_GRANT_WITHDRAW)


SCOPE_NONE = Scope.NONE
SCOPE_WITHDRAW = Scope.WITHDRAW
SCOPE_GRANT_WITHDRAW = Scope.GRANT_WITHDRAW


def delegated_scopes(
    actor: User | None, owner_ids: Collection[int], *, label_id: int | None = None
) -> dict[int, dict[str, str]]:
    """owner id -> {purpose slug: scope} that `actor` holds through active delegations, in one query.

    With `label_id`, only that label's delegations count: a manager acting for
    one label never borrows the power another label was given. The delegations
    are the labels app's, which registers how to read them (consent.hooks).
    """
    owner_ids = [o for o in owner_ids if actor is None or o != actor.pk]
    if actor is None or actor.is_staff or not owner_ids:
        return {}
    return delegations_of(actor, owner_ids, label_id)
