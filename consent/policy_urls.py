from django.urls import path

from consent import policy_views

app_name = "policy"

urlpatterns = [
    path("", policy_views.policy_history, name="history"),
    path("<int:version>/acknowledge/", policy_views.acknowledge, name="acknowledge"),
    path("<int:version>/reconfirm/", policy_views.reconfirm, name="reconfirm"),
]
