from django.core.management.base import BaseCommand, CommandError

from consent.selectors import VerifyReport, iter_chain_breaks


class Command(BaseCommand):
    help = "Verify every artist's audit-log hash chain; exit non-zero and name the first broken link of each chain."

    def add_arguments(self, parser):
        parser.add_argument("--artist", type=int, help="Verify only this artist's chain (user id).")
        parser.add_argument("--chunk-size", type=int, default=5000, help="Rows fetched per round trip.")

    def handle(self, *args, artist=None, chunk_size=5000, **options):
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1.")
        report = VerifyReport()
        breaks = 0
        for problem in iter_chain_breaks(artist_id=artist, chunk_size=chunk_size, report=report):
            breaks += 1
            self.stderr.write(f"BROKEN: {problem}")
        if breaks:
            raise CommandError(
                f"{breaks} broken chain(s) found; {report.events} events in {report.chains} chain(s) checked."
            )
        self.stdout.write(f"OK: {report.events} events in {report.chains} chain(s) verified.")
