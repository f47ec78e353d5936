from django import template

from consent import selectors
from consent.vocabulary import ActorKind, Source

register = template.Library()


@register.simple_tag
def consent_overview(user) -> selectors.DashboardOverview:
    """Per use: allowed, withdrawn, lapsed, never granted; the latest changes; what waits for the artist."""
    return selectors.dashboard_overview(user)


@register.filter
def changer(event) -> str:
    """Who made an audited change, as the artist reads it: you, your label, staff, policy."""
    from django.utils.translation import gettext as _

    if event.source == Source.POLICY_LAPSE:
        return _("policy change")
    if event.actor_kind == ActorKind.ARTIST and event.actor_id == event.artist_id:
        return _("you")
    return {ActorKind.LABEL: _("your label"), ActorKind.STAFF: _("staff"), ActorKind.SYSTEM: _("the system")}.get(
        event.actor_kind, _("you")
    )


@register.simple_tag
def consent_rows(tracks, viewer):
    """(track, cells) for a page of tracks and the purposes as columns, in two queries (the track list)."""
    track_list = list(tracks)
    purpose_list = selectors.purposes()
    cells = selectors.consent_matrix(track_list, purpose_list, viewer_id=viewer.pk)
    return {"purposes": purpose_list, "rows": [(track, cells[track.pk]) for track in track_list]}


@register.simple_tag
def upload_defaults_granted(user) -> list:
    """The purposes the artist's defaults grant to every new upload (the upload page says so)."""
    chosen = selectors.upload_defaults(user)
    return [p for p in selectors.purposes() if chosen.get(p.slug)]
