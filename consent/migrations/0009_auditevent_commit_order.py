"""The audit log's commit-order column (see consent.models.TransactionHorizon).

Added with plain ALTER TABLE on both databases: a model-driven AddField with a
default would make Django rebuild the SQLite table, which drops the append-only
triggers. Existing rows get 0 (they committed long ago, so they sort first);
no row is updated, so the guards are never lifted.
"""

from django.db import migrations, models

import consent.models

_PG_DEFAULT = "GREATEST(pg_snapshot_xmax(pg_current_snapshot())::text::bigint, pg_current_xact_id()::text::bigint + 1)"


def add_column(apps, schema_editor):
    schema_editor.execute("ALTER TABLE consent_auditevent ADD COLUMN xid_horizon bigint NOT NULL DEFAULT 0")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE consent_auditevent ALTER COLUMN xid_horizon SET DEFAULT {_PG_DEFAULT}")


def drop_column(apps, schema_editor):
    schema_editor.execute("ALTER TABLE consent_auditevent DROP COLUMN xid_horizon")


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0008_audit_personal_data_split"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="auditevent",
                    name="xid_horizon",
                    field=models.BigIntegerField(db_default=consent.models.TransactionHorizon(), editable=False),
                ),
            ],
            database_operations=[migrations.RunPython(add_column, drop_column)],
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["xid_horizon", "id"], name="consent_audit_commit_order_idx"),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["track_uuid", "-seq"], name="consent_audit_track_seq_idx"),
        ),
    ]
