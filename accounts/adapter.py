from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings


def _on_site_url(url: str) -> str:
    """Rebase an absolute URL onto SITE_URL.

    Links in emails must point at the configured site, never at whatever Host
    header the request that triggered them happened to carry.
    """
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return settings.SITE_URL + path


class AccountAdapter(DefaultAccountAdapter):
    def get_from_email(self) -> str:
        return settings.DEFAULT_FROM_EMAIL

    def get_email_confirmation_url(self, request, emailconfirmation) -> str:
        return _on_site_url(super().get_email_confirmation_url(request, emailconfirmation))

    def get_reset_password_from_key_url(self, key: str) -> str:
        return _on_site_url(super().get_reset_password_from_key_url(key))
