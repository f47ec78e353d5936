from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "consent"

    def ready(self) -> None:
        # Account deletion and data export (accounts.hooks).
        from consent import account_hooks

        account_hooks.register()
        # What receipts and policy notices read when their email is built (notifications.rendering).
        from consent import notice_context

        notice_context.register()
        # A track's upload and deletion (tracks.hooks).
        from consent import track_hooks

        track_hooks.register()
