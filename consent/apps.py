from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "consent"

    def ready(self) -> None:
        # Account deletion and data export (accounts.hooks).
        from consent import account_hooks

        account_hooks.register()
