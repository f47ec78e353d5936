import pytest
from django.core.exceptions import ImproperlyConfigured

from creatorportal.mailers import mailer_from_url

SMTP = "django.core.mail.backends.smtp.EmailBackend"


def mailer(url: str) -> dict:
    return mailer_from_url(url, timeout=10, default_file_path="/srv/portal/var/mail")


def test_smtp_with_starttls_credentials_and_the_default_timeout():
    assert mailer("smtp://portal%40example.org:p%2Fss@mail.example.org:587?tls=1") == {
        "BACKEND": SMTP,
        "OPTIONS": {
            "host": "mail.example.org",
            "port": 587,
            "username": "portal@example.org",
            "password": "p/ss",
            "use_ssl": False,
            "use_tls": True,
            "timeout": 10,
        },
    }


def test_plain_smtp_defaults_to_port_25_without_tls_or_credentials():
    options = mailer("smtp://127.0.0.1")["OPTIONS"]

    assert (options["host"], options["port"], options["use_tls"], options["use_ssl"]) == ("127.0.0.1", 25, False, False)
    assert (options["username"], options["password"]) == ("", "")


@pytest.mark.parametrize("flag", ["0", "no", ""])
def test_smtp_tls_stays_off_unless_asked(flag):
    assert mailer(f"smtp://mail.example.org:587?tls={flag}")["OPTIONS"]["use_tls"] is False


def test_smtps_is_implicit_tls_on_port_465():
    options = mailer("smtps://user:secret@mail.example.org")["OPTIONS"]

    assert (options["port"], options["use_ssl"], options["use_tls"]) == (465, True, False)
    assert mailer("smtps://mail.example.org:2465")["OPTIONS"]["port"] == 2465


def test_file_url_names_an_absolute_folder():
    assert mailer("file:///tmp/portal-mail") == {
        "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "OPTIONS": {"file_path": "/tmp/portal-mail"},
    }
    assert mailer("file://")["OPTIONS"]["file_path"] == "/srv/portal/var/mail"


def test_console():
    assert mailer("console://") == {"BACKEND": "django.core.mail.backends.console.EmailBackend"}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("smtp://:25", "EMAIL_URL='smtp://:25' has no host name."),
        ("smtps://", "EMAIL_URL='smtps://' has no host name."),
        ("smtp://mail.example.org:port", "EMAIL_URL='smtp://mail.example.org:port' is not valid"),
        ("http://mail.example.org", "has scheme 'http'; expected one of: console, file, smtp, smtps."),
        ("memory://", "has scheme 'memory'"),
    ],
)
def test_an_unusable_email_url_names_the_variable(url, message):
    with pytest.raises(ImproperlyConfigured) as raised:
        mailer(url)

    assert message in str(raised.value)
