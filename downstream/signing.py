"""Manifest signatures: RFC 8785 canonical JSON, SHA-256 ids, Ed25519 JWS with a detached payload.

Anyone holding a manifest and the JWKS can check it offline: drop "id" and
"signature", canonicalise the rest (RFC 8785), compare its SHA-256 with "id",
and verify the detached compact JWS over those same bytes with the key named
by the JWS header's "kid".
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from django.conf import settings
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, KeySetSerialization, OKPKey

ALGORITHM = "Ed25519"  # RFC 9864's fully specified name for EdDSA over Ed25519
UNSIGNED_MEMBERS = ("id", "signature")


class ManifestInvalid(Exception):
    pass


def canonical(document: dict[str, Any]) -> bytes:
    return rfc8785.dumps(document)


def manifest_id(core: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(core)).hexdigest()


@dataclass(frozen=True)
class SigningKeyPair:
    kid: str
    key: OKPKey

    @property
    def public_jwk(self) -> dict[str, Any]:
        public = self.key.as_dict(private=False)
        return {**public, "kid": self.kid, "use": "sig", "alg": ALGORITHM}


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = OKPKey.generate_key("Ed25519", private=True)
    data = json.dumps(key.as_dict(private=True)).encode()
    # O_EXCL: two processes creating the key at once keep the first one's.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def load_signing_key() -> SigningKeyPair:
    """The private key from API_SIGNING_KEY_FILE, created on first use."""
    path = Path(settings.API_SIGNING_KEY_FILE)
    if not path.exists():
        _create_key_file(path)
    key = OKPKey.import_key(json.loads(path.read_text()))
    if key.as_dict(private=False).get("crv") != "Ed25519" or not key.is_private:
        raise ManifestInvalid(f"{path} does not hold a private Ed25519 key.")
    return SigningKeyPair(kid=key.thumbprint(), key=key)


def sign(payload: bytes, pair: SigningKeyPair) -> str:
    token = jws.serialize_compact({"alg": ALGORITHM, "kid": pair.kid}, payload, pair.key, algorithms=[ALGORITHM])
    return jws.detach_content(token)


def verify_manifest(document: dict[str, Any], jwks: KeySetSerialization) -> str:
    """Check a manifest's id and signature against a JWKS; returns the key id, raises ManifestInvalid."""
    if not isinstance(document, dict) or any(name not in document for name in UNSIGNED_MEMBERS):
        raise ManifestInvalid("Not a manifest: it needs an id and a signature.")
    core = {k: v for k, v in document.items() if k not in UNSIGNED_MEMBERS}
    payload = canonical(core)
    digest = hashlib.sha256(payload).hexdigest()
    if digest != document["id"]:
        raise ManifestInvalid(f"The content does not match its id: its SHA-256 is {digest}.")
    signature = document["signature"]
    if not isinstance(signature, str) or signature.count(".") != 2:
        raise ManifestInvalid("The signature is not a compact JWS.")
    try:
        keys = KeySet.import_key_set(jwks)
        result = jws.deserialize_compact(signature, keys, payload=payload, algorithms=[ALGORITHM])
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise ManifestInvalid(f"The signature does not verify: {error}") from None
    return str(result.headers().get("kid", ""))
