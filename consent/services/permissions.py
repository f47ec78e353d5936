"""Who may change consent on whose track: the one permission rule and the label's delegated scopes."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from consent.models import (
    AuditEvent,
)
from platformkit.sql import pk_in

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
    # Label managers act through delegations (a later issue adds that branch
    # to can_change_consent); until then nobody else can act for an artist.
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


SCOPE_NONE = "none"


SCOPE_WITHDRAW = "withdraw"


SCOPE_GRANT_WITHDRAW = "grant_withdraw"


_SCOPE_RANK = {SCOPE_NONE: 0, SCOPE_WITHDRAW: 1, SCOPE_GRANT_WITHDRAW: 2}


def delegated_scopes(
    actor: User | None, owner_ids: Collection[int], *, label_id: int | None = None
) -> dict[int, dict[str, str]]:
    """owner id -> {purpose slug: scope} that `actor` holds through active delegations, in one query.

    With `label_id`, only that label's delegations count: a manager acting for
    one label never borrows the power another label was given.
    """
    from accounts.models import Delegation

    owner_ids = [o for o in owner_ids if actor is None or o != actor.pk]
    if actor is None or actor.is_staff or not owner_ids:
        return {}
    rows = Delegation.objects.active().filter(artist_id__in=pk_in(owner_ids), label__memberships__user=actor)
    if label_id is not None:
        rows = rows.filter(label_id=label_id)
    merged: dict[int, dict[str, str]] = {}
    for artist_id, scopes in rows.values_list("artist_id", "scopes"):
        mine = merged.setdefault(artist_id, {})
        for slug, scope in (scopes or {}).items():
            if _SCOPE_RANK.get(scope, 0) > _SCOPE_RANK.get(mine.get(slug, SCOPE_NONE), 0):
                mine[slug] = scope
    return merged
