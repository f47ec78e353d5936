from django.core.management.base import BaseCommand, CommandError

from downstream import services


class Command(BaseCommand):
    help = "Register a downstream system and print its API token (shown once) alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--purpose", action="append", default=[], metavar="SLUG", help="A purpose it may read.")
        parser.add_argument("--manifests", action="store_true", help="May create signed manifests.")
        parser.add_argument("--usage", action="store_true", help="May report use to the usage ledger.")
        parser.add_argument("--contact", default="", help="Who runs it (team or email).")
        parser.add_argument("--webhook", default="", metavar="HTTPS_URL", help="Endpoint told of every change.")

    def handle(self, *args, name, purpose, manifests, usage, contact, webhook, **options):
        try:
            issued = services.create_client(
                name=name,
                contact=contact or name,
                purposes=purpose,
                can_write_manifests=manifests,
                can_write_usage=usage,
                webhook_url=webhook,
            )
        except services.DownstreamError as error:
            raise CommandError(error.message) from None
        scope = ", ".join(sorted(purpose)) or "no purposes"
        self.stderr.write(f"Registered {name!r} ({scope}). The token below is shown once; only its hash is kept.")
        if issued.webhook_secret:
            self.stderr.write(f"Webhook signing secret (shown once): {issued.webhook_secret}")
        self.stdout.write(issued.token)
