"""The request type of views that only a signed-in user reaches."""

from django.http import HttpRequest

from accounts.models import User


class AuthenticatedRequest(HttpRequest):
    """An HttpRequest after @login_required: `user` is a User, never AnonymousUser (for the type checker)."""

    user: User
