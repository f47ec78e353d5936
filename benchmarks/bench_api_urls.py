"""The site's URLs plus a bare Django view returning a constant JSON body, twice: at /bench/constant, where the
site's whole middleware runs, and at /api/v1/bench/constant, where the API's runs (site_middleware.py)."""

from django.http import JsonResponse
from django.urls import path

from creatorportal.urls import urlpatterns as site_urlpatterns

_BODY = {"track": "00000000-0000-0000-0000-000000000000", "purposes": {"recommendation": {"allowed": False}}}


def constant(request):
    return JsonResponse(_BODY)


urlpatterns = [path("bench/constant", constant), path("api/v1/bench/constant", constant), *site_urlpatterns]
