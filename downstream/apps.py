from django.apps import AppConfig


class DownstreamConfig(AppConfig):
    name = "downstream"
    verbose_name = "Downstream systems"
