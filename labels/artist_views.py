"""The artist's change of one use on many of their own tracks, through the bulk-change machinery.

These pages live here, not in consent, because consent may not import labels
(the layering), and the preview, drift check, chunked apply and undo are
labels.bulk's. Every lookup is scoped to request.user as the change's artist;
the consent matrix links here by URL name (`own_bulk:...`).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET, require_POST

from accounts.requests import AuthenticatedRequest
from consent.confirmation import needs_own_confirmation
from consent.forms import CatalogueFilterForm
from consent.models import AuditEvent, Purpose
from consent.services import ConsentError
from labels import bulk as bulk_changes
from labels.models import BulkChange, BulkChangeItem
from labels.services import LabelError
from labels.views import confirm_and_report

# As many as the matrix shows on four pages: more ticked boxes than that are a forged form.
MAX_SELECTED = 100
SAMPLE_TITLES = 20


def _matrix_url(params: dict[str, str]) -> str:
    query = urlencode(params)
    return reverse("consent:matrix") + (f"?{query}" if query else "")


def _own_change(request: AuthenticatedRequest, pk: int) -> BulkChange:
    return get_object_or_404(BulkChange.objects.select_related("artist", "created_by"), pk=pk, artist=request.user)


def _error(request: HttpRequest, exc: LabelError | ConsentError) -> None:
    messages.error(request, exc.message)


@login_required
@require_POST
def preview(request: AuthenticatedRequest) -> HttpResponse:
    """Save what the change would do, cell by cell, and show it; nothing changes yet."""
    purposes = list(Purpose.objects.all())
    form = CatalogueFilterForm(
        {key: request.POST.get(key, "") for key in CatalogueFilterForm.FILTER_KEYS}, purposes=purposes
    )
    params = form.filter_params()
    back = _matrix_url(params)
    purpose = next((p for p in purposes if p.slug == request.POST.get("bulk_purpose")), None)
    action = request.POST.get("bulk_action")
    if not form.is_valid() or purpose is None or action not in ("grant", "withdraw"):
        messages.error(request, gettext("Choose a use and whether to allow or withdraw it; nothing was changed."))
        return redirect(back)
    selection: list[str] | None = None
    if request.POST.get("scope") != "all":
        selection = request.POST.getlist("track")
        if not selection:
            messages.error(request, gettext("Tick the tracks to change, or choose every track matching the filter."))
            return redirect(back)
        if len(selection) > MAX_SELECTED:
            messages.error(request, gettext("That form could not be read, so nothing was changed. Please try again."))
            return redirect(back)
    try:
        bulk = bulk_changes.preview_bulk_edit(
            actor=request.user,
            artist=request.user,
            tracks=bulk_changes.artist_catalogue_tracks(request.user, params, selection=selection),
            changes={purpose.slug: action == "grant"},
            filter_params=params,
            selection=selection,
        )
    except LabelError as exc:
        _error(request, exc)
        return redirect(back)
    return redirect("own_bulk:detail", bulk.pk)


def _needs_confirmation(bulk: BulkChange) -> list[Purpose]:
    """The purposes this change grants that need their own confirmation, not yet given."""
    granting = [slug for slug, granted in bulk.changes.items() if granted]
    return [
        p
        for p in Purpose.objects.filter(slug__in=granting)
        if needs_own_confirmation(p) and p.slug not in bulk.confirmed_purposes
    ]


@login_required
@require_GET
def detail(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    bulk = _own_change(request, pk)
    purposes = {p.slug: p for p in Purpose.objects.all()}
    changes = [(purposes[slug], granted) for slug, granted in bulk.changes.items() if slug in purposes]
    # Ordered by title so the sample reads as a list, not in storage order.
    sample = list(
        BulkChangeItem.objects.filter(bulk_change=bulk, action=BulkChangeItem.Action.CHANGE)
        .order_by("track__title", "track_id")
        .values_list("track__title", flat=True)[:SAMPLE_TITLES]
    )
    receipt_id = (
        AuditEvent.objects.filter(bulk_change_id=bulk.pk, artist=request.user)
        .exclude(receipt_id=None)
        .values_list("receipt_id", flat=True)
        .first()
    )
    undo_of = bulk.undo_of
    needs_undo_confirm = bulk_changes.undo_would_grant_needing_confirmation(bulk, purposes.values())
    return render(
        request,
        "labels/artist_bulk_detail.html",
        {
            "bulk": bulk,
            "changes": changes,
            "sample": sample,
            "more": max(0, bulk.will_change - len(sample)),
            "needs_confirmation": _needs_confirmation(bulk) if bulk.status == BulkChange.Status.DRAFT else [],
            "running": bulk.status in (BulkChange.Status.QUEUED, BulkChange.Status.RUNNING),
            "can_undo": bulk_changes.undo_available(bulk),
            "undo_minutes": bulk_changes.undo_window_minutes(),
            "needs_undo_confirm": needs_undo_confirm,
            "undo_of": undo_of,
            "audit_url": f"{reverse('consent:audit_log')}?{urlencode({'receipt': receipt_id})}" if receipt_id else "",
            "back_url": _matrix_url({k: v for k, v in bulk.filter.items() if k in CatalogueFilterForm.FILTER_KEYS}),
        },
    )


def _done_message(request: HttpRequest, bulk: BulkChange) -> None:
    if bulk.status == BulkChange.Status.FAILED:
        messages.error(request, gettext("The change failed: %(error)s") % {"error": bulk.error})
    else:
        messages.success(
            request,
            ngettext(
                "Changed %(count)d use on your tracks. Your receipt is in your audit log.",
                "Changed %(count)d uses on your tracks. Your receipt is in your audit log.",
                bulk.applied,
            )
            % {"count": bulk.applied},
        )


@login_required
@require_POST
def confirm(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    bulk = _own_change(request, pk)
    # Only the box on this page confirms, and only the purposes it names.
    confirmed = [p.slug for p in _needs_confirmation(bulk)] if request.POST.get("understand") else []
    confirm_and_report(request, bulk, confirmed=confirmed, done_message=_done_message)
    return redirect("own_bulk:detail", pk)


@login_required
@require_POST
def again(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    """A new preview of an out-of-date change: the same filter, selection and change."""
    bulk = _own_change(request, pk)
    try:
        fresh = bulk_changes.preview_again(actor=request.user, bulk_change=bulk)
    except LabelError as exc:
        _error(request, exc)
        return redirect("own_bulk:detail", pk)
    return redirect("own_bulk:detail", fresh.pk)


@login_required
@require_POST
def undo(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    bulk = _own_change(request, pk)
    confirmed = [p.slug for p in Purpose.objects.all() if needs_own_confirmation(p) and request.POST.get("confirm")]
    try:
        reverse_change = bulk_changes.undo_bulk_change(actor=request.user, bulk_change=bulk, confirmed=confirmed)
    except (LabelError, ConsentError) as exc:
        _error(request, exc)
        return redirect("own_bulk:detail", pk)
    if reverse_change.status == BulkChange.Status.DONE:
        _done_message(request, reverse_change)
    return redirect("own_bulk:detail", reverse_change.pk)


@login_required
@require_GET
def progress(request: AuthenticatedRequest, pk: int) -> JsonResponse:
    bulk = _own_change(request, pk)
    return JsonResponse(
        {
            "status": bulk.status,
            "done": bulk.progress_done,
            "total": bulk.progress_total,
            "applied": bulk.applied,
            "finished": bulk.finished,
        }
    )
