from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseServerError
from django.shortcuts import redirect, render
from django.template import loader
from django.views.decorators.http import require_http_methods

from accounts.forms import ProfileForm


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
    return ["tracks/_dashboard_panel.html"]


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Your profile is saved.")
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form})


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
