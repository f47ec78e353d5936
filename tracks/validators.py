"""ISRC and year rules shared by the edit form and tag import."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils import timezone

# Country (2 letters), registrant (3 alphanumerics), year (2 digits), designation (5 digits).
_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")
_ISRC_DECORATION = re.compile(r"[\s\-_.]")
MIN_YEAR = 1860  # the oldest surviving recordings


def normalise_isrc(value: str) -> str:
    """`GB-AYE-25-00001` → `GBAYE2500001`; raise ValidationError if it is not an ISRC."""
    compact = _ISRC_DECORATION.sub("", value or "").upper()
    if compact.startswith("ISRC"):
        compact = compact[4:].lstrip(":")
    if not _ISRC.match(compact):
        raise ValidationError(
            "An ISRC is 12 characters: 2-letter country, 3-character registrant, 2-digit year, "
            "5-digit number, e.g. GB-AYE-25-00001.",
            code="invalid_isrc",
        )
    return compact


def normalise_isrc_or_blank(value: str) -> str:
    """For tags read from files: an unusable ISRC is dropped, not fatal."""
    try:
        return normalise_isrc(value)
    except ValidationError:
        return ""


def max_year() -> int:
    return timezone.now().year + 1


def validate_year(value: int | None) -> None:
    if value is not None and not MIN_YEAR <= value <= max_year():
        raise ValidationError(f"Enter a year between {MIN_YEAR} and {max_year()}.", code="invalid_year")


def plausible_year(value: int | None) -> int | None:
    try:
        validate_year(value)
    except ValidationError:
        return None
    return value
