"""Label pages (catalogue, bulk changes, CSV, roster) and the artist's delegation pages.

Every label lookup goes through `_label_for`, which 404s for non-members, and
every bulk change lookup is scoped to that label.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.requests import AuthenticatedRequest
from consent.confirmation import needs_own_confirmation
from consent.models import Purpose
from consent.services import ConsentError
from labels import bulk as bulk_changes
from labels import catalogue_html, csvio, selectors, services
from labels.forms import EmailForm, ImportForm, JoinForm, LabelForm, ScopesForm
from labels.models import (
    ArtistInvitation,
    BulkChange,
    ConsentProposal,
    Delegation,
    Label,
    LabelInvitation,
    LabelMembership,
)
from labels.services import LabelError
from platformkit.request_meta import RequestMeta

CHART_WIDTH = 320


def _label_for(request: HttpRequest, slug: str) -> Label:
    return get_object_or_404(Label, slug=slug, memberships__user=request.user)


def _purposes() -> list[Purpose]:
    return list(Purpose.objects.all())


def _error(request: HttpRequest, exc: Exception) -> None:
    messages.error(request, getattr(exc, "message", str(exc)))


# --- Home -------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def home(request: AuthenticatedRequest) -> HttpResponse:
    form = LabelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            label = services.create_label(owner=request.user, name=form.cleaned_data["name"])
        except LabelError as exc:
            _error(request, exc)
        else:
            messages.success(
                request, gettext("%(label)s created. Invite your artists from its roster page.") % {"label": label.name}
            )
            return redirect("labels:roster", label.slug)
    memberships = LabelMembership.objects.filter(user=request.user).select_related("label")
    return render(request, "labels/home.html", {"memberships": memberships, "form": form})


# --- The artist's side ------------------------------------------------------------------------


@login_required
@require_GET
def delegations(request: AuthenticatedRequest) -> HttpResponse:
    purposes = _purposes()
    rows = []
    for delegation in Delegation.objects.filter(artist=request.user).select_related("label"):
        form = ScopesForm(purposes=purposes, initial_scopes=delegation.scopes, prefix=f"d{delegation.pk}")
        rows.append({"delegation": delegation, "form": form, "scopes": _scope_rows(delegation, purposes)})
    proposals = ConsentProposal.objects.filter(artist=request.user, status=ConsentProposal.Status.PENDING)
    invitations = [
        {"invitation": invitation, "form": ScopesForm(purposes=purposes, prefix=f"i{invitation.pk}")}
        for invitation in services.invitations_for(request.user)
    ]
    return render(
        request,
        "labels/delegations.html",
        {
            "rows": rows,
            "invitations": invitations,
            "join_form": JoinForm(),
            "join_scopes": ScopesForm(purposes=purposes, prefix="join"),
            "proposals": proposals.select_related("label", "purpose"),
        },
    )


def _scope_rows(delegation: Delegation, purposes: list[Purpose]) -> list[dict]:
    return [{"name": p.name, "scope": Delegation.Scope(delegation.scope_for(p.slug)).label} for p in purposes]


@login_required
@require_POST
def request_join(request: AuthenticatedRequest) -> HttpResponse:
    purposes = _purposes()
    join = JoinForm(request.POST)
    scopes = ScopesForm(request.POST, purposes=purposes, prefix="join")
    if not (join.is_valid() and scopes.is_valid()):
        messages.error(request, gettext("Give the label identifier and choose what the label may do for each purpose."))
        return redirect("labels:delegations")
    label = Label.objects.filter(slug=join.cleaned_data["label"]).first()
    if label is None:
        messages.error(request, gettext("No label has that identifier."))
        return redirect("labels:delegations")
    if scopes.unconfirmed():
        return _confirmation_page(request, scopes, label.name, reverse("labels:request_join"))
    try:
        services.request_to_join(
            artist=request.user,
            label=label,
            scopes=scopes.scopes(),
            confirmed=scopes.confirmed(),
            request_meta=RequestMeta.from_request(request),
        )
    except LabelError as exc:
        _error(request, exc)
    else:
        messages.success(
            request,
            gettext("Request sent to %(label)s. Nothing is delegated until they approve.") % {"label": label.name},
        )
    return redirect("labels:delegations")


def _confirmation_page(request: HttpRequest, form: ScopesForm, label_name: str, action: str) -> HttpResponse:
    """The separate step before a label may grant a confirmation purpose: the
    choices travel on as hidden fields, and only this page's box confirms."""
    carried = [
        (key, value)
        for key, values in request.POST.lists()
        for value in values
        if key != "csrfmiddlewaretoken" and "confirm_" not in key
    ]
    purposes = form.unconfirmed()
    return render(
        request,
        "labels/confirm_scope.html",
        {
            "carried": carried,
            "purposes": purposes,
            "boxes": [(form.add_prefix(f"confirm_{p.slug}"), p) for p in purposes],
            "label_name": label_name,
            "action": action,
        },
    )


@login_required
@require_POST
def delegation_action(request: AuthenticatedRequest, pk: int, action: str) -> HttpResponse:
    delegation = get_object_or_404(Delegation.objects.select_related("label"), pk=pk, artist=request.user)
    meta = RequestMeta.from_request(request)
    try:
        if action in ("accept", "scopes"):
            form = ScopesForm(request.POST, purposes=_purposes(), prefix=f"d{delegation.pk}")
            if not form.is_valid():
                messages.error(request, gettext("Choose what the label may do for each purpose."))
                return redirect("labels:delegations")
            previous = delegation.scopes if action == "scopes" and delegation.status == "active" else {}
            if form.unconfirmed(previous):
                return _confirmation_page(
                    request, form, delegation.label.name, reverse("labels:delegation_action", args=[pk, action])
                )
            fn = services.accept_invitation if action == "accept" else services.change_scopes
            fn(
                artist=request.user,
                delegation=delegation,
                scopes=form.scopes(),
                confirmed=form.confirmed(),
                request_meta=meta,
            )
            messages.success(
                request,
                gettext("Saved what %(label)s may do. Both sides were emailed.") % {"label": delegation.label.name},
            )
        elif action == "decline":
            services.decline(actor=request.user, delegation=delegation, request_meta=meta)
            messages.success(request, gettext("Declined."))
        elif action == "end":
            services.end_delegation(artist=request.user, delegation=delegation, request_meta=meta)
            messages.success(
                request,
                gettext(
                    "%(label)s can no longer change anything for you, from now on. "
                    "Your consent settings are as they were."
                )
                % {"label": delegation.label.name},
            )
        else:
            messages.error(request, gettext("Unknown action."))
    except LabelError as exc:
        _error(request, exc)
    return redirect("labels:delegations")


@login_required
@require_GET
def artist_invitation(request: AuthenticatedRequest, token: str) -> HttpResponse:
    """The page an invitation email links to; the same form is on the delegations page."""
    invitation = services.invitations_for(request.user).filter(token=token).first()
    form = ScopesForm(purposes=_purposes(), prefix=f"i{invitation.pk}") if invitation else None
    return render(request, "labels/artist_invitation.html", {"invitation": invitation, "form": form})


@login_required
@require_POST
def artist_invitation_action(request: AuthenticatedRequest, token: str, action: str) -> HttpResponse:
    invitation = services.invitations_for(request.user).filter(token=token).first()
    if invitation is None:
        # Not found, answered, or addressed to someone else: all say the same.
        messages.error(
            request, gettext("This invitation is not waiting for you. Sign in with the address it was sent to.")
        )
        return redirect("labels:delegations")
    try:
        if action == "accept":
            form = ScopesForm(request.POST, purposes=_purposes(), prefix=f"i{invitation.pk}")
            if not form.is_valid():
                messages.error(request, gettext("Choose what the label may do for each purpose."))
                return redirect("labels:artist_invitation", token)
            if form.unconfirmed():
                return _confirmation_page(
                    request,
                    form,
                    invitation.label.name,
                    reverse("labels:artist_invitation_action", args=[token, "accept"]),
                )
            services.accept_artist_invitation(
                artist=request.user,
                invitation=invitation,
                scopes=form.scopes(),
                confirmed=form.confirmed(),
                request_meta=RequestMeta.from_request(request),
            )
            messages.success(
                request,
                gettext("You joined the roster of %(label)s. Both sides were emailed.")
                % {"label": invitation.label.name},
            )
        elif action == "decline":
            services.decline_artist_invitation(artist=request.user, invitation=invitation)
            messages.success(request, gettext("Declined. Nothing was delegated."))
        else:
            raise Http404("No such action.")
    except LabelError as exc:
        _error(request, exc)
    return redirect("labels:delegations")


@login_required
@require_http_methods(["GET", "POST"])
def proposal(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(ConsentProposal.objects.select_related("label", "purpose"), pk=pk, artist=request.user)
    if request.method == "POST":
        accept = request.POST.get("decision") == "accept"
        if accept and needs_own_confirmation(item.purpose) and not request.POST.get("confirm"):
            messages.error(
                request,
                gettext("Granting %(purpose)s needs its own confirmation: tick the box.")
                % {"purpose": gettext(item.purpose.name)},
            )
            return redirect("labels:proposal", pk)
        try:
            services.decide_proposal(
                artist=request.user,
                proposal=item,
                accept=accept,
                confirmed=bool(request.POST.get("confirm")),
                request_meta=RequestMeta.from_request(request),
            )
        except (LabelError, ConsentError) as exc:
            _error(request, exc)
        else:
            messages.success(
                request, gettext("Accepted: the grant is in your audit log.") if accept else gettext("Declined.")
            )
        return redirect("labels:delegations")
    tracks = item.tracks.order_by("title")[:50]
    return render(request, "labels/proposal.html", {"proposal": item, "tracks": tracks, "count": item.tracks.count()})


# --- Roster and members -----------------------------------------------------------------------


@login_required
@require_GET
def roster(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    label = _label_for(request, slug)
    purposes = _purposes()
    open_delegations = [
        {"delegation": d, "scopes": _scope_rows(d, purposes)}
        for d in Delegation.objects.open().filter(label=label).select_related("artist").order_by("artist__display_name")
    ]
    is_owner = LabelMembership.objects.filter(label=label, user=request.user, role="owner").exists()
    return render(
        request,
        "labels/roster.html",
        {
            "label": label,
            "delegations": open_delegations,
            "members": label.memberships.select_related("user"),
            "invitations": label.invitations.filter(accepted_at__isnull=True),
            "artist_invitations": ArtistInvitation.objects.pending().filter(label=label).order_by("email"),
            "is_owner": is_owner,
            # Two invitation forms on one page: their ids must differ.
            "artist_email_form": EmailForm(auto_id="artist-%s"),
            "manager_email_form": EmailForm(auto_id="manager-%s"),
        },
    )


@login_required
@require_POST
def roster_invite(request: AuthenticatedRequest, slug: str, who: str) -> HttpResponse:
    label = _label_for(request, slug)
    if who not in ("artist", "manager"):
        raise Http404("No such invitation.")
    form = EmailForm(request.POST)
    if not form.is_valid():
        messages.error(request, gettext("Enter a valid email address."))
        return redirect("labels:roster", slug)
    try:
        if who == "artist":
            invitation = services.invite_artist(
                actor=request.user,
                label=label,
                email=form.cleaned_data["email"],
                request_meta=RequestMeta.from_request(request),
            )
            # Worded from the invitation alone: the same whether or not the address has an account.
            messages.success(
                request,
                gettext("Invitation emailed to %(email)s. If they accept, they choose what you may do.")
                % {"email": invitation.email},
            )
        else:
            services.invite_manager(actor=request.user, label=label, email=form.cleaned_data["email"])
            messages.success(request, gettext("Invitation sent."))
    except LabelError as exc:
        _error(request, exc)
    return redirect("labels:roster", slug)


@login_required
@require_POST
def roster_action(request: AuthenticatedRequest, slug: str, pk: int, action: str) -> HttpResponse:
    label = _label_for(request, slug)
    delegation = get_object_or_404(Delegation, pk=pk, label=label)
    meta = RequestMeta.from_request(request)
    try:
        if action == "approve":
            services.approve_request(actor=request.user, delegation=delegation, request_meta=meta)
            messages.success(request, gettext("Request approved."))
        elif action == "decline":
            services.decline(actor=request.user, delegation=delegation, request_meta=meta)
            messages.success(request, gettext("Declined."))
        else:
            messages.error(request, gettext("Unknown action."))
    except LabelError as exc:
        _error(request, exc)
    return redirect("labels:roster", slug)


@login_required
@require_http_methods(["GET", "POST"])
def accept_manager(request: AuthenticatedRequest, token: str) -> HttpResponse:
    invitation = LabelInvitation.objects.select_related("label").filter(token=token, accepted_at__isnull=True).first()
    if request.method == "POST" and invitation is not None:
        try:
            membership = services.accept_manager_invitation(user=request.user, token=token)
        except LabelError as exc:
            _error(request, exc)
        else:
            messages.success(request, gettext("You now manage %(label)s.") % {"label": membership.label.name})
            return redirect("labels:catalogue", membership.label.slug)
    return render(request, "labels/accept_manager.html", {"invitation": invitation})


# --- Catalogue --------------------------------------------------------------------------------


def _page_size(request: HttpRequest) -> int:
    try:
        size = int(request.GET.get("per_page") or selectors.PAGE_SIZES[0])
    except ValueError:
        return selectors.PAGE_SIZES[0]
    return size if size in selectors.PAGE_SIZES else selectors.PAGE_SIZES[0]


@login_required
@require_GET
def catalogue(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    label = _label_for(request, slug)
    purposes = _purposes()
    flt = selectors.parse_filter(request.GET, purposes)
    for problem in flt.errors or []:
        messages.warning(request, problem)
    sort = request.GET.get("sort") or "-uploaded"
    if sort not in selectors.SORTS:
        sort = "-uploaded"
    per_page = _page_size(request)
    roster = selectors.catalogue_roster(label, flt, purposes)
    page = selectors.catalogue_page(
        label,
        flt,
        purposes,
        sort=sort,
        per_page=per_page,
        page=request.GET.get("page"),
        after=request.GET.get("after"),
        before=request.GET.get("before"),
        roster=roster,
    )
    total = page.total
    bars = selectors.bars(purposes, page.granted, total)
    for i, bar in enumerate(bars):
        bar["width"] = round(bar["share"] * CHART_WIDTH, 1)
        bar["y"] = 8 + i * 34
    params = selectors.filter_params(request.GET, purposes)
    base_query = urlencode({**params, "sort": sort, "per_page": per_page})
    return render(
        request,
        "labels/catalogue.html",
        {
            "label": label,
            "purposes": purposes,
            "purpose_states": [(p, (flt.states or {}).get(p.slug, "")) for p in purposes],
            "rows": page.rows,
            "rows_html": catalogue_html.rows_html(page.rows),
            "page": page,
            "pages": _page_links(page, sort, base_query),
            "total": total,
            "bars": bars,
            "chart_width": CHART_WIDTH,
            "chart_height": 16 + len(bars) * 34,
            "artist_options": catalogue_html.artist_options(roster.choices, flt.artist),
            "flt": flt,
            "params": params,
            "sort": sort,
            "per_page": per_page,
            "page_sizes": selectors.PAGE_SIZES,
            "base_query": base_query,
            "filter_query": urlencode(params),
            "statuses": _statuses(),
            "sorts": [("-uploaded", "Newest"), ("uploaded", "Oldest"), ("title", "Title"), ("artist", "Artist")],
            # The catalogue filter the artist's matrix uses too (search, use, state, who, when).
            "catalogue_form": flt.form,
            "catalogue_fields": catalogue_html.filter_fields(flt.form, purposes),
        },
    )


def _page_links(page: selectors.CataloguePage, sort: str, base_query: str) -> dict[str, str]:
    """Previous and next as keyset links (a cursor from this page's first or last row), with the page number
    they lead to only for display; ?page=N alone still works for links made before."""
    links = {}
    if page.number > 1 and page.first is not None:
        before = {"before": selectors.encode_cursor(sort, page.first)} if page.number > 2 else {}
        links["previous"] = f"?{base_query}&{urlencode({'page': page.number - 1, **before})}"
    if page.number < page.num_pages and page.last is not None:
        after = selectors.encode_cursor(sort, page.last)
        links["next"] = f"?{base_query}&{urlencode({'page': page.number + 1, 'after': after})}"
    return links


def _statuses():
    from tracks.models import Track

    return Track.Status.choices


def _selection(request: HttpRequest) -> list[str] | None:
    """None means every track the filter matches; otherwise the ticked rows."""
    if request.POST.get("all_matching"):
        return None
    return request.POST.getlist("track")[: max(selectors.PAGE_SIZES)]


@login_required
@require_POST
def bulk_preview(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    label = _label_for(request, slug)
    purposes = _purposes()
    params = selectors.filter_params(request.POST, purposes)
    back = f"{reverse('labels:catalogue', args=[slug])}?{urlencode(params)}"
    selection = _selection(request)
    if selection == []:
        messages.error(request, gettext("Tick some tracks, or “all tracks matching this filter”."))
        return redirect(back)
    action = request.POST.get("action")
    chosen = [p for p in purposes if p.slug in request.POST.getlist("purpose")]
    if action not in ("grant", "withdraw", "propose") or not chosen:
        messages.error(request, gettext("Choose at least one purpose, and grant, withdraw or propose."))
        return redirect(back)
    tracks = selectors.catalogue_tracks(label, params, selection=selection)
    if action == "propose":
        try:
            made = []
            for purpose in chosen:
                made += services.propose_grant(
                    actor=request.user, label=label, tracks=tracks, purpose_slug=purpose.slug
                )
        except LabelError as exc:
            _error(request, exc)
        else:
            messages.success(
                request,
                ngettext(
                    "%(count)s artist was asked. Nothing changes until they accept.",
                    "%(count)s artists were asked. Nothing changes until they accept.",
                    len(made),
                )
                % {"count": len(made)},
            )
        return redirect(back)
    granted = action == "grant"
    confirmed = [p.slug for p in chosen if needs_own_confirmation(p) and request.POST.get(f"confirm_{p.slug}")]
    try:
        bulk = bulk_changes.preview_bulk_edit(
            actor=request.user,
            label=label,
            tracks=tracks,
            changes={p.slug: granted for p in chosen},
            filter_params=params,
            selection=selection,
            confirmed=confirmed,
        )
    except LabelError as exc:
        _error(request, exc)
        return redirect(back)
    return redirect("labels:bulk_detail", slug, bulk.pk)


def _bulk_for(request: HttpRequest, slug: str, pk: int) -> tuple[Label, BulkChange]:
    label = _label_for(request, slug)
    return label, get_object_or_404(BulkChange.objects.select_related("created_by"), pk=pk, label=label)


@login_required
@require_GET
def bulk_list(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    label = _label_for(request, slug)
    page = Paginator(label.bulk_changes.select_related("created_by"), 50).get_page(request.GET.get("page"))
    return render(request, "labels/bulk_list.html", {"label": label, "page": page})


@login_required
@require_GET
def bulk_detail(request: AuthenticatedRequest, slug: str, pk: int) -> HttpResponse:
    label, bulk = _bulk_for(request, slug, pk)
    window = settings.LABELS_UNDO_WINDOW_SECONDS
    can_undo = (
        bulk.status in (BulkChange.Status.DONE, BulkChange.Status.FAILED)
        and bulk.kind != BulkChange.Kind.UNDO
        and bulk.applied > 0
        and bulk.finished_at is not None
        and (timezone.now() - bulk.finished_at).total_seconds() <= window
        and not BulkChange.objects.filter(undo_of=bulk).exists()
    )
    names = dict(Purpose.objects.values_list("slug", "name"))
    changes = []
    if bulk.kind == BulkChange.Kind.EDIT:
        changes = [(names.get(s, s), "grant" if g else "withdraw") for s, g in bulk.changes.items()]
    needs_undo_confirm = [
        p.name for p in bulk_changes.undo_would_grant_needing_confirmation(bulk, Purpose.objects.all())
    ]
    return render(
        request,
        "labels/bulk_detail.html",
        {
            "label": label,
            "bulk": bulk,
            "changes": changes,
            "can_undo": can_undo,
            "undo_minutes": window // 60,
            "needs_undo_confirm": needs_undo_confirm,
            "running": bulk.status in (BulkChange.Status.QUEUED, BulkChange.Status.RUNNING),
        },
    )


@login_required
@require_POST
def bulk_confirm(request: AuthenticatedRequest, slug: str, pk: int) -> HttpResponse:
    _, bulk = _bulk_for(request, slug, pk)
    confirm_and_report(request, bulk, done_message=_done_message)
    return redirect("labels:bulk_detail", slug, pk)


def confirm_and_report(
    request: AuthenticatedRequest,
    bulk: BulkChange,
    *,
    confirmed: Collection[str] = (),
    done_message: Callable[[HttpRequest, BulkChange], None],
) -> None:
    """Confirm a previewed bulk change and say what became of it: out of date, refused, queued or done.

    The label's and the artist's confirm pages differ only in whose words `done_message` uses.
    """
    try:
        queued = bulk_changes.confirm_bulk_change(actor=request.user, bulk_change=bulk, confirmed=confirmed)
    except bulk_changes.PreviewOutdated as exc:
        # The detail page lists what changed and offers a new preview.
        messages.error(request, exc.message)
    except (LabelError, ConsentError) as exc:
        _error(request, exc)
    else:
        bulk.refresh_from_db()
        if queued or not bulk.finished:
            messages.info(request, gettext("Applying in the background; this page shows the progress."))
        else:
            done_message(request, bulk)


def _done_message(request: HttpRequest, bulk: BulkChange) -> None:
    if bulk.status == BulkChange.Status.FAILED:
        messages.error(request, gettext("The change failed: %(error)s") % {"error": bulk.error})
    else:
        messages.success(
            request,
            gettext("Applied %(applied)d change(s); %(artists)d artist(s) were emailed once each.")
            % {"applied": bulk.applied, "artists": bulk.artists_notified},
        )


@login_required
@require_POST
def bulk_again(request: AuthenticatedRequest, slug: str, pk: int) -> HttpResponse:
    """A new preview of an out-of-date bulk edit, with the same filter, selection and change."""
    _, bulk = _bulk_for(request, slug, pk)
    try:
        fresh = bulk_changes.preview_again(actor=request.user, bulk_change=bulk)
    except LabelError as exc:
        _error(request, exc)
        return redirect("labels:bulk_detail", slug, pk)
    return redirect("labels:bulk_detail", slug, fresh.pk)


@login_required
@require_POST
def bulk_undo(request: AuthenticatedRequest, slug: str, pk: int) -> HttpResponse:
    _, bulk = _bulk_for(request, slug, pk)
    confirmed = [p.slug for p in Purpose.objects.all() if needs_own_confirmation(p) and request.POST.get("confirm")]
    try:
        undo = bulk_changes.undo_bulk_change(actor=request.user, bulk_change=bulk, confirmed=confirmed)
    except (LabelError, ConsentError) as exc:
        _error(request, exc)
        return redirect("labels:bulk_detail", slug, pk)
    if undo.status == BulkChange.Status.DONE:
        _done_message(request, undo)
    return redirect("labels:bulk_detail", slug, undo.pk)


@login_required
@require_GET
def bulk_progress(request: AuthenticatedRequest, slug: str, pk: int) -> JsonResponse:
    _, bulk = _bulk_for(request, slug, pk)
    return JsonResponse(
        {
            "status": bulk.status,
            "done": bulk.progress_done,
            "total": bulk.progress_total,
            "applied": bulk.applied,
            "finished": bulk.finished,
        }
    )


# --- CSV --------------------------------------------------------------------------------------


@login_required
@require_GET
def export_csv(request: AuthenticatedRequest, slug: str) -> StreamingHttpResponse:
    label = _label_for(request, slug)
    purposes = _purposes()
    tracks = selectors.catalogue_tracks(label, request.GET)
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(csvio.export_rows(tracks, purposes), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{label.slug}-consent-{stamp}.csv"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def import_csv(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    label = _label_for(request, slug)
    form = ImportForm(request.POST or None, request.FILES or None)
    report = bulk = None
    problem = ""
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        confirmed = (
            {p.slug for p in Purpose.objects.all() if needs_own_confirmation(p)}
            if form.cleaned_data["confirm_generative"]
            else set()
        )
        try:
            report = csvio.check_import(actor=request.user, label=label, upload=upload, confirmed=confirmed)
        except LabelError as exc:
            problem = exc.message
        else:
            if report.ok and report.will_change:
                bulk = csvio.draft_import(
                    actor=request.user, label=label, report=report, filename=upload.name, confirmed=confirmed
                )
    elif request.method == "POST":
        problem = " ".join(str(error) for error in form.errors.get("file", [])) or "Choose a CSV file."
    return render(
        request,
        "labels/import.html",
        {
            "label": label,
            "form": form,
            "report": report,
            "errors": report.errors[:1000] if report else [],
            "more_errors": max(0, len(report.errors) - 1000) if report else 0,
            "bulk": bulk,
            "problem": problem,
            "max_rows": settings.LABELS_CSV_MAX_ROWS,
            "max_bytes": settings.LABELS_CSV_MAX_BYTES,
            "purposes": _purposes(),
        },
        status=400 if problem else 200,
    )
