from django.apps import AppConfig


class LabelsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "labels"

    def ready(self) -> None:
        # Account deletion and data export (accounts.hooks).
        from labels import account_hooks

        account_hooks.register()
        # What a label manager may do for each artist, for the consent writers' permission check.
        from consent.hooks import register_delegation_source
        from labels.selectors import delegated_scopes

        register_delegation_source(delegated_scopes)
        # A label's proposals and roster invitations on the artist's dashboard.
        from consent.hooks import register_waiting_source
        from labels.dashboard import waiting_for_artist

        register_waiting_source("labels", waiting_for_artist)
