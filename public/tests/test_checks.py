"""The deploy check refuses a C2PA signing certificate that validators would reject."""

from __future__ import annotations

from pathlib import Path

import pytest

from public import checks, devcert


def test_the_generated_certificate_passes(settings):
    assert checks.c2pa_signing_certificate(None) == []


def _ca_first(made: devcert.DevCertificate) -> None:
    marker = b"-----BEGIN CERTIFICATE-----"
    leaf, ca = (marker + part for part in made.chain_path.read_bytes().split(marker)[1:])
    made.chain_path.write_bytes(ca + leaf)


def _leaf_only(made: devcert.DevCertificate) -> None:
    end = b"-----END CERTIFICATE-----"
    made.chain_path.write_bytes(made.chain_path.read_bytes().split(end)[0] + end + b"\n")


def _someone_elses_key(made: devcert.DevCertificate) -> None:
    made.key_path.write_bytes(devcert.generate(made.ca_path.parent / "other").key_path.read_bytes())


def _missing(made: devcert.DevCertificate) -> None:
    made.chain_path.unlink()


def _garbage(made: devcert.DevCertificate) -> None:
    made.chain_path.write_text("not a certificate")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_ca_first, "must be the signing (leaf) certificate"),
        (_leaf_only, "followed by the CA"),
        (_someone_elses_key, "does not belong"),
        (_missing, "cannot read"),
        (_garbage, "does not load"),
    ],
)
def test_a_bad_chain_or_key_is_refused_with_the_reason(settings, tmp_path, damage, message):
    made = devcert.generate(tmp_path / "c2pa")
    settings.PUBLIC_C2PA_CERT_CHAIN, settings.PUBLIC_C2PA_PRIVATE_KEY = str(made.chain_path), str(made.key_path)
    damage(made)

    [error] = checks.c2pa_signing_certificate(None)

    assert error.id == "public.E001" and message in error.msg


def test_the_quick_start_command_makes_a_certificate_once_and_only_in_development(settings, tmp_path):
    from django.core.management import CommandError, call_command

    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG only"):
        call_command("make_dev_c2pa_certificate")
    settings.DEBUG = True
    settings.PUBLIC_C2PA_CERT_CHAIN = str(tmp_path / "c2pa" / "chain.pem")
    settings.PUBLIC_C2PA_PRIVATE_KEY = str(tmp_path / "c2pa" / "key.pem")
    call_command("make_dev_c2pa_certificate")
    first = Path(settings.PUBLIC_C2PA_CERT_CHAIN).read_bytes()
    call_command("make_dev_c2pa_certificate")
    assert Path(settings.PUBLIC_C2PA_CERT_CHAIN).read_bytes() == first
    assert checks.c2pa_signing_certificate(None) == []
