from django.db import migrations

# Django gives every indexed varchar column on PostgreSQL a second, varchar_pattern_ops index for LIKE
# 'prefix%' lookups. Nothing looks a dedupe key or a campaign up by prefix (the admin's search is a
# case-insensitive contains, which no btree serves), and every status change of a notice (claimed, sent)
# moves the row to a new version that each index of the table gets an entry for: two of seven were these.
PATTERN_INDEXES = {
    "notifications_notification_dedupe_key_f195c156_like": "dedupe_key",
    "notifications_notification_campaign_8580866e_like": "campaign",
}


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in PATTERN_INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}", params=None)


def restore(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, column in PATTERN_INDEXES.items():
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON notifications_notification ({column} varchar_pattern_ops)",
                params=None,
            )


class Migration(migrations.Migration):
    dependencies = [("notifications", "0004_api_ack_overdue_kind")]

    operations = [migrations.RunPython(drop, restore)]
