from django.urls import path

from tracks import views

app_name = "tracks"

urlpatterns = [
    path("", views.track_list, name="list"),
    path("upload/", views.upload, name="upload"),
    path("<uuid:uuid>/", views.track_detail, name="detail"),
    path("<uuid:uuid>/status/", views.track_status, name="status"),
    path("<uuid:uuid>/edit/", views.track_edit, name="edit"),
    path("<uuid:uuid>/delete/", views.track_delete, name="delete"),
    path("<uuid:uuid>/audio/", views.track_audio, name="audio"),
    path("<uuid:uuid>/artwork/", views.track_artwork, {"size": "display"}, name="artwork"),
    path("<uuid:uuid>/artwork/thumbnail/", views.track_artwork, {"size": "thumbnail"}, name="artwork_thumbnail"),
]
