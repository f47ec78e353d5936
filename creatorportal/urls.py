from django.contrib import admin
from django.urls import include, path, re_path

from accounts import views as account_views
from creatorportal.health.views import healthz
from downstream.api import api
from downstream.views import api_not_found

urlpatterns = [
    # First: the consent API's one-track read is the hottest path on the site, and every pattern tried
    # before a match costs each of its requests (nothing else on the site starts with api/v1/).
    path("api/v1/", api.urls),
    re_path(r"^api/v1/", api_not_found),
    path("", account_views.landing, name="landing"),
    path("dashboard/", account_views.dashboard, name="dashboard"),
    path("healthz", healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("account/", include("accounts.urls")),
    path("tracks/", include("tracks.urls")),
    # The artist's bulk changes are labels' (its bulk machinery), consent's matrix links to them.
    path("consent/bulk/", include("labels.artist_urls")),
    path("consent/", include("consent.urls")),
    path("notices/", include("notifications.urls")),
    path("policy/", include("consent.policy_urls")),
    path("labels/", include("labels.urls")),
    path("admin/", admin.site.urls),
    path("", include("public.urls")),
    path("", include("downstream.urls")),
]

handler400 = "accounts.views.bad_request"
handler404 = "accounts.views.page_not_found"
handler403 = "accounts.views.permission_denied"
handler500 = "accounts.views.server_error"
