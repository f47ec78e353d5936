"""Hooks that higher apps register into, so consent never imports them.

A listener registered here runs inside the transaction of every consent
change, with the cells that changed; whatever it writes commits or rolls back
with the change itself. Apps above consent (public/, for its distribution
copies) register in their AppConfig.ready().
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ConsentCellChange:
    """One (track, purpose) whose answer a consent write changed."""

    track_id: int
    purpose_slug: str
    granted: bool


ConsentListener = Callable[[Sequence[ConsentCellChange]], None]

_listeners: dict[str, ConsentListener] = {}


def register_consent_listener(key: str, listener: ConsentListener) -> None:
    """Register `listener` under `key`; registering the same key again replaces it (ready() may run twice)."""
    _listeners[key] = listener


def notify_consent_changed(changes: Sequence[ConsentCellChange]) -> None:
    """Called by consent.services inside the writing transaction. A listener's error aborts the change."""
    if not changes:
        return
    for listener in list(_listeners.values()):
        listener(changes)


# (actor, owner ids, label id or None) -> owner id -> {purpose slug: scope}.
DelegatedScopes = Callable[[Any, Collection[int], int | None], dict[int, dict[str, str]]]

_delegation_source: list[DelegatedScopes] = []


def register_delegation_source(source: DelegatedScopes) -> None:
    """labels tells consent what each label manager may do for each artist; registering again replaces it."""
    _delegation_source[:] = [source]


def delegations_of(actor, owner_ids: Collection[int], label_id: int | None) -> dict[int, dict[str, str]]:
    """What `actor` holds through active delegations; nothing when no app delegates (only artists and staff act)."""
    if not _delegation_source:
        return {}
    return _delegation_source[0](actor, owner_ids, label_id)


# user -> what an app above consent has waiting for this artist (a label's proposals and roster
# invitations), as consent.selectors.WaitingItem rows for the dashboard.
WaitingSource = Callable[[Any], list[Any]]

_waiting_sources: dict[str, WaitingSource] = {}


def register_waiting_source(key: str, source: WaitingSource) -> None:
    """An app above consent adds what waits for the artist; registering the same key again replaces it."""
    _waiting_sources[key] = source


def waiting_from_above(user: object) -> list[Any]:
    return [item for source in _waiting_sources.values() for item in source(user)]
