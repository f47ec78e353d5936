from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        # Account notices, outbox erasure and export (accounts.hooks).
        from notifications import account_hooks

        account_hooks.register()
