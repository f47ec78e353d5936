from django.urls import path

from public import views

app_name = "public"

# Mounted at the site root: these addresses are the contract crawlers rely on.
urlpatterns = [
    path("t/<uuid:uuid>/", views.track_page, name="track"),
    path("t/<uuid:uuid>/audio", views.track_audio, name="audio"),
    path("t/<uuid:uuid>/artwork", views.track_artwork, name="artwork"),
    path("a/<uuid:uuid>/", views.artist_page, name="artist"),
    path("robots.txt", views.robots_txt, name="robots_txt"),
    path("ai.txt", views.ai_txt, name="ai_txt"),
    path(".well-known/tdmrep.json", views.tdmrep_json, name="tdmrep_json"),
    path("ai-policy.json", views.policy_json, name="policy_json"),
    path("ai-policy/", views.policy_page, name="policy_page"),
    path("public/tracks/<uuid:uuid>/", views.manage, name="manage"),
]
