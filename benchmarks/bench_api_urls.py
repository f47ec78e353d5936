"""The site's URLs plus /bench/constant: a bare Django view returning a constant JSON body."""

from django.http import JsonResponse
from django.urls import path

from creatorportal.urls import urlpatterns as site_urlpatterns

_BODY = {"track": "00000000-0000-0000-0000-000000000000", "purposes": {"recommendation": {"allowed": False}}}


def constant(request):
    return JsonResponse(_BODY)


urlpatterns = [path("bench/constant", constant), *site_urlpatterns]
