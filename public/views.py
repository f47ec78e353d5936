"""Public track and artist pages, the audio and the site-wide files; the artist's own settings page.

Anything not public answers 404 to everyone but its owner, who sees a
preview. Every response about a track carries the signals for the current
consent, read on each request, and an ETag that changes with it.
"""

from __future__ import annotations

import hashlib
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotModified
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from accounts.requests import AuthenticatedRequest
from public import channels, copies, report, selectors, services
from public.answers import answer_for, answers_for, signals_for
from public.models import ArtistPage
from tracks.models import Track
from tracks.streaming import serve_stored_file

GET_HEAD = ["GET", "HEAD"]


def _visible_track(request: HttpRequest, uuid) -> tuple[Track, bool]:
    """The track and whether it is public; 404 unless public or the viewer is its artist."""
    track = selectors.track_by_uuid(uuid)
    if track is None:
        raise Http404("No such track.")
    public = selectors.is_public(track)
    if not public and not (request.user.is_authenticated and request.user.pk == track.owner_id):
        raise Http404("No such track.")
    return track, public


def _cache_headers(response: HttpResponseBase, *, public: bool) -> HttpResponseBase:
    # Always revalidate: the ETag changes with the consent, so a cache can
    # keep the bytes but never an answer the artist has since changed.
    response["Cache-Control"] = f"{'public' if public else 'private'}, no-cache"
    return response


def _not_modified(request: HttpRequest, etag: str) -> bool:
    candidates = [value.strip() for value in request.headers.get("If-None-Match", "").split(",")]
    return f'"{etag}"' in candidates or "*" in candidates


@require_http_methods(GET_HEAD)
def track_page(request: HttpRequest, uuid) -> HttpResponseBase:
    track, public = _visible_track(request, uuid)
    answer = answer_for(track.pk)
    signals = signals_for(answer)
    viewer = "owner" if request.user.is_authenticated and request.user.pk == track.owner_id else "visitor"
    version = f"{track.uuid}:{track.updated_at.isoformat()}:{answer.token}:{public}:{viewer}"
    etag = hashlib.sha256(version.encode()).hexdigest()[:32]
    if _not_modified(request, etag):
        response: HttpResponse = HttpResponseNotModified()
    else:
        page = ArtistPage.objects.filter(artist_id=track.owner_id).first()
        response = render(
            request,
            "public/track.html",
            {
                "track": track,
                "public": public,
                "signals": signals,
                "artist_page": page,
                "artist_name": track.artist_name or track.owner.display_name,
                "copy": report.copy_state(track, answer),
                "is_owner": viewer == "owner",
            },
        )
    response["ETag"] = f'"{etag}"'
    channels.apply_signals(response, signals)
    return _cache_headers(response, public=public)


@require_http_methods(GET_HEAD)
def track_audio(request: HttpRequest, uuid) -> HttpResponseBase:
    track, public = _visible_track(request, uuid)
    answer = answer_for(track.pk)
    copy = selectors.servable_copy(track, answer)
    if copy is not None:
        name, etag = copy.file, f"{copy.sha256[:40]}-{answer.token}"
    else:
        # No copy that says the current answer (not built yet, rebuilding,
        # or a format without a place for it): the original, with the
        # current headers, never a copy that says something else.
        name, etag = track.audio_file.name or "", f"{track.sha256[:40]}-{answer.token}-original"
    extension = (track.audio_file.name or "").rpartition(".")[2]
    response = serve_stored_file(
        request, name=name, content_type=track.mime_type, etag=etag, download_name=f"{track.uuid}.{extension}"
    )
    channels.apply_signals(response, signals_for(answer))
    return _cache_headers(response, public=public)


@require_http_methods(GET_HEAD)
def track_artwork(request: HttpRequest, uuid) -> HttpResponseBase:
    track, public = _visible_track(request, uuid)
    answer = answer_for(track.pk)
    name = track.artwork.name or ""
    response = serve_stored_file(
        request,
        name=name,
        content_type="image/jpeg",
        etag=f"{name.rpartition('/')[2].partition('.')[0]}-{answer.token}",
        download_name=f"{track.uuid}.jpg",
    )
    channels.apply_signals(response, signals_for(answer))
    return _cache_headers(response, public=public)


@require_http_methods(GET_HEAD)
def artist_page(request: HttpRequest, uuid) -> HttpResponseBase:
    page = get_object_or_404(ArtistPage.objects.select_related("artist"), uuid=uuid)
    is_owner = request.user.is_authenticated and request.user.pk == page.artist_id
    tracks = list(selectors.public_tracks().filter(owner_id=page.artist_id).order_by("-created_at", "-id"))
    if not tracks and not is_owner:
        raise Http404("No such artist page.")
    answers = answers_for(t.pk for t in tracks)
    rows = [(t, signals_for(answers[t.pk]), copies.support_for(t)) for t in tracks]
    response = render(request, "public/artist.html", {"page": page, "rows": rows, "is_owner": is_owner})
    return _cache_headers(response, public=True)


def _site_file(request: HttpRequest, site_file: channels.SiteFile, content_type: str) -> HttpResponseBase:
    if _not_modified(request, site_file.etag):
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = HttpResponse(site_file.text, content_type=content_type)
    response["ETag"] = f'"{site_file.etag}"'
    return _cache_headers(response, public=True)


@require_http_methods(GET_HEAD)
def robots_txt(request: HttpRequest) -> HttpResponseBase:
    return _site_file(request, channels.robots_txt(), "text/plain; charset=utf-8")


@require_http_methods(GET_HEAD)
def ai_txt(request: HttpRequest) -> HttpResponseBase:
    return _site_file(request, channels.ai_txt(), "text/plain; charset=utf-8")


@require_http_methods(GET_HEAD)
def tdmrep_json(request: HttpRequest) -> HttpResponseBase:
    return _site_file(request, channels.tdmrep_json(), "application/json")


@require_http_methods(GET_HEAD)
def policy_json(request: HttpRequest) -> HttpResponseBase:
    response = HttpResponse(json.dumps(channels.tdm_policy(), indent=2), content_type="application/ld+json")
    return _cache_headers(response, public=True)


@require_http_methods(GET_HEAD)
def policy_page(request: HttpRequest) -> HttpResponseBase:
    return _cache_headers(render(request, "public/policy.html"), public=True)


# --- The artist's own page ---------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def manage(request: AuthenticatedRequest, uuid) -> HttpResponse:
    # Scoped lookup: someone else's track is indistinguishable from no track.
    track = get_object_or_404(Track, uuid=uuid, owner=request.user)
    if request.method == "POST":
        wanted = request.POST.get("public")
        if wanted not in ("1", "0"):
            messages.error(request, gettext("Choose whether the track should be public or private."))
        else:
            try:
                changed = services.set_track_public(actor=request.user, track=track, public=wanted == "1")
            except services.PublicError as exc:
                messages.error(request, exc.message)
            else:
                if not changed:
                    messages.info(request, gettext("Nothing changed."))
                elif wanted == "1":
                    messages.success(request, gettext("The track is public. Its page and audio now answer to anyone."))
                else:
                    messages.success(
                        request, gettext("The track is private again. Its page and audio answer 404 to others.")
                    )
        return redirect("public:manage", uuid=track.uuid)
    view = report.crawler_view(track)
    page = ArtistPage.objects.filter(artist=request.user).first()
    response = render(request, "public/manage.html", {"track": track, "view": view, "artist_page": page})
    response["Cache-Control"] = "no-store"
    return response
