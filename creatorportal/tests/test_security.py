import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

BASE_DIR = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "portal.example.org",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://portal.example.org",
    "SITE_URL": "https://portal.example.org",
    "EMAIL_URL": "smtp://mail.example.org:587?tls=1",
}


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean_env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "EMAIL_", "SITE_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**clean_env, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def c2pa_signing_files(tmp_path) -> dict[str, str]:
    """A certificate chain and key where production names its own (public audio copies are signed with it)."""
    from public import devcert

    made = devcert.generate(tmp_path / "c2pa")
    return {"PUBLIC_C2PA_CERT_CHAIN": str(made.chain_path), "PUBLIC_C2PA_PRIVATE_KEY": str(made.key_path)}


def test_check_deploy_is_clean_under_production_variables(c2pa_signing_files):
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV, **c2pa_signing_files)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DJANGO_DEBUG", "maybe", "DJANGO_DEBUG='maybe' is not a boolean"),
        ("DATABASE_URL", "mysql://db/portal", "DATABASE_URL='mysql://db/portal' has scheme 'mysql'"),
        ("REDIS_URL", "http://localhost:6379", "REDIS_URL='http://localhost:6379' has scheme 'http'"),
        ("EMAIL_URL", "smtp://:25", "has no host name"),
        ("DJANGO_HSTS_SECONDS", "a year", "DJANGO_HSTS_SECONDS='a year' is not a whole number"),
        ("STORAGE_BACKEND", "ftp", "STORAGE_BACKEND='ftp' is not one of"),
        ("TRACKS_MAX_UPLOAD_BYTES", "0", "TRACKS_MAX_UPLOAD_BYTES='0' must be at least 1"),
    ],
)
def test_a_bad_variable_stops_startup_with_a_message_naming_it(variable, value, expected):
    result = run_manage("check", **{variable: value})

    assert result.returncode != 0
    assert expected in result.stderr


@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        ("DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY must be set"),
        ("EMAIL_URL", "EMAIL_URL must be set"),
        ("PUBLIC_C2PA_CERT_CHAIN", "PUBLIC_C2PA_CERT_CHAIN and PUBLIC_C2PA_PRIVATE_KEY must name"),
    ],
)
def test_production_refuses_to_start_without_an_essential_variable(variable, expected, c2pa_signing_files):
    env = {**PRODUCTION_ENV, **c2pa_signing_files, variable: ""}

    result = run_manage("check", **env)

    assert result.returncode != 0
    assert expected in result.stderr


@pytest.mark.django_db
def test_pages_carry_csp_and_security_headers(client):
    response = client.get(reverse("landing"))

    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert len(response["X-Request-ID"]) >= 8


@pytest.mark.django_db
def test_templates_contain_no_inline_scripts_or_styles():
    template_dir = BASE_DIR / "templates"
    offenders = []
    for path in template_dir.rglob("*.html"):
        if path.is_relative_to(template_dir / "emails") or path.is_relative_to(template_dir / "account" / "email"):
            continue  # email clients need inline styles; CSP does not apply to mail
        text = path.read_text()
        if "<style" in text or " style=" in text or "onclick=" in text or "<script>" in text:
            offenders.append(str(path.relative_to(BASE_DIR)))
    assert offenders == []


@pytest.mark.django_db
def test_unknown_page_renders_the_site_404(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404


def test_error_handlers_render_without_a_database(rf):
    from accounts.views import server_error

    response = server_error(rf.get("/"))

    assert response.status_code == 500
    assert b"Something went wrong on our side" in response.content


@pytest.mark.django_db
def test_too_many_files_in_one_request_gets_the_site_400_page(artist_client, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.DEBUG = False
    files = [SimpleUploadedFile(f"f{n}.mp3", b"x") for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1)]

    response = artist_client.post(reverse("tracks:upload"), {"files": files})

    assert response.status_code == 400
    assert "Nothing was saved" in response.text
