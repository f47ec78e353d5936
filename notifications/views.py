"""The notices page: every email the portal queued for the signed-in user, readable in the portal."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from notifications.models import Notification
from notifications.rendering import build_message

PAGE_SIZE = 50


@login_required
@require_GET
def notice_list(request: HttpRequest) -> HttpResponse:
    notices = Notification.objects.filter(recipient=request.user).order_by("-created_at", "-id")
    page = Paginator(notices, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "notifications/list.html", {"page": page})


@login_required
@require_GET
def notice_detail(request: HttpRequest, pk: int) -> HttpResponse:
    # Scoped to the recipient: someone else's notice is a 404, not a 403.
    notice = get_object_or_404(Notification, pk=pk, recipient=request.user)
    # Built exactly as the worker builds it, so the portal shows what the email says.
    message = build_message(notice)
    return render(
        request,
        "notifications/detail.html",
        {"notice": notice, "subject": message.subject, "body": message.body},
    )
