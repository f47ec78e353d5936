import logging
import time
from functools import wraps
from urllib.parse import urlencode

from allauth.account import app_settings as allauth_account_settings

# allauth keeps its record of (re)authentications in the session; this reads
# it to tell a password re-entry from an authenticator code (allauth 65.x).
from allauth.account.internal.flows.login import get_authentication_records
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponseServerError
from django.shortcuts import get_object_or_404, redirect, render
from django.template import loader
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET, require_http_methods

from accounts import services
from accounts.forms import DeleteAccountForm, ProfileForm
from accounts.locale import language_for
from accounts.models import DataExport

logger = logging.getLogger(__name__)


def landing(request):
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "landing.html")


@login_required
def dashboard(request):
    return render(request, "accounts/dashboard.html", {"dashboard_panels": _dashboard_panels(request)})


def _dashboard_panels(request) -> list[str]:
    """Templates that other apps contribute to the dashboard, in order.

    Kept as a list here so that the dashboard does not import every app.
    """
    # Consent first: the dashboard answers "what is my music used for?" before anything else.
    return ["consent/_dashboard_panel.html", "tracks/_dashboard_panel.html", "downstream/_dashboard_usage.html"]


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        # Said in the language just chosen, which the next page will be in.
        with translation.override(language_for(user) if user.language else translation.get_language()):
            messages.success(request, gettext("Your settings are saved."))
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form})


# --- Your data ------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def data(request):
    if request.method == "POST":
        _export, created = services.request_data_export(user=request.user)
        if created:
            messages.success(
                request, gettext("Your archive is being prepared. We will email you a link as soon as it is ready.")
            )
        else:
            messages.info(
                request, gettext("Your archive is already being prepared; we will email you when it is ready.")
            )
        return redirect("accounts:data")
    exports = list(DataExport.objects.filter(user=request.user)[:10])
    context = {"exports": exports, "now": timezone.now(), "ttl": _duration(settings.ACCOUNTS_EXPORT_TTL_SECONDS)}
    return render(request, "accounts/data.html", context)


def _duration(seconds: int) -> str:
    """The largest whole unit: "7 days", "36 hours", "90 minutes"."""
    if seconds % 86400 == 0:
        days = seconds // 86400
        return ngettext("%(count)d day", "%(count)d days", days) % {"count": days}
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}
    minutes = max(1, round(seconds / 60))
    return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}


@login_required
@require_GET
def data_export_download(request, export_uuid):
    # Scoped to the signed-in owner: a forwarded link is a 404 to anyone else.
    export = get_object_or_404(DataExport, uuid=export_uuid, user=request.user)
    if export.is_expired():
        return render(request, "accounts/data_export_unavailable.html", {"export": export, "expired": True}, status=410)
    if export.status != DataExport.Status.READY:
        return render(request, "accounts/data_export_unavailable.html", {"export": export, "expired": False})
    # The archive holds everything about the account: a session alone (left
    # open, or stolen) is not enough to take it away.
    again = _reauthentication_redirect(request)
    if again is not None:
        return again
    try:
        stored = default_storage.open(export.storage_name, "rb")
    except OSError:
        logger.exception("data export %s: stored archive %s is missing", export.pk, export.storage_name)
        return render(request, "accounts/data_export_unavailable.html", {"export": export, "missing": True}, status=410)
    response = FileResponse(
        stored,
        as_attachment=True,
        filename=f"creator-consent-portal-data-{export.ready_at:%Y-%m-%d}.zip",
        content_type="application/zip",
    )
    response["Cache-Control"] = "no-store"
    return response


# --- Delete my account -----------------------------------------------------------------------


def _recently_reauthenticated_by(request) -> set[str]:
    cutoff = time.time() - allauth_account_settings.REAUTHENTICATION_TIMEOUT
    return {
        record.get("method")
        for record in get_authentication_records(request, request.user)
        if record.get("reauthenticated") and record.get("at", 0) >= cutoff
    }


def reauthenticated(view):
    """allauth's re-authentication, stricter than its default: with MFA on, the code is required.

    allauth accepts any one method; deleting an account with a stolen session
    and a guessed password must not be possible when the artist chose a
    second factor. The POST is never replayed: after re-authenticating, the
    artist confirms again on the page.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        return _reauthentication_redirect(request) or view(request, *args, **kwargs)

    return wrapper


def _reauthentication_redirect(request):
    """None if the user re-authenticated recently enough (by code when MFA is on); else where to do it."""
    method = "mfa" if is_mfa_enabled(request.user) else "password"
    if method in _recently_reauthenticated_by(request):
        return None
    target = reverse("mfa_reauthenticate" if method == "mfa" else "account_reauthenticate")
    return redirect(f"{target}?{urlencode({'next': request.path})}")


@login_required
@require_http_methods(["GET", "POST"])
@reauthenticated
def delete_account(request):
    user = request.user
    form = DeleteAccountForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            services.delete_account(user=user, actor=user, via=services.VIA_SETTINGS, request=request)
        except services.AccountError as error:
            messages.error(request, error.message)
            return redirect("accounts:delete")
        logout(request)
        return redirect("accounts:deleted")
    return render(request, "accounts/delete.html", {"form": form, "plan": services.deletion_plan(user)})


@require_GET
def account_deleted(request):
    return render(request, "accounts/deleted.html")


def bad_request(request, exception):
    return render(request, "errors/400.html", status=400)


def page_not_found(request, exception):
    return render(request, "errors/404.html", status=404)


def permission_denied(request, exception):
    return render(request, "errors/403.html", status=403)


def server_error(request):
    # Rendered without the request, so no context processor runs: the error may
    # be the database itself.
    return HttpResponseServerError(loader.get_template("errors/500.html").render())
