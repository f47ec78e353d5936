import json
import urllib.request
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from joserfc.jwk import KeySetSerialization

from downstream.models import SigningKey
from downstream.signing import ManifestInvalid, verify_manifest


class Command(BaseCommand):
    help = "Check a manifest file offline: its id is the SHA-256 of its canonical JSON and its signature verifies."

    def add_arguments(self, parser):
        parser.add_argument("file", help="The manifest, as GET /api/v1/manifests/{id} returned it ('-' for stdin).")
        parser.add_argument(
            "--jwks",
            default="",
            help="A JWKS file or URL (default: the keys this portal's database has published).",
        )

    def handle(self, *args, file, jwks, **options):
        try:
            text = self._read(file)
            document = json.loads(text)
        except (OSError, ValueError) as error:
            raise CommandError(f"Cannot read {file}: {error}") from None
        keys = self._jwks(jwks)
        try:
            kid = verify_manifest(document, keys)
        except ManifestInvalid as error:
            raise CommandError(f"INVALID: {error}") from None
        tracks = len(document.get("tracks", []))
        self.stdout.write(f"OK: manifest {document['id']} ({tracks} tracks) is intact and signed by key {kid}.")

    def _read(self, file: str) -> str:
        if file == "-":
            import sys

            return sys.stdin.read()
        return Path(file).read_text(encoding="utf-8")

    def _jwks(self, source: str) -> KeySetSerialization:
        if not source:
            return {"keys": list(SigningKey.objects.values_list("public_jwk", flat=True))}
        try:
            if source.startswith(("https://", "http://")):
                with urllib.request.urlopen(source, timeout=10) as response:  # noqa: S310 -- scheme checked above
                    return json.loads(response.read())
            return json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise CommandError(f"Cannot read the keys from {source}: {error}") from None
