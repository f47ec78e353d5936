from django.db import migrations

# Django gives every indexed varchar column on PostgreSQL a second, varchar_pattern_ops index for LIKE
# 'prefix%' lookups. An event's hash and its personal parts' event_id are hex digests that nothing looks
# up by prefix (their unique and primary-key indexes serve every lookup), and every bulk chunk paid for
# maintaining the second index on 20,000 rows of each table.
PATTERN_INDEXES = [
    "consent_auditevent_hash_47c691b1_like",
    "consent_auditactordata_event_id_e91067dd_like",
    "consent_auditsubjectdata_event_id_e11840e0_like",
]


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in PATTERN_INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}", params=None)


def restore(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, table, column in zip(
            PATTERN_INDEXES,
            ["consent_auditevent", "consent_auditactordata", "consent_auditsubjectdata"],
            ["hash", "event_id", "event_id"],
            strict=True,
        ):
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column} varchar_pattern_ops)", params=None
            )


class Migration(migrations.Migration):
    dependencies = [("consent", "0014_statement_level_keys")]

    operations = [migrations.RunPython(drop, restore)]
