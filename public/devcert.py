"""A local test CA and a C2PA signing certificate, for development and tests only.

C2PA validators want an end-entity certificate that is not a CA, has the
digitalSignature key usage and the emailProtection extended key usage, and
chains to a CA; the chain file lists the leaf first. Production uses a
certificate from a real CA, named in settings.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class DevCertificate:
    chain_path: Path
    key_path: Path
    ca_path: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Creator Consent Portal (development)"),
        ]
    )


def _new_key(alg: str):
    if alg == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "es256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unsupported signing algorithm {alg!r} (ed25519 or es256)")


def _digest(alg: str):
    # Ed25519 signs without a separate digest.
    return None if alg == "ed25519" else hashes.SHA256()


def _usage(*, signer: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signer,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signer,
        crl_sign=not signer,
        encipher_only=False,
        decipher_only=False,
    )


def generate(directory: str | os.PathLike, *, alg: str = "ed25519", days: int = 3650) -> DevCertificate:
    """Write ca.pem, chain.pem (leaf then CA) and key.pem (the leaf's key) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=days)

    ca_key = _new_key(alg)
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Creator Consent Portal development CA"))
        .issuer_name(_name("Creator Consent Portal development CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(signer=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, _digest(alg))
    )
    leaf_key = _new_key(alg)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("Creator Consent Portal development signer"))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(signer=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, _digest(alg))
    )
    pem = serialization.Encoding.PEM
    result = DevCertificate(directory / "chain.pem", directory / "key.pem", directory / "ca.pem")
    result.ca_path.write_bytes(ca.public_bytes(pem))
    result.chain_path.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    key_bytes = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # The key is written readable by its owner only.
    descriptor = os.open(result.key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as key_file:
        key_file.write(key_bytes)
    return result
