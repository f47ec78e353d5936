from django import template

from tracks import selectors

register = template.Library()


@register.simple_tag
def track_summary(user) -> dict[str, int]:
    """Counts of the user's tracks by status, for the dashboard (one query)."""
    return selectors.track_summary(owner=user)


@register.filter
def duration(seconds) -> str:
    if seconds is None:
        return "\N{EN DASH}"
    total = round(float(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@register.filter
def status_badge(status: str) -> str:
    return {"ready": "badge--ok", "processing": "badge--warn", "failed": "badge--bad"}.get(status, "")
