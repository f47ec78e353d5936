"""consent's rules for templates: `{% load consent_rules %}`, so no template decides them itself."""

from __future__ import annotations

from django import template

from consent.confirmation import needs_own_confirmation as _needs_own_confirmation
from consent.models import Purpose

register = template.Library()


@register.filter
def needs_own_confirmation(purpose: Purpose) -> bool:
    """`{% if purpose|needs_own_confirmation %}`: granting it needs its own, explicit confirmation."""
    return _needs_own_confirmation(purpose)
