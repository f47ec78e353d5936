"""The words of a delegation email, chosen when it is rendered, in the recipient's language."""

from django import template

from labels.notices import delegation_headline, delegation_status_words, scope_words

register = template.Library()


@register.simple_tag(takes_context=True)
def headline(context) -> str:
    """The email's headline from the stored event; an older row stored it as a sentence."""
    event = context.get("event")
    if not event:
        return str(context.get("headline", ""))
    return delegation_headline(event, artist=context.get("artist_name", ""), label=context.get("label_name", ""))


@register.filter
def status_words(status: str) -> str:
    return delegation_status_words(status)


@register.filter(name="scope_words")
def scope_words_filter(scope: str) -> str:
    return scope_words(scope)
