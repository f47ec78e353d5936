from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from accounts import account_hooks
        from accounts.hooks import register_account_deleter
        from accounts.services import delete_account

        account_hooks.register()
        register_account_deleter(delete_account)
