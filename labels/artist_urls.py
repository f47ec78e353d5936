"""The artist's own bulk changes, under /consent/bulk/ beside the consent matrix that links to them."""

from django.urls import path

from labels import artist_views

app_name = "own_bulk"

urlpatterns = [
    path("preview/", artist_views.preview, name="preview"),
    path("<int:pk>/", artist_views.detail, name="detail"),
    path("<int:pk>/confirm/", artist_views.confirm, name="confirm"),
    path("<int:pk>/again/", artist_views.again, name="again"),
    path("<int:pk>/undo/", artist_views.undo, name="undo"),
    path("<int:pk>/progress.json", artist_views.progress, name="progress"),
]
