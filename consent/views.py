"""Artist pages for consent and the audit log. Every lookup is scoped to request.user.

Views parse and redirect; every write goes through consent.services.
"""

from __future__ import annotations

import csv
import datetime
import json
import uuid
from collections.abc import Iterable, Iterator
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET, require_http_methods

from accounts.requests import AuthenticatedRequest
from consent import selectors, services
from consent.confirmation import needing_confirmation, needs_own_confirmation
from consent.forms import AuditFilterForm, CatalogueFilterForm, ConfirmForm
from consent.models import AuditEvent, Purpose
from consent.receipts import receipt_for
from consent.receipts import receipt_schema as published_receipt_schema
from consent.services import ConsentError
from platformkit.request_meta import RequestMeta
from tracks.models import Track

MATRIX_PAGE_SIZE = 25
AUDIT_PAGE_SIZE = 50
EXPORT_CHUNK_SIZE = 2000
# The confirmation page lists the tracks it grants for; a page of the matrix
# is the most one save can hold back, so this only stops forged URLs.
MAX_CONFIRM_TRACKS = 200


def _parse_uuids(values: Iterable[str]) -> list[uuid.UUID] | None:
    """The UUIDs, or None if any value is not one (a damaged or forged form)."""
    parsed = []
    for value in values:
        try:
            parsed.append(uuid.UUID(value))
        except (ValueError, TypeError, AttributeError):
            return None
    return parsed


def _safe_next(request: HttpRequest, fallback: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return fallback


def _saved_message(request: HttpRequest, result: services.ChangeResult) -> None:
    if not result.changed:
        messages.info(request, gettext("Nothing changed, so nothing was recorded."))
        return
    names = dict(Purpose.objects.filter(slug__in=result.counts).values_list("slug", "name"))
    parts = []
    for slug, counts in result.counts.items():
        name = names.get(slug, slug)
        if counts["granted"]:
            parts.append(
                ngettext("%(use)s allowed on %(count)d track", "%(use)s allowed on %(count)d tracks", counts["granted"])
                % {"use": name, "count": counts["granted"]}
            )
        if counts["withdrawn"]:
            parts.append(
                ngettext(
                    "%(use)s withdrawn on %(count)d track", "%(use)s withdrawn on %(count)d tracks", counts["withdrawn"]
                )
                % {"use": name, "count": counts["withdrawn"]}
            )
    messages.success(
        request,
        gettext("Saved: %(changes)s. The change and its receipt are in your audit log.")
        % {"changes": "; ".join(parts)},
    )


def _confirm_url(purpose: Purpose, *, tracks: Iterable[uuid.UUID] = (), scope: str = "tracks", next_url: str) -> str:
    query = [("purpose", purpose.slug), ("scope", scope), ("next", next_url)]
    query += [("track", str(t)) for t in tracks]
    return f"{reverse('consent:confirm')}?{urlencode(query)}"


def _held_redirect(request, held: dict[str, list[uuid.UUID]], purposes: dict[str, Purpose], next_url: str):
    """Send the artist to confirm the first purpose that was held back."""
    slug, track_uuids = next(iter(held.items()))
    if len(held) > 1:
        messages.warning(
            request, gettext("Some grants need their own confirmation; confirm them one purpose at a time.")
        )
    return redirect(_confirm_url(purposes[slug], tracks=track_uuids, next_url=next_url))


def _split_confirmation(
    wanted: dict[uuid.UUID, dict[str, bool]],
    tracks: dict[uuid.UUID, Track],
    purposes: dict[str, Purpose],
) -> dict[str, list[uuid.UUID]]:
    """Take new grants of confirmation-only purposes out of `wanted`; return them.

    A checkbox alone never grants such a purpose: the grant waits for the
    confirmation page. Withdrawals and grants that are already in force stay.
    """
    granted_now = selectors.granted_slugs([t.pk for t in tracks.values()])
    held: dict[str, list[uuid.UUID]] = {}
    for track_uuid, per_purpose in wanted.items():
        for slug, granted in list(per_purpose.items()):
            if not (granted and needs_own_confirmation(purposes[slug])):
                continue
            if (tracks[track_uuid].pk, slug) in granted_now:
                continue
            del per_purpose[slug]
            held.setdefault(slug, []).append(track_uuid)
    return held


# --- Consent matrix -------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def matrix(request: AuthenticatedRequest) -> HttpResponse:
    if request.method == "POST":
        return _save_matrix(request)
    purpose_list = selectors.purposes()
    form = CatalogueFilterForm(request.GET or None, purposes=purpose_list)
    own = Track.objects.filter(owner=request.user)
    tracks = selectors.filter_tracks(own, form.to_filter())
    page = Paginator(tracks, MATRIX_PAGE_SIZE).get_page(request.GET.get("page"))
    cells = selectors.consent_matrix(list(page.object_list), purpose_list, viewer_id=request.user.pk)
    rows = [(track, cells[track.pk]) for track in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "consent/matrix.html",
        {
            "page": page,
            "rows": rows,
            "purposes": purpose_list,
            "next": request.get_full_path(),
            "catalogue_form": form,
            "catalogue_total": page.paginator.count,
            "catalogue_counts": selectors.purpose_counts(tracks, purpose_list) if form.is_filtering() else None,
            "catalogue_clear_url": reverse("consent:matrix"),
            "query": query.urlencode(),
            "has_tracks": bool(rows) or own.exists(),
        },
    )


def _save_matrix(request: AuthenticatedRequest) -> HttpResponse:
    next_url = _safe_next(request, reverse("consent:matrix"))
    track_uuids = _parse_uuids(request.POST.getlist("tracks"))
    purposes = {p.slug: p for p in selectors.purposes()}
    checked: set[tuple[uuid.UUID, str]] = set()
    damaged = track_uuids is None or len(track_uuids) > MATRIX_PAGE_SIZE * 4
    for value in request.POST.getlist("consent"):
        raw_uuid, _, slug = value.partition(":")
        parsed = _parse_uuids([raw_uuid])
        if parsed is None or slug not in purposes:
            damaged = True
            break
        checked.add((parsed[0], slug))
    if damaged or track_uuids is None:
        messages.error(request, gettext("That form could not be read, so nothing was saved. Please try again."))
        return redirect(next_url)

    tracks = {t.uuid: t for t in Track.objects.filter(owner=request.user, uuid__in=track_uuids)}
    if len(tracks) < len(set(track_uuids)):
        messages.warning(request, gettext("Some tracks on that page no longer exist; they were skipped."))
    wanted = {track_uuid: {slug: (track_uuid, slug) in checked for slug in purposes} for track_uuid in tracks}
    return _save_states(
        request, Track.objects.filter(owner=request.user, uuid__in=list(tracks)), wanted, tracks, purposes, next_url
    )


# --- One track ------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def track_update(request: AuthenticatedRequest, track_uuid: uuid.UUID) -> HttpResponse:
    track = get_object_or_404(Track, uuid=track_uuid, owner=request.user)
    if request.method == "GET":
        return render(request, "consent/track.html", {"track": track})
    next_url = _safe_next(request, reverse("consent:track_update", args=[track.uuid]))
    purposes = {p.slug: p for p in selectors.purposes()}
    chosen = set(request.POST.getlist("purpose"))
    if chosen - purposes.keys():
        messages.error(request, gettext("That form could not be read, so nothing was saved. Please try again."))
        return redirect(next_url)
    wanted = {track.uuid: {slug: slug in chosen for slug in purposes}}
    return _save_states(request, Track.objects.filter(pk=track.pk), wanted, {track.uuid: track}, purposes, next_url)


def _save_states(request, track_qs, wanted, tracks_by_uuid, purposes, next_url) -> HttpResponse:
    """Save what needs no confirmation now; send the rest to the confirmation page."""
    held = _split_confirmation(wanted, tracks_by_uuid, purposes)
    try:
        result = services.set_track_consents(
            actor=request.user,
            tracks=track_qs,
            states=wanted,
            source=AuditEvent.Source.WEB,
            request_meta=RequestMeta.from_request(request),
        )
    except ConsentError as error:
        messages.error(request, error.message)
        return redirect(next_url)
    if result.changed or not held:
        _saved_message(request, result)
    if held:
        return _held_redirect(request, held, purposes, next_url)
    return redirect(next_url)


# --- Confirmation of a purpose that needs it -------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def confirm(request: AuthenticatedRequest) -> HttpResponse:
    data = request.POST if request.method == "POST" else request.GET
    scope = data.get("scope", "tracks")
    fallback = reverse("consent:defaults") if scope == "defaults" else reverse("consent:matrix")
    next_url = _safe_next(request, fallback)
    purpose = Purpose.objects.filter(needing_confirmation(), slug=data.get("purpose", "")).first()
    track_uuids = _parse_uuids(data.getlist("track"))
    if purpose is None or scope not in {"tracks", "defaults"} or track_uuids is None:
        messages.error(request, gettext("That confirmation link is not valid. Nothing was granted."))
        return redirect(next_url)
    if len(track_uuids) > MAX_CONFIRM_TRACKS:
        messages.error(
            request,
            gettext("Confirm at most %(count)s tracks at a time. Nothing was granted.") % {"count": MAX_CONFIRM_TRACKS},
        )
        return redirect(next_url)

    tracks: list[Track] = []
    if scope == "tracks":
        tracks = list(Track.objects.filter(owner=request.user, uuid__in=track_uuids).order_by("title", "id"))
        already = selectors.granted_slugs([t.pk for t in tracks])
        tracks = [t for t in tracks if (t.pk, purpose.slug) not in already]
        if not tracks:
            messages.info(
                request,
                gettext("There is nothing left to confirm for %(purpose)s.") % {"purpose": gettext(purpose.name)},
            )
            return redirect(next_url)

    form = ConfirmForm(request.POST if request.method == "POST" else None)
    form.fields["understand"].label = _confirmation_sentence(purpose, scope, len(tracks))
    if request.method == "POST" and form.is_valid():
        meta = RequestMeta.from_request(request)
        try:
            if scope == "defaults":
                result = services.set_upload_defaults(
                    actor=request.user,
                    artist=request.user,
                    choices={purpose.slug: True},
                    request_meta=meta,
                    confirmed_purposes={purpose.slug},
                )
            else:
                result = services.change_consent(
                    actor=request.user,
                    tracks=Track.objects.filter(pk__in=[t.pk for t in tracks]),
                    changes={purpose.slug: True},
                    source=AuditEvent.Source.WEB,
                    request_meta=meta,
                    confirmed_purposes={purpose.slug},
                )
        except ConsentError as error:
            messages.error(request, error.message)
            return redirect(next_url)
        _saved_message(request, result)
        return redirect(next_url)
    return render(
        request,
        "consent/confirm.html",
        {"purpose": purpose, "scope": scope, "tracks": tracks, "form": form, "next": next_url},
        status=400 if form.is_bound else 200,
    )


def _confirmation_sentence(purpose: Purpose, scope: str, count: int) -> str:
    if scope == "defaults":
        target = "every track I upload from now on"
    else:
        target = "this track" if count == 1 else f"these {count} tracks"
    return f"I understand, and I allow {purpose.name} on {target}."


# --- Defaults for future uploads ---------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def defaults(request: AuthenticatedRequest) -> HttpResponse:
    purpose_list = selectors.purposes()
    current = selectors.upload_defaults(request.user)
    if request.method == "POST":
        by_slug = {p.slug: p for p in purpose_list}
        chosen = set(request.POST.getlist("purpose"))
        if chosen - by_slug.keys():
            messages.error(request, gettext("That form could not be read, so nothing was saved. Please try again."))
            return redirect("consent:defaults")
        wanted = {slug: slug in chosen for slug in by_slug}
        held = [
            slug
            for slug, granted in wanted.items()
            if granted and needs_own_confirmation(by_slug[slug]) and not current.get(slug)
        ]
        for slug in held:
            del wanted[slug]
        try:
            result = services.set_upload_defaults(
                actor=request.user, artist=request.user, choices=wanted, request_meta=RequestMeta.from_request(request)
            )
        except ConsentError as error:
            messages.error(request, error.message)
            return redirect("consent:defaults")
        if result.changed or not held:
            _saved_message(request, result)
        if held:
            return redirect(_confirm_url(by_slug[held[0]], scope="defaults", next_url=reverse("consent:defaults")))
        return redirect("consent:defaults")
    rows = [(p, current.get(p.slug, False)) for p in purpose_list]
    return render(request, "consent/defaults.html", {"rows": rows})


# --- Audit log ----------------------------------------------------------------------------


def _filter_form(request: HttpRequest) -> AuditFilterForm:
    form = AuditFilterForm(request.GET or None, purposes=selectors.purposes())
    if form.is_bound:
        form.is_valid()
    return form


@login_required
@require_GET
def audit_log(request: AuthenticatedRequest) -> HttpResponse:
    form = _filter_form(request)
    events: QuerySet[AuditEvent] = AuditEvent.objects.none()
    if not form.is_bound or form.is_valid():
        filters = form.to_filter() if form.is_bound else selectors.AuditFilter()
        events = selectors.audit_events(artist=request.user, filters=filters).select_related(
            "policy_version", "purpose", "subject_data"
        )
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "consent/audit_log.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "track_filter": form.cleaned_data.get("track") if form.is_bound and form.is_valid() else None,
            "receipt_filter": form.cleaned_data.get("receipt") if form.is_bound and form.is_valid() else None,
        },
    )


EXPORT_COLUMNS = [
    ("seq", "seq"),
    ("created_at", "time_utc"),
    ("kind", "event"),
    ("track_uuid", "track_uuid"),
    ("subject_data__track_title", "track_title"),
    ("purpose_slug", "purpose"),
    ("old_value", "old_value"),
    ("new_value", "new_value"),
    ("actor_id", "who"),
    ("actor_kind", "actor_kind"),
    ("source", "source"),
    ("policy_version__version", "policy_version"),
    ("actor_data__ip", "ip"),
    ("actor_data__user_agent", "user_agent"),
    ("request_id", "request_id"),
    ("receipt_id", "receipt_id"),
    ("chain_version", "chain_version"),
    ("actor_data_digest", "actor_data_digest"),
    ("subject_data_digest", "subject_data_digest"),
    ("prev_hash", "prev_hash"),
    ("hash", "hash"),
]


def _export_rows(request: AuthenticatedRequest, filters) -> Iterator[dict]:
    fields = [f for f, _ in EXPORT_COLUMNS]
    events = selectors.audit_events(artist=request.user, filters=filters).values_list(*fields)
    artist_id = request.user.pk
    for row in events.iterator(chunk_size=EXPORT_CHUNK_SIZE):
        record = dict(zip([name for _, name in EXPORT_COLUMNS], row, strict=True))
        record["who"] = _who_label(record["who"], record["actor_kind"], artist_id)
        record["time_utc"] = record["time_utc"].astimezone(datetime.UTC).isoformat()
        for key in ("track_uuid", "receipt_id"):
            record[key] = str(record[key]) if record[key] else None
        for key in ("track_title", "ip", "user_agent"):
            # An erased part reads as empty, like a part that never held anything.
            record[key] = record[key] or ""
        yield record


def _who_label(actor_id: int | None, actor_kind: str, artist_id: int | None) -> str:
    if actor_kind == AuditEvent.ActorKind.ARTIST and actor_id == artist_id:
        return selectors.YOU
    return actor_kind


class _Echo:
    def write(self, value: str) -> str:
        return value


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value) -> str:
    # A spreadsheet would run a title such as "=HYPERLINK(...)" as a formula.
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _stream_csv(rows: Iterator[dict]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow([name for _, name in EXPORT_COLUMNS])
    for record in rows:
        yield writer.writerow([_csv_safe(v) for v in record.values()])


def _stream_json(rows: Iterator[dict], header: dict) -> Iterator[str]:
    yield json.dumps(header)[:-1] + ', "events": ['
    first = True
    for record in rows:
        yield ("" if first else ",") + "\n" + json.dumps(record)
        first = False
    yield "\n]}\n"


@login_required
@require_GET
def audit_export(request: AuthenticatedRequest, fmt: str) -> HttpResponseBase:
    form = _filter_form(request)
    if form.is_bound and not form.is_valid():
        messages.error(
            request,
            "Fix the filter before exporting: " + " ".join(str(e) for errors in form.errors.values() for e in errors),
        )
        return redirect(f"{reverse('consent:audit_log')}?{request.GET.urlencode()}")
    filters = form.to_filter() if form.is_bound else selectors.AuditFilter()
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    rows = _export_rows(request, filters)
    if fmt == "csv":
        response = StreamingHttpResponse(_stream_csv(rows), content_type="text/csv; charset=utf-8")
    else:
        header = {
            "artist": {"id": request.user.pk, "email": request.user.email},
            "exported_at": timezone.now().isoformat(),
            "filters": {k: v for k, v in request.GET.items() if k in form.fields and v},
        }
        response = StreamingHttpResponse(_stream_json(rows, header), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response


# --- Receipts and policy -----------------------------------------------------------------------


@login_required
@require_GET
def receipt(request: AuthenticatedRequest, receipt_id: uuid.UUID) -> HttpResponse:
    body = receipt_for(request.user, receipt_id)
    if body is None:
        raise Http404("No such receipt.")
    response = JsonResponse(body, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="consent-receipt-{receipt_id}.json"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def receipt_schema(request: HttpRequest) -> HttpResponse:
    # Public, like the terms: an auditor checks a receipt without an account.
    response = JsonResponse(published_receipt_schema(), json_dumps_params={"indent": 2})
    response["Content-Type"] = "application/schema+json"
    response["Cache-Control"] = "public, max-age=3600"
    return response
