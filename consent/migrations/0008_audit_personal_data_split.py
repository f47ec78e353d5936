"""Move the personal data of audit events out of the hashed, append-only rows.

IP address, user agent and track title move to two erasable tables
(AuditActorData, AuditSubjectData). Events already written are version 1:
their hash covers those values, which the verifier now reads from the new
tables, so every existing chain still verifies. New events are version 2 and
hash only a keyed digest of them (see consent.chain).

The move copies every value before dropping its column, in one transaction on
PostgreSQL; no audit row is updated or deleted (the triggers stay in force).
It cannot be reversed once events exist: the values could only go back by rewriting audit rows.
"""

import importlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.migrations.exceptions import IrreversibleError


# The triggers as 0002_audit_guards froze them: migrations carry their SQL, they do not import live code.
_guards = importlib.import_module("consent.migrations.0002_audit_guards")


def copy_personal_data(apps, schema_editor):
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    # Both rows for every version-1 event, even empty ones: for these events a
    # missing row can then only be an erasure.
    statements = [
        f"INSERT INTO consent_auditactordata (event_id, {quote('key')}, ip, user_agent) "
        "SELECT hash, '', ip, user_agent FROM consent_auditevent",
        f"INSERT INTO consent_auditsubjectdata (event_id, {quote('key')}, track_title) "
        "SELECT hash, '', track_title FROM consent_auditevent",
    ]
    if connection.vendor == "postgresql":
        # The new rows' deferred foreign-key checks would otherwise stop the
        # ALTER TABLE below ("pending trigger events").
        statements.append("SET CONSTRAINTS ALL IMMEDIATE")
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def refuse_to_move_back(apps, schema_editor):
    # Putting the values back would mean rewriting audit rows, which the log
    # forbids; an empty log (a fresh or test database) can go back freely.
    if apps.get_model("consent", "AuditEvent").objects.exists():
        raise IrreversibleError("The audit log's personal data cannot be moved back into its append-only rows.")


def reinstall_guards(apps, schema_editor):
    # SQLite may rebuild the table to drop columns, and a rebuilt table has no
    # triggers; installing is idempotent on both databases.
    _guards.install(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0007_third_party_ai_training"),
        ("tracks", "0002_refine_track"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditActorData",
            fields=[
                (
                    "event",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="actor_data",
                        serialize=False,
                        to="consent.auditevent",
                        to_field="hash",
                    ),
                ),
                ("key", models.CharField(blank=True, max_length=64)),
                ("ip", models.CharField(blank=True, max_length=45, verbose_name="IP address")),
                ("user_agent", models.CharField(blank=True, max_length=512)),
            ],
        ),
        migrations.CreateModel(
            name="AuditSubjectData",
            fields=[
                (
                    "event",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="subject_data",
                        serialize=False,
                        to="consent.auditevent",
                        to_field="hash",
                    ),
                ),
                ("key", models.CharField(blank=True, max_length=64)),
                ("track_title", models.CharField(blank=True, max_length=300)),
            ],
        ),
        migrations.CreateModel(
            name="AuditErasure",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("user_id", models.BigIntegerField(db_index=True)),
                (
                    "scope",
                    models.CharField(
                        choices=[("chain", "The artist's whole chain"), ("actor", "Requests made by this user")],
                        max_length=16,
                    ),
                ),
                ("reason", models.CharField(max_length=200)),
                ("erased_at", models.DateTimeField()),
                ("actor_rows", models.PositiveIntegerField(default=0)),
                ("subject_rows", models.PositiveIntegerField(default=0)),
            ],
            options={"ordering": ["-erased_at", "-id"]},
        ),
        migrations.AddField(
            model_name="auditevent",
            name="chain_version",
            field=models.PositiveSmallIntegerField(default=1),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditevent",
            name="actor_data_digest",
            field=models.CharField(blank=True, default="", max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditevent",
            name="subject_data_digest",
            field=models.CharField(blank=True, default="", max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(copy_personal_data, refuse_to_move_back, elidable=False),
        migrations.RemoveField(model_name="auditevent", name="ip"),
        migrations.RemoveField(model_name="auditevent", name="user_agent"),
        migrations.RemoveField(model_name="auditevent", name="track_title"),
        migrations.AlterField(
            model_name="auditevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("consent_changed", "Consent changed"),
                    ("defaults_changed", "Upload default changed"),
                    ("track_uploaded", "Track uploaded"),
                    ("track_deleted", "Track deleted"),
                    ("policy_acknowledged", "Policy acknowledged"),
                    ("consent_reconfirmed", "Consent confirmed again"),
                    ("delegation_changed", "Label delegation changed"),
                    ("account_deleted", "Account deleted"),
                ],
                max_length=32,
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="source",
            field=models.CharField(
                choices=[
                    ("web", "Web"),
                    ("upload", "Upload form"),
                    ("account_default", "Account default"),
                    ("admin", "Admin"),
                    ("bulk", "Bulk edit"),
                    ("csv", "CSV import"),
                    ("api", "API"),
                    ("policy_lapse", "Policy lapse"),
                    ("policy_ack", "Policy acknowledgement"),
                    ("account_deletion", "Account deletion"),
                    ("system", "System"),
                ],
                max_length=32,
            ),
        ),
        migrations.AlterField(
            model_name="consent",
            name="track",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="consents", to="tracks.track"
            ),
        ),
        migrations.AlterField(
            model_name="uploaddefault",
            name="artist",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="upload_defaults",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(reinstall_guards, migrations.RunPython.noop, elidable=False),
    ]
