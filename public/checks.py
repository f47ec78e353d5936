"""Deploy checks: the C2PA signing certificate must load and be usable before anything is signed with it."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.conf import settings
from django.core.checks import Error, Tags, register


def _problem(chain_pem: bytes, key_pem: bytes) -> str:
    certificates = x509.load_pem_x509_certificates(chain_pem)
    leaf = certificates[0]
    constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    if constraints.ca:
        return "the first certificate of the chain must be the signing (leaf) certificate, not a CA"
    if len(certificates) < 2:
        return "the chain must hold the signing certificate followed by the CA that issued it"
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    if ExtendedKeyUsageOID.EMAIL_PROTECTION not in usages:
        return "the signing certificate needs the emailProtection extended key usage"
    key = serialization.load_pem_private_key(key_pem, password=None)
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != leaf.public_key().public_bytes(
        serialization.Encoding.DER, public
    ):
        return "the private key does not belong to the signing certificate"
    return ""


@register(Tags.security, deploy=True)
def c2pa_signing_certificate(app_configs, **kwargs):
    chain_path, key_path = settings.PUBLIC_C2PA_CERT_CHAIN, settings.PUBLIC_C2PA_PRIVATE_KEY
    try:
        problem = _problem(Path(chain_path).read_bytes(), Path(key_path).read_bytes())
    except OSError as exc:
        problem = f"cannot read {exc.filename}: {exc.strerror}"
    except (ValueError, TypeError, x509.ExtensionNotFound) as exc:
        problem = f"the certificate chain or key does not load ({exc})"
    if not problem:
        return []
    return [
        Error(
            f"C2PA signing certificate (PUBLIC_C2PA_CERT_CHAIN, PUBLIC_C2PA_PRIVATE_KEY): {problem}.",
            hint="Public audio copies are signed with it. See .env.example.",
            id="public.E001",
        )
    ]
