"""The site's browser middleware, passed by for machine clients under /api/v1/.

The consent API authenticates every request by its bearer token and answers JSON in one language: it has
no session, no signed-in user, no messages and no interface language, and running that middleware for it
cost each API request about a fifth of the server's CPU for nothing. Each class here is the named Django
middleware (a subclass, so that Django's and the admin's checks still find it) for every other path, and a
pass-through under the API's prefix. CSRF protection stays in front of everything, as Django's deploy check
asks (the API's views are exempt from it, which costs them little); what API responses need (security
headers, the CSP of the interactive docs, the request id, problem documents) stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest
from django.middleware.common import CommonMiddleware
from django.middleware.locale import LocaleMiddleware

from downstream.middleware import API_PREFIX


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _site_only(base: type) -> type:
    def __call__(self: Any, request: HttpRequest) -> Any:
        if _is_api(request):
            return self.get_response(request)
        return base.__call__(self, request)

    namespace: dict[str, Any] = {
        "__call__": __call__,
        "__doc__": f"{base.__module__}.{base.__name__}, passed by under {API_PREFIX}.",
        "__module__": __name__,
    }

    def guarded(hook: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            return None if _is_api(request) else hook(self, request, *args, **kwargs)

        return call

    # The handler collects process_view and friends by hasattr; only the ones the base has are guarded.
    for hook in ("process_view", "process_exception", "process_template_response"):
        if hasattr(base, hook):
            namespace[hook] = guarded(getattr(base, hook))
    return type(f"SiteOnly{base.__name__}", (base,), namespace)


SiteOnlySessionMiddleware = _site_only(SessionMiddleware)
SiteOnlyLocaleMiddleware = _site_only(LocaleMiddleware)
SiteOnlyCommonMiddleware = _site_only(CommonMiddleware)
SiteOnlyAuthenticationMiddleware = _site_only(AuthenticationMiddleware)
SiteOnlyMessageMiddleware = _site_only(MessageMiddleware)
