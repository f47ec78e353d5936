from django.apps import AppConfig


class PublicConfig(AppConfig):
    name = "public"
    verbose_name = "Public pages and AI signals"

    def ready(self) -> None:
        # Dependency inversion: consent offers the hook, public registers into
        # it, so consent never imports public.
        from consent.hooks import register_consent_listener
        from public import checks, receivers, services  # noqa: F401 -- checks register themselves

        register_consent_listener("public.rebuild_copies", services.on_consent_changed)
        receivers.connect()
