"""The one rule for the separate confirmation: granting a purpose that requires it (generative
training) needs an explicit, specific confirmation of that grant.

Every path asks here: the consent writers (which refuse an unconfirmed grant),
the upload form (which offers only purposes that need no confirmation), label
CSV imports, delegation forms and scopes (letting a label grant such a purpose
needs the same confirmation), query filters (`needing_confirmation`) and templates (the
`needs_own_confirmation` filter of `{% load consent_rules %}`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING

from django.db.models import Q

if TYPE_CHECKING:
    from consent.models import Purpose


def needs_own_confirmation(purpose: Purpose) -> bool:
    return bool(purpose.requires_confirmation)


def needing_confirmation(purpose_path: str = "") -> Q:
    """needs_own_confirmation as a query condition: `purpose_path` leads from the queried model to a Purpose
    ("" on Purpose itself, "purpose__" on a row with a purpose)."""
    return Q(**{f"{purpose_path}requires_confirmation": True})


def unconfirmed_grants(
    purposes: Iterable[Purpose], changes: Mapping[str, bool], confirmed: Collection[str]
) -> list[Purpose]:
    """The purposes that `changes` (slug -> granted) grants, that need their own confirmation and lack it."""
    return [p for p in purposes if changes.get(p.slug) and needs_own_confirmation(p) and p.slug not in confirmed]
