import uuid
from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from django.conf import settings
from django.contrib.sites.requests import RequestSite
from django.db import transaction

from accounts.locale import user_locale
from notifications.notices import account_email
from notifications.services import queue_notice


def _on_site_url(url: str) -> str:
    """Rebase an absolute URL onto SITE_URL.

    Links in emails must point at the configured site, never at whatever Host
    header the request that triggered them happened to carry.
    """
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return settings.SITE_URL + path


class PortalSite(RequestSite):
    """The portal as allauth's templates name it: SITE_NAME at SITE_URL, never the request's Host."""

    def __init__(self):
        self.name = settings.SITE_NAME
        self.domain = urlsplit(settings.SITE_URL).netloc


# Links allauth builds from the request (so from its Host header) for its emails.
_REQUEST_BUILT_LINKS = ("signup_url", "password_reset_url", "activate_url")


class AccountAdapter(DefaultAccountAdapter):
    def get_from_email(self) -> str:
        return settings.DEFAULT_FROM_EMAIL

    def get_email_confirmation_url(self, request, emailconfirmation) -> str:
        return _on_site_url(super().get_email_confirmation_url(request, emailconfirmation))

    def get_reset_password_from_key_url(self, key: str) -> str:
        return _on_site_url(super().get_reset_password_from_key_url(key))

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """Account emails go through the outbox like every other email.

        allauth renders them here (its templates, its context); the outbox
        stores the rendered text and the worker delivers it with retries, so a
        mail server outage loses no verification or reset email.
        """
        request = allauth_context.request
        user = context.get("user")
        # Someone with an account gets their language, which may not be the one
        # of the browser that asked (a reset requested from a shared computer).
        # A new sign-up has not chosen one yet: the page's language applies.
        if user is not None and getattr(user, "pk", None) and user.language:
            with user_locale(user):
                self._queue_account_email(template_prefix, email, context, request, user)
        else:
            self._queue_account_email(template_prefix, email, context, request, user)

    def _queue_account_email(self, template_prefix: str, email: str, context: dict, request, user) -> None:
        context = {
            **context,
            **{key: _on_site_url(context[key]) for key in _REQUEST_BUILT_LINKS if context.get(key)},
        }
        message = self.render_mail(
            template_prefix,
            email,
            {
                "request": request,
                "email": email,
                "current_site": PortalSite(),
                "SITE_NAME": settings.SITE_NAME,
                "SITE_URL": settings.SITE_URL,
                **context,
            },
        )
        html = next(
            (content for content, mimetype in getattr(message, "alternatives", []) if mimetype == "text/html"), ""
        )
        with transaction.atomic():
            queue_notice(
                account_email(
                    to_email=email,
                    # Every account email is its own event (each carries a fresh key).
                    dedupe_key=f"account:{template_prefix.rsplit('/', 1)[-1]}:{uuid.uuid4().hex}",
                    subject=message.subject,
                    text=message.body,
                    html=html,
                    recipient=user if getattr(user, "pk", None) else None,
                )
            )
