from django.apps import AppConfig


class LabelsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "labels"

    def ready(self) -> None:
        # Account deletion and data export (accounts.hooks).
        from labels import account_hooks

        account_hooks.register()
