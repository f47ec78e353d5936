"""accounts' own part in its flows: the profile in the export, the archives in the deletion."""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator

from accounts import services
from accounts.hooks import ErasureStep, ExportSection, erasure_steps, export_sections


def profile(user) -> dict[str, Any]:
    return {
        "id": user.pk,
        "email": user.email,
        "display_name": user.display_name,
        "date_joined": user.date_joined,
        "last_login": user.last_login,
        "is_staff": user.is_staff,
        "email_addresses": [
            {"email": a.email, "verified": a.verified, "primary": a.primary}
            for a in EmailAddress.objects.filter(user=user).order_by("pk")
        ],
        # Which second factors are on; never their secrets.
        "two_factor": [
            {"type": a.type, "created_at": a.created_at, "last_used_at": a.last_used_at}
            for a in Authenticator.objects.filter(user=user).order_by("pk")
        ],
    }


def register() -> None:
    export_sections.register(
        ExportSection(
            "profile.json",
            profile,
            order=10,
            description="Your account: email addresses, display name, dates, two-factor methods.",
        )
    )
    erasure_steps.register(ErasureStep("accounts.data_exports", services.delete_user_exports, order=95))
