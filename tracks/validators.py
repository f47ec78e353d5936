"""ISRC and year rules: the one ISRC normaliser for tags, the edit form and label CSV import."""

from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext

# Country (2 letters), registrant (3 alphanumerics), year (2 digits), designation (5 digits).
_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")
# What people put between the parts: spaces, hyphens (and the dashes word
# processors turn them into), underscores, dots, slashes.
_ISRC_DECORATION = re.compile(r"[\s\-_./\u2010-\u2015\u2212]")
MIN_YEAR = 1860  # the oldest surviving recordings


def isrc_key(value: str | None) -> str:
    """The one spelling of an ISRC, however it was written; not validated.

    "GB AYE 25 00001", "gb-aye-25-00001", "ISRC: GBAYE2500001" → "GBAYE2500001".
    Everything that stores, matches or compares ISRCs goes through this, so a
    code read from a tag, typed into a form or listed in a CSV is one code.
    """
    # NFKC folds full-width letters and digits (pasted from CJK text) to ASCII.
    compact = _ISRC_DECORATION.sub("", unicodedata.normalize("NFKC", value or "")).upper()
    if compact.startswith("ISRC"):
        compact = compact[4:].lstrip(":")
    return compact


def isrc_or_none(value: str | None) -> str | None:
    """The one spelling of an ISRC, or None if it is not one."""
    compact = isrc_key(value)
    return compact if _ISRC.match(compact) else None


def normalise_isrc(value: str) -> str:
    """`GB-AYE-25-00001` → `GBAYE2500001`; raise ValidationError if it is not an ISRC."""
    compact = isrc_or_none(value)
    if compact is None:
        raise ValidationError(
            gettext(
                "An ISRC is 12 characters: 2-letter country, 3-character registrant, 2-digit year, "
                "5-digit number, e.g. GB-AYE-25-00001."
            ),
            code="invalid_isrc",
        )
    return compact


def normalise_isrc_or_blank(value: str) -> str:
    """For tags read from files: an unusable ISRC is dropped, not fatal."""
    return isrc_or_none(value) or ""


def max_year() -> int:
    return timezone.now().year + 1


def validate_year(value: int | None) -> None:
    if value is not None and not MIN_YEAR <= value <= max_year():
        raise ValidationError(
            gettext("Enter a year between %(min)s and %(max)s.") % {"min": MIN_YEAR, "max": max_year()},
            code="invalid_year",
        )


def plausible_year(value: int | None) -> int | None:
    try:
        validate_year(value)
    except ValidationError:
        return None
    return value
