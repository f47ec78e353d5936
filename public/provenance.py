"""Signing a distribution copy with a C2PA manifest, and reading one back (c2pa-python).

The manifest records the copy as an edit of the artist's original (which
becomes its parent ingredient) and carries the training-and-data-mining
assertions from public.answers. The certificate chain (leaf first) and the
private key come from settings; the quick start makes a local test CA.

Nothing here reaches the network: remote manifests and OCSP are not fetched,
so an upload that points at a URL cannot make the worker call it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import c2pa
from django.conf import settings

# tracks.metadata format key -> the MIME type c2pa reads and writes it as.
MIME_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac", "m4a": "audio/mp4"}
ALGORITHMS = {"ed25519", "es256", "es384", "ps256"}
_OFFLINE = {"remote_manifest_fetch": False, "ocsp_fetch": False}


class SigningError(Exception):
    """The copy could not be signed or its manifest read, with the reason."""


@dataclass(frozen=True)
class ManifestSummary:
    """What a reader of the file finds in its active C2PA manifest."""

    labels: list[str]
    training_mining: dict[str, dict[str, str]]
    validation_state: str
    signer: str
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "labels": self.labels,
            "training_mining": self.training_mining,
            "validation_state": self.validation_state,
            "signer": self.signer,
            "failures": self.failures,
        }


def supports(format_key: str) -> bool:
    return format_key in MIME_TYPES


def _credentials() -> tuple[bytes, bytes]:
    chain_path, key_path = settings.PUBLIC_C2PA_CERT_CHAIN, settings.PUBLIC_C2PA_PRIVATE_KEY
    if not chain_path or not key_path:
        raise SigningError(
            "No C2PA signing certificate is configured (PUBLIC_C2PA_CERT_CHAIN, PUBLIC_C2PA_PRIVATE_KEY)."
        )
    try:
        return Path(chain_path).read_bytes(), Path(key_path).read_bytes()
    except OSError as exc:
        raise SigningError(f"The C2PA signing certificate or key cannot be read: {exc.strerror}.") from exc


def _trust_anchor(chain: bytes) -> str:
    """The last certificate of the chain (its root), trusted when reading our own copies back."""
    marker = b"-----BEGIN CERTIFICATE-----"
    parts = chain.split(marker)
    return (marker + parts[-1]).decode("ascii") if len(parts) > 1 else ""


def _context(*, trust_pem: str = "") -> c2pa.Context:
    config: dict = {"verify": dict(_OFFLINE), "builder": {"thumbnail": {"enabled": False}}}
    if trust_pem:
        config["trust"] = {"user_anchors": trust_pem}
    return c2pa.Context.from_dict(config)


def sign(source: Path, destination: Path, *, format_key: str, title: str, assertions: list[dict]) -> None:
    """Write `source` with a signed manifest into `destination`; the manifest is verified as it is written."""
    chain, key = _credentials()
    manifest = {
        "claim_generator_info": [{"name": "Creator Consent Portal", "version": "1"}],
        "title": title[:200],
        "format": MIME_TYPES[format_key],
        "assertions": assertions,
    }
    context = _context(trust_pem=_trust_anchor(chain))
    try:
        signer = c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(settings.PUBLIC_C2PA_SIGNING_ALG, chain, key, settings.PUBLIC_C2PA_TSA_URL or None)
        )
        with signer, c2pa.Builder(manifest, context=context) as builder:
            # An edit of the artist's upload: the source becomes the parent ingredient.
            builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
            with source.open("rb") as src, destination.open("wb") as dst:
                builder.sign(signer, MIME_TYPES[format_key], src, dst)
    except c2pa.C2paError as exc:
        raise SigningError(f"C2PA signing failed: {exc}") from exc


def read(path: Path, *, format_key: str) -> ManifestSummary | None:
    """The active manifest of the file, or None when it has none."""
    trust = ""
    if settings.PUBLIC_C2PA_CERT_CHAIN:
        try:
            trust = _trust_anchor(Path(settings.PUBLIC_C2PA_CERT_CHAIN).read_bytes())
        except OSError:
            trust = ""
    try:
        with (
            path.open("rb") as stream,
            c2pa.Reader(MIME_TYPES[format_key], stream, context=_context(trust_pem=trust)) as reader,
        ):
            store = json.loads(reader.json())
            state = reader.get_validation_state() or ""
    except c2pa.C2paError as exc:
        if "ManifestNotFound" in type(exc).__name__ or "not found" in str(exc).lower():
            return None
        raise SigningError(f"The C2PA manifest could not be read: {exc}") from exc
    active = store.get("manifests", {}).get(store.get("active_manifest") or "", {})
    assertions = active.get("assertions", [])
    training = {
        a["label"]: {key: entry.get("use", "") for key, entry in a.get("data", {}).get("entries", {}).items()}
        for a in assertions
        if a.get("label") in ("cawg.training-mining", "c2pa.training-mining")
    }
    failures = [
        item.get("code", "")
        for item in store.get("validation_results", {}).get("activeManifest", {}).get("failure", [])
    ]
    signature = active.get("signature_info", {})
    return ManifestSummary(
        labels=[a.get("label", "") for a in assertions],
        training_mining=training,
        validation_state=state,
        signer=signature.get("common_name") or signature.get("issuer") or "",
        failures=failures,
    )
