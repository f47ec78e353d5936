from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from public import devcert


class Command(BaseCommand):
    help = (
        "Create a local test CA and C2PA signing certificate at the configured paths, unless they exist "
        "(DEBUG only). Public audio copies are signed with it."
    )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("A development certificate is for DEBUG only; production names a real one in settings.")
        chain, key = Path(settings.PUBLIC_C2PA_CERT_CHAIN), Path(settings.PUBLIC_C2PA_PRIVATE_KEY)
        if chain.exists() and key.exists():
            self.stdout.write(f"C2PA signing certificate: {chain} (exists)")
            return
        if chain.parent != key.parent:
            raise CommandError("PUBLIC_C2PA_CERT_CHAIN and PUBLIC_C2PA_PRIVATE_KEY must be in one folder to generate.")
        made = devcert.generate(chain.parent, alg=settings.PUBLIC_C2PA_SIGNING_ALG)
        if made.chain_path != chain or made.key_path != key:
            made.chain_path.rename(chain)
            made.key_path.rename(key)
        self.stdout.write(f"C2PA signing certificate: {chain} (new local test CA: {made.ca_path})")
