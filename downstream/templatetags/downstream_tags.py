from django import template

from downstream.selectors import UsageTotal, usage_totals_for_artist

register = template.Library()


@register.simple_tag
def usage_totals(user) -> list[UsageTotal]:
    """The dashboard partial's totals (downstream/_dashboard_usage.html)."""
    if not getattr(user, "is_authenticated", False):
        return []
    return usage_totals_for_artist(user.pk)
