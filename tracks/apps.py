from django.apps import AppConfig


class TracksConfig(AppConfig):
    name = "tracks"

    def ready(self) -> None:
        from tracks import account_hooks, signals  # noqa: F401

        account_hooks.register()
