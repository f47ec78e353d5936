"""Text that lives in the database but was written by the project (seeded purposes)."""

from django import template
from django.utils.html import format_html_join
from django.utils.translation import gettext

# Listed so that makemessages finds them: the names and descriptions the data
# migrations seed. A purpose staff add later is shown as typed.
from consent.seeded_text import SEEDED_TEXT  # noqa: F401

register = template.Library()


@register.filter
def translated(value):
    """The translation of a seeded text, or the text itself (gettext("") would be the catalogue header)."""
    if not isinstance(value, str) or not value:
        return value
    return gettext(value)


@register.filter
def join_purpose_names(purposes, conjunction):
    """ "Recommendation and Fraud detection", each name translated, joined by the translated "and"."""
    names = [translated(purpose.name) for purpose in purposes]
    return f" {conjunction} ".join(names)


@register.filter
def slugs_as_code(purposes):
    """ "<code>recommendation</code>, <code>fraud_detection</code>": the CSV column names, escaped."""
    return format_html_join(", ", "<code>{}</code>", ((purpose.slug,) for purpose in purposes))


@register.filter
def join_translated(names):
    """Seeded names, each translated, joined by commas."""
    return ", ".join(translated(name) for name in names)
