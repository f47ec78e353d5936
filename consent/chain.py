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
import re
import secrets
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
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


# --- Many events at once ---------------------------------------------------------------
#
# The bulk writer chains tens of thousands of events that differ in a few
# fields. Building a dict and running canonical_json per event costs more than
# the database insert; these functions produce the very same bytes from a
# template made once by canonical_json itself, so the two cannot disagree
# (consent/tests/test_chain_batch.py compares them event by event).

# Exactly what json.dumps(..., ensure_ascii=False) writes for a str.
_encode_str = json.encoder.encode_basestring


class LinkTemplate:
    """The canonical JSON of events sharing every hashed field except `varying`, with a slot per varying field.

    `common` holds the shared fields (as for canonical_json, any types, and
    every optional hashed field that is None). Each varying value must be an
    int or a str (a UUID as its str): anything else raises TypeError, and the
    first event of every `link_events` call is checked against canonical_json.
    """

    def __init__(self, common: Mapping[str, Any], varying: Sequence[str]):
        token = secrets.token_hex(8)
        probe = {**common, **{name: f"{token}{i}{token}" for i, name in enumerate(varying)}}
        text = canonical_json(probe)
        # Each slot stays inside its quotes: a value goes in as JSON string content.
        parts = re.split(f"{token}(\\d+){token}", text)
        slots = [int(index) for index in parts[1::2]]
        if sorted(slots) != list(range(len(varying))):
            raise ValueError("Every varying field must be hashed exactly once.")
        literals = [part.replace("{", "{{").replace("}", "}}") for part in parts[0::2]]
        pieces = [literals[0]]
        for slot, literal in zip(slots, literals[1:], strict=True):
            pieces += ["{" + str(slot) + "}", literal]
        self.common = dict(common)
        self.varying = tuple(varying)
        self._format = "".join(pieces).format

    def canonical(self, values: Sequence[Any]) -> str:
        # An int needs no escaping; a str is escaped as json.dumps does (a non-str raises TypeError there).
        return self._format(*[v if type(v) is int else _encode_str(v)[1:-1] for v in values])


def link_events(
    template: LinkTemplate, rows: Iterable[Sequence[Any]], heads: MutableMapping[int, tuple[int, str]]
) -> list[tuple[int, str, str]]:
    """Chain events onto their artists' heads, in row order: (seq, prev_hash, hash) per row.

    Each row holds the values of `template.varying`, which must include
    "artist_id" and "seq" (the seq given is ignored: it is the head's next).
    `heads` maps artist id to (seq, hash) and is advanced in place.
    """
    artist_at = template.varying.index("artist_id")
    seq_at = template.varying.index("seq")
    sha256 = hashlib.sha256
    linked: list[tuple[int, str, str]] = []
    checked = False
    for row in rows:
        artist_id = row[artist_at]
        seq, prev_hash = heads[artist_id]
        seq += 1
        values = list(row)
        values[seq_at] = seq
        digest = sha256((prev_hash + template.canonical(values)).encode("utf-8")).hexdigest()
        if not checked:
            _check_against_canonical(template, values, prev_hash, digest)
            checked = True
        heads[artist_id] = (seq, digest)
        linked.append((seq, prev_hash, digest))
    return linked


def _check_against_canonical(template: LinkTemplate, values: Sequence[Any], prev_hash: str, digest: str) -> None:
    """The first link of a batch, made again the slow way: a wrong value type fails here, not in verification."""
    event = {**template.common, **dict(zip(template.varying, values, strict=True))}
    if event_hash(prev_hash, event) != digest:
        raise ValueError("A varying audit field has a value the batch link cannot write canonically.")


def commit_many(names: Sequence[str], rows: Iterable[Sequence[str]]) -> list[tuple[str, str]]:
    """personal_digest under a fresh random key for each row of values: (key, digest), ("", "") when all blank.

    The same as seal() does per event (_commit_to), without a dict per event: one tight loop, since it
    runs once per event of a bulk change.
    """
    rows = list(rows)
    order = sorted(range(len(names)), key=lambda i: names[i])
    keys = [_encode_str(names[i]) + ":" for i in order]
    # One read of the random source for every key of the batch, 32 bytes each.
    randomness = secrets.token_bytes(32 * len(rows))
    digest = hmac.digest
    committed: list[tuple[str, str]] = []
    for n, values in enumerate(rows):
        if not any(values):
            committed.append(("", ""))
            continue
        message = "{" + ",".join([key + _encode_str(values[i]) for key, i in zip(keys, order, strict=True)]) + "}"
        key = randomness[32 * n : 32 * n + 32]
        committed.append((key.hex(), digest(key, message.encode("utf-8"), "sha256").hex()))
    return committed


__all__ = [
    "ACTOR_DATA_FIELDS",
    "BODY_COLUMNS",
    "CURRENT_VERSION",
    "GENESIS_HASH",
    "HASHED_FIELDS_BY_VERSION",
    "OPTIONAL_HASHED_FIELDS",
    "PERSONAL_FIELDS",
    "SUBJECT_DATA_FIELDS",
    "LinkTemplate",
    "SealedEvent",
    "canonical_json",
    "commit_many",
    "digest_matches",
    "event_hash",
    "link_events",
    "personal_digest",
    "seal",
]
