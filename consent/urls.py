from django.urls import path

from consent import policy_views, views

app_name = "consent"

urlpatterns = [
    path("", views.matrix, name="matrix"),
    path("tracks/<uuid:track_uuid>/", views.track_update, name="track_update"),
    path("confirm/", views.confirm, name="confirm"),
    path("defaults/", views.defaults, name="defaults"),
    path("log/", views.audit_log, name="audit_log"),
    path("log/export.csv", views.audit_export, {"fmt": "csv"}, name="audit_export_csv"),
    path("log/export.json", views.audit_export, {"fmt": "json"}, name="audit_export_json"),
    path("receipts/schema.json", views.receipt_schema, name="receipt_schema"),
    path("receipts/<uuid:receipt_id>.json", views.receipt, name="receipt"),
    path("policy/<int:version>/", policy_views.policy_version, name="policy"),
]
