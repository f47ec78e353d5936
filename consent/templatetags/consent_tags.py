from django import template

from consent import selectors

register = template.Library()


@register.inclusion_tag("consent/_track_panel.html", takes_context=True)
def track_consent_panel(context, track):
    """The consent panel for one track, for the track page: `{% track_consent_panel track %}`.

    Shows nothing unless the viewer owns the track, whatever page includes it.
    """
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or track.owner_id != user.pk:
        return {"visible": False}
    purposes = selectors.purposes()
    cells = selectors.consent_matrix([track], purposes, viewer_id=user.pk)[track.pk]
    return {
        "visible": True,
        "track": track,
        "cells": cells,
        "csrf_token": context.get("csrf_token"),
        "next": request.get_full_path(),
    }
