"""Builder of downstream's notice to staff: a system late to apply a withdrawal (api_ack_overdue)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.conf import settings
from django.urls import reverse

from notifications.models import Notification
from notifications.services import NewNotification

if TYPE_CHECKING:
    from accounts.models import User
    from downstream.services import Overdue


def ack_overdue_notices(item: Overdue, *, staff: Iterable[User]) -> list[NewNotification]:
    """One per staff member, keyed by the backlog's oldest withdrawal (a new backlog is a new notice)."""
    context = {
        "client": item.client.name,
        "contact": item.client.contact,
        "purpose": item.purpose.name,
        "count": item.count,
        "oldest_at": item.oldest_at.isoformat(),
        "hours": settings.API_ACK_DEADLINE_HOURS,
        "admin_path": reverse("admin:downstream_apiclient_change", args=[item.client.pk]),
    }
    return [
        NewNotification(
            kind=Notification.Kind.API_ACK_OVERDUE,
            to_email=user.email,
            recipient=user,
            dedupe_key=f"api-ack-overdue:{item.client.pk}:{item.purpose.pk}:{item.oldest_event_id}:{user.pk}",
            context=context,
        )
        for user in staff
    ]
