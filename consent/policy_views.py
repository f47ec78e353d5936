"""Public policy pages (each version with what changed, the history), the banner's action, re-consent."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.requests import AuthenticatedRequest
from consent import policy, services
from consent.models import PolicyVersion
from platformkit.request_meta import RequestMeta


@require_GET
def policy_version(request: HttpRequest, version: int) -> HttpResponse:
    """One version of the terms (public), with what changed since an earlier one.

    Since `?since=N` (the link in the policy email names the version that
    artist last accepted), else for a signed-in artist the version they last
    accepted, else the version before. A signed-in artist also sees which of
    their tracks the change affects.
    """
    policy_version = get_object_or_404(PolicyVersion.objects.published(), version=version)
    signed_in = request.user.is_authenticated
    since = _since(request, policy_version)
    affected = policy.affected_tracks(request.user, policy_version).order_by("title", "pk") if signed_in else None
    return render(
        request,
        "consent/policy.html",
        {
            "policy": policy_version,
            "changes": policy.changes_between(since, policy_version) if since else None,
            "since_is_yours": signed_in and since == policy.last_accepted_version(request.user, before=policy_version),
            "affected_tracks": affected[:200] if affected is not None else [],
            "affected_count": affected.count() if affected is not None else 0,
        },
    )


def _since(request: HttpRequest, version: PolicyVersion) -> PolicyVersion | None:
    older = PolicyVersion.objects.published().filter(version__lt=version.version)
    asked = request.GET.get("since", "")
    if asked.isdigit():
        found = older.filter(version=int(asked)).first()
        if found is not None:
            return found
    if request.user.is_authenticated:
        return policy.last_accepted_version(request.user, before=version)
    return older.order_by("-version").first()


@require_GET
def policy_history(request: HttpRequest) -> HttpResponse:
    """Every published version, newest first, each with what changed since the one before."""
    versions = list(PolicyVersion.objects.published().prefetch_related("purposes_changed").order_by("version"))
    entries = []
    previous = None
    for version in versions:
        entries.append(
            {
                "version": version,
                "diff": policy.text_diff(previous.full_text, version.full_text) if previous else None,
                "summary_changed": previous is not None and previous.summary != version.summary,
            }
        )
        previous = version
    return render(request, "consent/policy_history.html", {"entries": list(reversed(entries))})


@login_required
@require_POST
def acknowledge(request: AuthenticatedRequest, version: int) -> HttpResponse:
    policy_version = get_object_or_404(PolicyVersion.objects.published(), version=version)
    services.acknowledge_policy(
        actor=request.user, version=policy_version, request_meta=RequestMeta.from_request(request)
    )
    policy.remember_acknowledgement(request.user, policy_version)
    messages.success(
        request,
        gettext("Thank you: you have read version %(version)s of the terms.") % {"version": policy_version.version},
    )
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = "dashboard"
    return redirect(next_url)


@login_required
@require_http_methods(["GET", "POST"])
def reconfirm(request: AuthenticatedRequest, version: int) -> HttpResponse:
    policy_version = get_object_or_404(
        PolicyVersion.objects.published().prefetch_related("purposes_changed"), version=version
    )
    tracks = policy.affected_tracks(request.user, policy_version).order_by("title", "pk")
    if request.method == "POST":
        result = services.reconfirm_consent(
            actor=request.user,
            version=policy_version,
            tracks=tracks,
            request_meta=RequestMeta.from_request(request),
        )
        if result.changed:
            messages.success(
                request,
                ngettext(
                    "Confirmed again: %(count)d permission will stay in place under the new terms.",
                    "Confirmed again: %(count)d permissions will stay in place under the new terms.",
                    result.event_count,
                )
                % {"count": result.event_count},
            )
        else:
            messages.info(request, gettext("There was nothing left to confirm."))
        return redirect("policy:reconfirm", version=policy_version.version)
    return render(
        request,
        "consent/policy_reconfirm.html",
        {"policy": policy_version, "tracks": tracks[:500], "track_count": tracks.count()},
    )
