from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from downstream import selectors
from downstream.api import problem_response
from tracks.models import Track


@csrf_exempt
def api_not_found(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """Anything under /api/v1/ that is not an endpoint: a problem, not the site's HTML 404 page."""
    return problem_response(404, "not-found", "Not found", "There is no such endpoint; see /api/v1/openapi.json.")


@require_GET
def track_downstream(request: HttpRequest, uuid) -> HttpResponse:
    """What downstream systems did with one track: acknowledgements, manifests, use. Owner only; 404 for anyone else."""
    if not request.user.is_authenticated:
        raise Http404("No such track.")
    track = get_object_or_404(Track, uuid=uuid, owner=request.user)
    return render(
        request,
        "downstream/track.html",
        {
            "track": track,
            "withdrawals": selectors.withdrawals_for_track(track),
            "manifests": selectors.manifests_citing(track),
            "usage": selectors.usage_for_track(track),
        },
    )
