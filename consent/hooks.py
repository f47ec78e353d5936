"""Hooks that higher apps register into, so consent never imports them.

A listener registered here runs inside the transaction of every consent
change, with the cells that changed; whatever it writes commits or rolls back
with the change itself. Apps above consent (public/, for its distribution
copies) register in their AppConfig.ready().
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


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
