"""The hash chain: one definition of an event's canonical form, used by the
writer and by the verifier, so they cannot disagree."""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any

from consent.models import GENESIS_HASH

# The fields an event's hash covers, by column name. Adding a field to this
# list changes every hash: that is a new chain format, never an edit.
HASHED_FIELDS = (
    "artist_id",
    "seq",
    "actor_id",
    "actor_kind",
    "source",
    "kind",
    "track_id",
    "track_uuid",
    "track_title",
    "purpose_id",
    "purpose_slug",
    "old_value",
    "new_value",
    "policy_version_id",
    "ip",
    "user_agent",
    "request_id",
    "receipt_id",
    "created_at",
)
# Hashed only when set, so the events written before these columns existed
# keep their hashes (their canonical form has no such key) while a label or
# bulk-change link, once written, cannot be altered without breaking the chain.
OPTIONAL_HASHED_FIELDS = ("label_id", "bulk_change_id")


def _canonical_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise ValueError("Audit timestamps must be timezone-aware.")
        return value.astimezone(datetime.UTC).isoformat(timespec="microseconds")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def canonical_json(event: dict[str, Any]) -> str:
    """Sorted keys, no whitespace, UTC ISO timestamps, ids as strings."""
    payload = {name: _canonical_value(event[name]) for name in HASHED_FIELDS}
    for name in OPTIONAL_HASHED_FIELDS:
        if event.get(name) is not None:
            payload[name] = _canonical_value(event[name])
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(prev_hash: str, event: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(event)).encode("utf-8")).hexdigest()


__all__ = ["GENESIS_HASH", "HASHED_FIELDS", "OPTIONAL_HASHED_FIELDS", "canonical_json", "event_hash"]
