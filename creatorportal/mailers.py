"""EMAIL_URL to Django's MAILERS entry, through dj-email-url.

Kept out of settings.py so the translation is tested directly. Accepted forms:
smtp://user:pass@host:port (?tls=1 for STARTTLS), smtps://host (implicit TLS,
port 465 by default), file:///absolute/path, console://.
"""

from __future__ import annotations

import warnings
from typing import Any
from urllib.parse import urlsplit

import dj_email_url
from django.core.exceptions import ImproperlyConfigured

SCHEMES = frozenset({"smtp", "smtps", "file", "console"})
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def mailer_from_url(url: str, *, timeout: int, default_file_path: str) -> dict[str, Any]:
    """The MAILERS["default"] entry for `url`; ImproperlyConfigured naming EMAIL_URL if it is unusable."""
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ImproperlyConfigured(
            f"EMAIL_URL={url!r} has scheme {scheme!r}; expected one of: {', '.join(sorted(SCHEMES))}."
        )
    try:
        with warnings.catch_warnings():
            # dj-email-url reads smtps as STARTTLS and warns about it; here smtps has always meant
            # implicit TLS, set below.
            warnings.simplefilter("ignore", UserWarning)
            parsed = dj_email_url.parse(url)
    except ValueError as exc:  # a port or timeout that is not a number
        raise ImproperlyConfigured(f"EMAIL_URL={url!r} is not valid: {exc}.") from None
    if parsed["EMAIL_BACKEND"] == SMTP_BACKEND:
        # dj-email-url falls back to localhost; a missing host is a mistake, not a wish.
        if not urlsplit(url).hostname:
            raise ImproperlyConfigured(f"EMAIL_URL={url!r} has no host name.")
        use_ssl = scheme == "smtps" or parsed["EMAIL_USE_SSL"]
        return {
            "BACKEND": SMTP_BACKEND,
            "OPTIONS": {
                "host": parsed["EMAIL_HOST"],
                "port": parsed["EMAIL_PORT"] or 465,
                "username": parsed["EMAIL_HOST_USER"] or "",
                "password": parsed["EMAIL_HOST_PASSWORD"] or "",
                "use_ssl": use_ssl,
                "use_tls": not use_ssl and parsed["EMAIL_USE_TLS"],
                "timeout": parsed["EMAIL_TIMEOUT"] or timeout,
            },
        }
    if scheme == "file":
        # dj-email-url drops the path's first slash (file:////abs, as in sqlite URLs);
        # EMAIL_URL has always meant file:///absolute/path.
        path = parsed["EMAIL_FILE_PATH"]
        return {"BACKEND": parsed["EMAIL_BACKEND"], "OPTIONS": {"file_path": f"/{path}" if path else default_file_path}}
    return {"BACKEND": parsed["EMAIL_BACKEND"]}
