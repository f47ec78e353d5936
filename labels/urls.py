from django.urls import path

from labels import views

app_name = "labels"

urlpatterns = [
    path("", views.home, name="home"),
    path("delegations/", views.delegations, name="delegations"),
    path("delegations/join/", views.request_join, name="request_join"),
    path(
        "delegations/<int:pk>/<str:action>/",
        views.delegation_action,
        name="delegation_action",
    ),
    path("proposals/<int:pk>/", views.proposal, name="proposal"),
    path("invitations/<str:token>/", views.accept_manager, name="accept_manager"),
    path("join/<str:token>/", views.artist_invitation, name="artist_invitation"),
    path("join/<str:token>/<str:action>/", views.artist_invitation_action, name="artist_invitation_action"),
    path("<slug:slug>/", views.catalogue, name="catalogue"),
    path("<slug:slug>/roster/", views.roster, name="roster"),
    path("<slug:slug>/roster/invite/<str:who>/", views.roster_invite, name="roster_invite"),
    path("<slug:slug>/roster/<int:pk>/<str:action>/", views.roster_action, name="roster_action"),
    path("<slug:slug>/bulk/", views.bulk_list, name="bulk_list"),
    path("<slug:slug>/bulk/preview/", views.bulk_preview, name="bulk_preview"),
    path("<slug:slug>/bulk/<int:pk>/", views.bulk_detail, name="bulk_detail"),
    path("<slug:slug>/bulk/<int:pk>/confirm/", views.bulk_confirm, name="bulk_confirm"),
    path("<slug:slug>/bulk/<int:pk>/undo/", views.bulk_undo, name="bulk_undo"),
    path("<slug:slug>/bulk/<int:pk>/again/", views.bulk_again, name="bulk_again"),
    path("<slug:slug>/bulk/<int:pk>/progress.json", views.bulk_progress, name="bulk_progress"),
    path("<slug:slug>/export.csv", views.export_csv, name="export_csv"),
    path("<slug:slug>/import/", views.import_csv, name="import_csv"),
]
