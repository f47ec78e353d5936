from django.apps import AppConfig


class DownstreamConfig(AppConfig):
    name = "downstream"
    verbose_name = "Downstream systems"

    def ready(self) -> None:
        # The usage ledger is part of the artist's data export (accounts.hooks).
        from downstream import account_hooks

        account_hooks.register()
