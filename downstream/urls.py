from django.urls import path

from downstream import views

app_name = "downstream"

urlpatterns = [
    path("tracks/<uuid:uuid>/downstream/", views.track_downstream, name="track"),
]
