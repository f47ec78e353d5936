"""Signed checkpoints of the audit chains, kept where the database cannot rewrite them.

A checkpoint is three files in AUDIT_CHECKPOINT_DIR, each created once and
never overwritten (O_EXCL):

- `NNNNNNNN.heads.json.gz`: every artist's chain head, `[artist_id, seq, hash]`;
- `NNNNNNNN.events.json.gz`: `[artist_id, seq, hash]` of every event added since
  the previous checkpoint (so a rewrite can be pinned to its first event);
- `NNNNNNNN.statement.json`: written last, the statement and its Ed25519
  signature. The statement holds the time, the number, the previous
  statement's digest, the Merkle root over the heads (RFC 6962 style: 0x00
  leaf and 0x01 node prefixes, an odd node moves up), and the SHA-256 of the
  two data files.

A checkpoint is only written after the chains verify from the previous one,
so it never signs a state that is already broken.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

FORMAT = "creator-consent-portal/audit-checkpoint/1"


class CheckpointError(Exception):
    """A checkpoint that cannot be read, or does not verify."""


# --- Keys ----------------------------------------------------------------------------------


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:  # O_EXCL: two processes creating the key at once keep the first one's.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def signing_key() -> Ed25519PrivateKey:
    """The key from AUDIT_CHECKPOINT_KEY_FILE; created on first use only where settings allow (development, tests)."""
    path = Path(settings.AUDIT_CHECKPOINT_KEY_FILE)
    if not path.exists():
        if not settings.AUDIT_CHECKPOINT_CREATE_KEY:
            raise ImproperlyConfigured(f"AUDIT_CHECKPOINT_KEY_FILE={path} does not exist.")
        _create_key_file(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"AUDIT_CHECKPOINT_KEY_FILE={path} is not an Ed25519 private key.")
    return key


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def trusted_keys() -> dict[str, Ed25519PublicKey]:
    """The current key's public half, and any earlier public keys named in AUDIT_CHECKPOINT_TRUSTED_KEYS."""
    keys = {}
    for name in settings.AUDIT_CHECKPOINT_TRUSTED_KEYS:
        public = serialization.load_pem_public_key(Path(name).read_bytes())
        if not isinstance(public, Ed25519PublicKey):
            raise ImproperlyConfigured(f"{name} (AUDIT_CHECKPOINT_TRUSTED_KEYS) is not an Ed25519 public key.")
        keys[key_id(public)] = public
    if Path(settings.AUDIT_CHECKPOINT_KEY_FILE).exists() or settings.AUDIT_CHECKPOINT_CREATE_KEY:
        public = signing_key().public_key()
        keys[key_id(public)] = public
    return keys


# --- Merkle root ---------------------------------------------------------------------------


def leaf_hash(artist_id: int, seq: int, hash_: str) -> bytes:
    return hashlib.sha256(b"\x00" + f"{artist_id}:{seq}:{hash_}".encode()).digest()


def merkle_root(leaves: list[bytes]) -> str:
    if not leaves:
        return hashlib.sha256(b"").hexdigest()
    level = leaves
    while len(level) > 1:
        paired = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()


def heads_root(heads: list[list]) -> str:
    return merkle_root([leaf_hash(artist, seq, hash_) for artist, seq, hash_ in heads])


# --- Storage -------------------------------------------------------------------------------


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class CheckpointStore:
    """A directory where files are created once and never replaced."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    @classmethod
    def from_settings(cls) -> CheckpointStore:
        return cls(settings.AUDIT_CHECKPOINT_DIR)

    def path(self, number: int, part: str) -> Path:
        return self.directory / f"{number:08d}.{part}"

    def numbers(self) -> list[int]:
        """Numbers of complete checkpoints (those with a statement), oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for entry in self.directory.glob("*.statement.json"):
            head = entry.name.split(".", 1)[0]
            if head.isdigit():
                found.append(int(head))
        return sorted(found)

    def next_number(self) -> int:
        """After every file present, complete or not: a half-written checkpoint's number is never reused."""
        if not self.directory.is_dir():
            return 1
        used = [int(p.name.split(".", 1)[0]) for p in self.directory.iterdir() if p.name.split(".", 1)[0].isdigit()]
        return max(used, default=0) + 1

    def create(self, number: int, part: str, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path(number, part), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    def read(self, number: int, part: str) -> bytes:
        try:
            return self.path(number, part).read_bytes()
        except OSError as error:
            raise CheckpointError(f"checkpoint {number}: cannot read its {part} file ({error})") from None


# --- Reading and verifying -----------------------------------------------------------------


@dataclass
class Checkpoint:
    number: int
    statement: dict
    digest: str  # SHA-256 of the signed statement bytes; the next checkpoint names it
    heads: dict[int, tuple[int, str]] = field(default_factory=dict)

    @property
    def created_at(self) -> str:
        return self.statement["created_at"]


def _verified_statement(store: CheckpointStore, number: int, keys: dict[str, Ed25519PublicKey]) -> tuple[dict, str]:
    try:
        document = json.loads(store.read(number, "statement.json"))
        statement, signature = document["statement"], bytes.fromhex(document["signature"])
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"checkpoint {number}: the statement file is not readable ({error})") from None
    if statement.get("format") != FORMAT or statement.get("number") != number:
        raise CheckpointError(f"checkpoint {number}: not a checkpoint statement of this format and number")
    public = keys.get(statement.get("key_id", ""))
    if public is None:
        raise CheckpointError(f"checkpoint {number}: signed with key {statement.get('key_id')!r}, which is not trusted")
    signed = canonical(statement)
    try:
        public.verify(signature, signed)
    except InvalidSignature:
        raise CheckpointError(f"checkpoint {number}: the signature does not verify") from None
    return statement, hashlib.sha256(signed).hexdigest()


def _data(store: CheckpointStore, number: int, part: str, expected_sha256: str) -> list[list]:
    raw = store.read(number, part)
    if hashlib.sha256(raw).hexdigest() != expected_sha256:
        raise CheckpointError(f"checkpoint {number}: its {part} file does not match the signed digest")
    try:
        return json.loads(gzip.decompress(raw))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"checkpoint {number}: its {part} file is not readable ({error})") from None


def load(store: CheckpointStore, number: int, keys: dict[str, Ed25519PublicKey]) -> Checkpoint:
    """A checkpoint whose signature, data files and Merkle root all verify (else CheckpointError)."""
    statement, digest = _verified_statement(store, number, keys)
    heads = _data(store, number, "heads.json.gz", statement["heads_sha256"])
    if heads_root(heads) != statement["merkle_root"]:
        raise CheckpointError(f"checkpoint {number}: the heads do not give the signed Merkle root")
    return Checkpoint(number, statement, digest, {artist: (seq, hash_) for artist, seq, hash_ in heads})


def last_good(store: CheckpointStore | None = None) -> tuple[Checkpoint | None, list[str]]:
    """The newest checkpoint that verifies, and what is wrong with any newer ones."""
    store = store or CheckpointStore.from_settings()
    numbers = store.numbers()
    if not numbers:
        return None, []
    keys = trusted_keys()
    problems: list[str] = []
    for number in reversed(numbers):
        try:
            return load(store, number, keys), problems
        except CheckpointError as error:
            problems.append(str(error))
    return None, problems


def recorded_events(store: CheckpointStore, upto: int, artist_id: int) -> dict[int, str]:
    """seq -> hash of one artist's events as the signed checkpoints 1..upto recorded them."""
    keys = trusted_keys()
    recorded: dict[int, str] = {}
    for number in [n for n in store.numbers() if n <= upto]:
        statement, _digest = _verified_statement(store, number, keys)
        for artist, seq, hash_ in _data(store, number, "events.json.gz", statement["events_sha256"]):
            if artist == artist_id:
                recorded[seq] = hash_
    return recorded


# --- Writing -------------------------------------------------------------------------------


def write(
    *,
    heads: dict[int, tuple[int, str]],
    new_events: list[tuple[int, int, str]],
    previous: Checkpoint | None,
    store: CheckpointStore | None = None,
    now: datetime.datetime | None = None,
) -> Checkpoint:
    store = store or CheckpointStore.from_settings()
    key = signing_key()
    number = store.next_number()
    head_rows = [[artist, seq, hash_] for artist, (seq, hash_) in sorted(heads.items())]
    heads_file = gzip.compress(canonical(head_rows), mtime=0)
    events_file = gzip.compress(canonical([list(event) for event in new_events]), mtime=0)
    statement = {
        "format": FORMAT,
        "number": number,
        "created_at": (now or timezone.now()).astimezone(datetime.UTC).isoformat(timespec="microseconds"),
        "previous": previous.digest if previous else None,
        "chains": len(head_rows),
        "events": sum(seq for seq, _hash in heads.values()),
        "events_recorded": len(new_events),
        "merkle_root": heads_root(head_rows),
        "heads_sha256": hashlib.sha256(heads_file).hexdigest(),
        "events_sha256": hashlib.sha256(events_file).hexdigest(),
        "key_id": key_id(key.public_key()),
    }
    signed = canonical(statement)
    document = {"statement": statement, "signature": key.sign(signed).hex()}
    store.create(number, "heads.json.gz", heads_file)
    store.create(number, "events.json.gz", events_file)
    store.create(number, "statement.json", json.dumps(document, indent=2, sort_keys=True).encode() + b"\n")
    return Checkpoint(number, statement, hashlib.sha256(signed).hexdigest(), dict(heads))
