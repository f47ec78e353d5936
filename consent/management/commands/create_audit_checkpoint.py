from django.core.management.base import BaseCommand, CommandError

from consent.audit_verify import CheckpointRefused, create_checkpoint


class Command(BaseCommand):
    help = (
        "Verify the audit chains from the last good checkpoint, then write a new signed checkpoint of every chain "
        "head to AUDIT_CHECKPOINT_DIR (refused, non-zero exit, if anything does not verify)."
    )

    def handle(self, *args, **options):
        try:
            checkpoint = create_checkpoint()
        except CheckpointRefused as refused:
            for problem in refused.breaks:
                self.stderr.write(f"BROKEN: {problem}")
            raise CommandError(
                f"No checkpoint written: {len(refused.breaks)} problem(s) in the audit chains."
            ) from None
        statement = checkpoint.statement
        self.stdout.write(
            f"Checkpoint {checkpoint.number} written at {statement['created_at']}: {statement['chains']} chain(s), "
            f"{statement['events']} event(s), {statement['events_recorded']} new since the previous one; "
            f"Merkle root {statement['merkle_root']}."
        )
