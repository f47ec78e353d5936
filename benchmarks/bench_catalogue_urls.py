"""The site's URLs plus the two bare-queryset floors that bench_catalogue.py measures against.

/bench/floor is given the track ids (comma-separated, in the order to show) and
renders those tracks, fetched by a plain queryset, into a page extending the
site's base template: one row per track with the columns the catalogue shows
for a track. /bench/floor-filtered finds the same rows itself, as a plain ORM
queryset would (the label's roster, a join on the consent rows, ORDER BY and
a slice), and renders them into the same page. Login is required, as for the
catalogue, so every page pays for the session and the user.
"""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.template import engines
from django.urls import path

from creatorportal.urls import urlpatterns as site_urlpatterns
from labels.models import Delegation
from tracks.models import Track

FLOOR_TEMPLATE = engines["django"].from_string(
    """{% extends "base.html" %}{% load i18n %}
{% block content %}<h1>{% translate "Catalogue" %}</h1>
<table class="labels-table card-table"><thead><tr><th scope="col">{% translate "Title" %}</th><th scope="col">ISRC</th>
<th scope="col">{% translate "Artist" %}</th><th scope="col">{% translate "Status" %}</th>
<th scope="col">{% translate "Uploaded" %}</th></tr></thead><tbody>
{% for track in tracks %}<tr><th scope="row">{{ track.title|default:_("Untitled track") }}</th><td>{{ track.isrc }}</td>
<td>{{ track.owner.display_name|default:track.owner.email }}</td><td>{{ track.get_status_display }}</td>
<td>{{ track.created_at|date:"Y-m-d" }}</td></tr>{% endfor %}
</tbody></table>{% endblock %}"""
)


@login_required
def floor(request):
    ids = [int(value) for value in request.GET["ids"].split(",")]
    order = request.GET.get("order", "title,id").split(",")
    tracks = Track.objects.filter(pk__in=ids).select_related("owner").order_by(*order)
    return HttpResponse(FLOOR_TEMPLATE.render({"tracks": tracks}, request))


def filtering_queryset(label_slug: str, purpose_slug: str, order: list[str]):
    """The label's tracks whose `purpose` is granted, as the plain ORM says it: no summary, no cursor."""
    roster = Delegation.objects.active().filter(label__slug=label_slug).values("artist_id")
    return (
        Track.objects.filter(owner__in=roster, consents__purpose__slug=purpose_slug, consents__granted=True)
        .select_related("owner")
        .order_by(*order)
    )


@login_required
def floor_filtered(request):
    offset, per_page = int(request.GET["offset"]), int(request.GET["per_page"])
    order = request.GET.get("order", "title,id").split(",")
    tracks = filtering_queryset(request.GET["label"], request.GET["purpose"], order)[offset : offset + per_page]
    return HttpResponse(FLOOR_TEMPLATE.render({"tracks": tracks}, request))


urlpatterns = [path("bench/floor", floor), path("bench/floor-filtered", floor_filtered), *site_urlpatterns]
