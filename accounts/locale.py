"""Each user's language and time zone: which one applies, and switching to it.

Pages follow the user's choice, else the browser. Emails are written by a
worker that has no browser to ask, so they follow the user's choice, else the
language their browser last asked for, else the site default; and the
recipient's time zone, never the worker's.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import cache

from django.conf import settings
from django.utils import timezone, translation


@cache
def time_zone_names() -> frozenset[str]:
    # The system's tz database also lists files that are not places ("localtime", "Factory").
    return frozenset(name for name in zoneinfo.available_timezones() if name[:1].isupper() and name not in {"Factory"})


def time_zone_choices() -> list[tuple[str, str]]:
    # Places ("Europe/Berlin", read "Europe / Berlin"), not the legacy aliases; UTC first, as the default.
    names = sorted(name for name in time_zone_names() if "/" in name)
    return [("UTC", "UTC")] + [(name, name.replace("/", " / ").replace("_", " ")) for name in names]


def valid_time_zone(name: str | None) -> str | None:
    """The IANA name if this system knows it, else None (a browser hint may be anything)."""
    name = (name or "").strip()
    return name if name in time_zone_names() else None


def supported_language(code: str | None) -> str | None:
    if not code:
        return None
    try:
        return translation.get_supported_language_variant(code)
    except LookupError:
        return None


def language_for(user) -> str:
    """The language to write to this user in when no request is there to ask."""
    if user is None:
        return settings.LANGUAGE_CODE
    return (
        supported_language(getattr(user, "language", ""))
        or supported_language(getattr(user, "browser_language", ""))
        or settings.LANGUAGE_CODE
    )


def time_zone_name_for(user) -> str:
    return valid_time_zone(getattr(user, "time_zone", None)) or settings.TIME_ZONE


def time_zone_for(user) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(time_zone_name_for(user))


@contextmanager
def locale(language: str, time_zone: str | None = None) -> Iterator[None]:
    """Render in this language and, when one is given, this time zone (else the current one)."""
    with translation.override(language):
        if time_zone is None:
            yield
            return
        with timezone.override(zoneinfo.ZoneInfo(time_zone)):
            yield


def user_locale(user) -> AbstractContextManager[None]:
    """Render (an email, a notice) in this user's language and time zone."""
    return locale(language_for(user), time_zone_name_for(user))
