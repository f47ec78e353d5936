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
        # The outbox sweep also restarts a policy fan-out cut short (notifications.services).
        from consent.tasks import restart_unfinished_fan_outs
        from notifications.services import register_sweep_step

        register_sweep_step("fan_outs_restarted", restart_unfinished_fan_outs)
