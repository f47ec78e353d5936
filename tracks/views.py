from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from accounts.requests import AuthenticatedRequest
from platformkit.request_meta import RequestMeta
from tracks import selectors, services
from tracks.forms import TrackEditForm, TrackFilterForm, UploadForm
from tracks.models import Track
from tracks.streaming import serve_stored_file
from tracks.uploads import HashingUploadHandler


def signed_in_or_404(view):
    """For URLs that name one track: an anonymous visitor gets 404, not a login redirect.

    So nobody can learn that a track exists; the view's scoped lookup
    (`_own_track`) then gives everyone but the owner the same 404.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            raise Http404("No such track.")
        return view(request, *args, **kwargs)

    return wrapper


def _own_track(request: HttpRequest, uuid) -> Track:
    # Scoped lookup: someone else's track is indistinguishable from no track.
    return get_object_or_404(Track, uuid=uuid, owner=request.user)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@login_required
@require_GET
def track_list(request: AuthenticatedRequest) -> HttpResponse:
    filters = TrackFilterForm(request.GET)
    tracks = selectors.tracks_for_owner(owner=request.user, **filters.filters())
    page = Paginator(tracks, filters.page_size()).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    sort = filters.filters()["sort"]
    return render(
        request,
        "tracks/list.html",
        {
            "page": page,
            "filters": filters,
            "query": query.urlencode(),
            "sort": sort,
            "columns": _sort_columns(query, sort),
        },
    )


# Column → (ascending sort, descending sort), in the order the table shows them.
_SORTABLE_COLUMNS = {
    "title": ("title", "-title"),
    "duration": ("duration", "-duration"),
    "created": ("oldest", "newest"),
}


def _sort_columns(query, current: str) -> dict[str, dict[str, str]]:
    """For each sortable column header: the link that sorts by it (or reverses it) and its aria-sort."""
    columns = {}
    for column, (ascending, descending) in _SORTABLE_COLUMNS.items():
        params = query.copy()
        params["sort"] = descending if current == ascending else ascending
        aria = {ascending: "ascending", descending: "descending"}.get(current, "none")
        columns[column] = {"query": params.urlencode(), "aria_sort": aria}
    return columns


# The upload handler must be in place before anything reads the request body,
# and CsrfViewMiddleware reads it; so CSRF is checked inside, once it is set.
@csrf_exempt
@login_required
def upload(request: AuthenticatedRequest) -> HttpResponse:
    if request.method == "POST":
        request.upload_handlers = [HashingUploadHandler(request)]
    return _upload(request)


@csrf_protect
@require_http_methods(["GET", "POST"])
def _upload(request: AuthenticatedRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "tracks/upload.html", {"form": UploadForm()})

    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        if _wants_json(request):
            errors = [str(e) for field_errors in form.errors.values() for e in field_errors]
            return JsonResponse({"results": [], "errors": errors}, status=400)
        return render(request, "tracks/upload.html", {"form": form}, status=400)

    # One upload action, one consent save: one receipt lists every file kept.
    outcomes = services.create_tracks(
        owner=request.user,
        uploads=form.cleaned_data["files"],
        consent_choices=dict.fromkeys(form.cleaned_data["consent"], True),
        request_meta=RequestMeta.from_request(request),
    )
    results = [_upload_result(outcome) for outcome in outcomes]
    accepted = sum(1 for r in results if r["ok"])
    # 422 only when nothing at all was kept; a mixed batch is a success with notes.
    status = 422 if accepted == 0 else 201 if accepted == len(results) and _wants_json(request) else 200
    if _wants_json(request):
        return JsonResponse({"results": results}, status=status)
    return render(request, "tracks/upload.html", {"form": UploadForm(), "results": results}, status=status)


def _upload_result(outcome: services.UploadOutcome) -> dict:
    filename = outcome.filename
    if outcome.rejection is not None:
        existing = outcome.rejection.existing_track
        return {
            "ok": False,
            "filename": filename,
            "code": outcome.rejection.code,
            "message": outcome.rejection.reason,
            "existing_url": existing.get_absolute_url() if existing else None,
            "existing_title": existing.display_title if existing else None,
        }
    track = outcome.track
    if track is None:
        # Storage or database trouble: the service has already removed
        # anything it stored (and logged why); the artist gets an answer.
        return {
            "ok": False,
            "filename": filename,
            "code": "server_error",
            "message": "The file could not be saved because of a problem on our side. Please try again.",
            "existing_url": None,
            "existing_title": None,
        }
    track.refresh_from_db(fields=["status", "title", "failure_reason"])
    return {
        "ok": True,
        "filename": filename,
        "code": "accepted",
        "message": "Uploaded. Reading tags and artwork…" if not track.is_settled else _status_sentence(track),
        "url": track.get_absolute_url(),
        "status_url": reverse("tracks:status", kwargs={"uuid": track.uuid}),
        "status": track.status,
        "title": track.display_title,
    }


def _status_sentence(track: Track) -> str:
    if track.status == Track.Status.READY:
        return gettext("Ready to play.")
    if track.status == Track.Status.FAILED:
        return gettext("Failed: %(reason)s") % {"reason": track.failure_reason}
    return gettext("Processing…")


@signed_in_or_404
@require_GET
def track_detail(request: AuthenticatedRequest, uuid) -> HttpResponse:
    track = _own_track(request, uuid)
    return render(request, "tracks/detail.html", {"track": track})


@signed_in_or_404
@require_GET
def track_status(request: AuthenticatedRequest, uuid) -> JsonResponse:
    track = _own_track(request, uuid)
    response = JsonResponse(
        {
            "status": track.status,
            "status_label": track.get_status_display(),
            "settled": track.is_settled,
            "message": _status_sentence(track),
            "failure_reason": track.failure_reason,
            "title": track.display_title,
            "url": track.get_absolute_url(),
        }
    )
    response["Cache-Control"] = "no-store"
    return response


@signed_in_or_404
@require_http_methods(["GET", "POST"])
def track_edit(request: AuthenticatedRequest, uuid) -> HttpResponse:
    track = _own_track(request, uuid)
    form = TrackEditForm(request.POST or None, request.FILES or None, instance=track)
    if request.method == "POST" and form.is_valid():
        services.update_track(
            track=track,
            title=form.cleaned_data["title"],
            artist_name=form.cleaned_data["artist_name"],
            album=form.cleaned_data["album"],
            year=form.cleaned_data["year"],
            isrc=form.cleaned_data["isrc"],
            new_artwork=form.renditions,
            remove_artwork=bool(form.cleaned_data.get("remove_artwork")),
        )
        messages.success(request, gettext("Your changes are saved."))
        return redirect(track)
    status = 400 if request.method == "POST" else 200
    return render(request, "tracks/edit.html", {"track": track, "form": form}, status=status)


@signed_in_or_404
@require_http_methods(["GET", "POST"])
def track_delete(request: AuthenticatedRequest, uuid) -> HttpResponse:
    track = _own_track(request, uuid)
    if request.method == "POST":
        title = track.display_title
        services.delete_track(track=track, actor=request.user, request_meta=RequestMeta.from_request(request))
        messages.success(request, gettext("“%(title)s” is deleted.") % {"title": title})
        return redirect("tracks:list")
    return render(request, "tracks/confirm_delete.html", {"track": track})


@signed_in_or_404
@require_http_methods(["GET", "HEAD"])
def track_audio(request: AuthenticatedRequest, uuid) -> HttpResponseBase:
    track = _own_track(request, uuid)
    name = track.audio_file.name or ""
    extension = name.rpartition(".")[2]
    return serve_stored_file(
        request,
        name=name,
        content_type=track.mime_type,
        etag=track.sha256,
        download_name=f"{track.uuid}.{extension}",
    )


@signed_in_or_404
@require_http_methods(["GET", "HEAD"])
def track_artwork(request: AuthenticatedRequest, uuid, size: str) -> HttpResponseBase:
    track = _own_track(request, uuid)
    name = (track.artwork_thumbnail.name if size == "thumbnail" else track.artwork.name) or ""
    return serve_stored_file(
        request,
        name=name,
        content_type="image/jpeg",
        etag=name.rpartition("/")[2].partition(".")[0],
        download_name=f"{track.uuid}-{size}.jpg",
    )
