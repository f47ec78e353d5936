from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone, translation

from accounts.locale import supported_language, time_zone_for


class UserLocaleMiddleware:
    """After LocaleMiddleware and authentication: the signed-in user's language and time zone.

    A user who has not chosen a language keeps the one LocaleMiddleware took
    from the browser; it is remembered (one UPDATE, only when it changes) so
    that emails the worker writes later are in that language too.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            chosen = supported_language(user.language)
            if chosen:
                translation.activate(chosen)
                request.LANGUAGE_CODE = chosen
            else:
                detected = translation.get_language()
                # "" stands for the default language: an English browser never writes.
                if detected and (user.browser_language or settings.LANGUAGE_CODE) != detected:
                    get_user_model().objects.filter(pk=user.pk).update(browser_language=detected)
                    user.browser_language = detected
            timezone.activate(time_zone_for(user))
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
