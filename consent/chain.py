"""The hash chain: one definition of an event's canonical form, used by the
writer and by the verifier, so they cannot disagree.

Two canonical forms exist, named by each event's `chain_version`:

- version 1 (events written before personal data was split out) hashes the
  request's IP address and user agent and the track title directly;
- version 2 hashes none of them. They live in two erasable side tables
  (`AuditActorData`: IP and user agent; `AuditSubjectData`: track title), and
  the hashed body carries a keyed hash of each (HMAC-SHA256 under a random key
  kept next to the data). Erasing the row erases data and key together: the
  chain still verifies, and what is left (the HMAC) cannot be brute-forced back
  into an IP address because its key is gone.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from consent.models import GENESIS_HASH

CURRENT_VERSION = 2

# The personal fields, grouped by whom they are about: the person who acted
# (where the request came from) and the subject of the event (the track).
ACTOR_DATA_FIELDS = ("ip", "user_agent")
SUBJECT_DATA_FIELDS = ("track_title",)
PERSONAL_FIELDS = (*ACTOR_DATA_FIELDS, *SUBJECT_DATA_FIELDS)

# The fields each version's hash covers, by column name. Changing a list
# changes every hash of that version: a new version, never an edit.
_V1_FIELDS = (
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
_V2_FIELDS = (
    "chain_version",
    *(name for name in _V1_FIELDS if name not in PERSONAL_FIELDS),
    "actor_data_digest",
    "subject_data_digest",
)
HASHED_FIELDS_BY_VERSION: dict[int, tuple[str, ...]] = {1: _V1_FIELDS, 2: _V2_FIELDS}
# Hashed only when set, so the events written before these columns existed
# keep their hashes (their canonical form has no such key) while a label or
# bulk-change link, once written, cannot be altered without breaking the chain.
OPTIONAL_HASHED_FIELDS = ("label_id", "bulk_change_id")
# Every column of consent_auditevent that some version hashes.
BODY_COLUMNS = (
    tuple(
        dict.fromkeys(
            name for fields in HASHED_FIELDS_BY_VERSION.values() for name in fields if name not in PERSONAL_FIELDS
        )
    )
    + OPTIONAL_HASHED_FIELDS
)


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


def _dumps(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(event: Mapping[str, Any]) -> str:
    """Sorted keys, no whitespace, UTC ISO timestamps, ids as strings.

    An event without `chain_version` is version 1 (every event written before
    the version existed).
    """
    version = int(event.get("chain_version") or 1)
    try:
        fields = HASHED_FIELDS_BY_VERSION[version]
    except KeyError:
        raise ValueError(f"Unknown audit chain version {version}.") from None
    payload = {name: _canonical_value(event[name]) for name in fields}
    for name in OPTIONAL_HASHED_FIELDS:
        if event.get(name) is not None:
            payload[name] = _canonical_value(event[name])
    return _dumps(payload)


def event_hash(prev_hash: str, event: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(event)).encode("utf-8")).hexdigest()


def personal_digest(key: str, values: Mapping[str, Any]) -> str:
    """HMAC-SHA256 of the personal values under their own key (hex)."""
    message = _dumps({name: _canonical_value(value) for name, value in values.items()})
    return hmac.new(bytes.fromhex(key), message.encode("utf-8"), hashlib.sha256).hexdigest()


def digest_matches(key: str, values: Mapping[str, Any], digest: str) -> bool:
    return hmac.compare_digest(personal_digest(key, values), digest)


@dataclass(frozen=True)
class SealedEvent:
    """One event ready to insert: the chained row and its erasable parts (None when empty)."""

    row: dict[str, Any]
    actor_data: dict[str, Any] | None
    subject_data: dict[str, Any] | None


def _commit_to(values: dict[str, Any]) -> tuple[str, str]:
    """(key, digest) for values that hold something; ("", "") when all are blank."""
    if not any(values.values()):
        return "", ""
    key = secrets.token_hex(32)
    return key, personal_digest(key, values)


def seal(event: Mapping[str, Any], *, seq: int, prev_hash: str) -> SealedEvent:
    """Chain one event (a dict with body and personal fields) in the current version."""
    row = {name: value for name, value in event.items() if name not in PERSONAL_FIELDS}
    actor_values = {name: event.get(name) or "" for name in ACTOR_DATA_FIELDS}
    subject_values = {name: event.get(name) or "" for name in SUBJECT_DATA_FIELDS}
    actor_key, actor_digest = _commit_to(actor_values)
    subject_key, subject_digest = _commit_to(subject_values)
    row.update(
        chain_version=CURRENT_VERSION,
        seq=seq,
        prev_hash=prev_hash,
        actor_data_digest=actor_digest,
        subject_data_digest=subject_digest,
    )
    row["hash"] = event_hash(prev_hash, row)
    return SealedEvent(
        row=row,
        actor_data={"event_id": row["hash"], "key": actor_key, **actor_values} if actor_key else None,
        subject_data={"event_id": row["hash"], "key": subject_key, **subject_values} if subject_key else None,
    )


__all__ = [
    "ACTOR_DATA_FIELDS",
    "BODY_COLUMNS",
    "CURRENT_VERSION",
    "GENESIS_HASH",
    "HASHED_FIELDS_BY_VERSION",
    "OPTIONAL_HASHED_FIELDS",
    "PERSONAL_FIELDS",
    "SUBJECT_DATA_FIELDS",
    "SealedEvent",
    "canonical_json",
    "digest_matches",
    "event_hash",
    "personal_digest",
    "seal",
]
