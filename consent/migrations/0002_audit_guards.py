from django.db import migrations

# The trigger SQL as it was when this migration was written, carried here so that
# a later change to consent/db_guards.py (used by the test helpers) cannot change
# what this migration did. consent/tests/test_db_guards_frozen.py checks they agree.
PG_INSTALL = [
    "\nCREATE OR REPLACE FUNCTION consent_auditevent_refuse() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n    RAISE EXCEPTION 'audit events are append-only: % on consent_auditevent refused', TG_OP\n        USING ERRCODE = 'restrict_violation';\nEND;\n$$;\n",
    "DROP TRIGGER IF EXISTS consent_auditevent_no_rewrite ON consent_auditevent;",
    "CREATE TRIGGER consent_auditevent_no_rewrite BEFORE UPDATE OR DELETE ON consent_auditevent\n        FOR EACH ROW EXECUTE FUNCTION consent_auditevent_refuse();",
    "DROP TRIGGER IF EXISTS consent_auditevent_no_truncate ON consent_auditevent;",
    "CREATE TRIGGER consent_auditevent_no_truncate BEFORE TRUNCATE ON consent_auditevent\n        FOR EACH STATEMENT EXECUTE FUNCTION consent_auditevent_refuse();",
]
PG_UNINSTALL = [
    "DROP TRIGGER IF EXISTS consent_auditevent_no_rewrite ON consent_auditevent;",
    "DROP TRIGGER IF EXISTS consent_auditevent_no_truncate ON consent_auditevent;",
    "DROP FUNCTION IF EXISTS consent_auditevent_refuse();",
]
SQLITE_INSTALL = [
    "CREATE TRIGGER IF NOT EXISTS consent_auditevent_no_update BEFORE UPDATE ON consent_auditevent\n        BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE on consent_auditevent refused'); END;",
    "CREATE TRIGGER IF NOT EXISTS consent_auditevent_no_delete BEFORE DELETE ON consent_auditevent\n        BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE on consent_auditevent refused'); END;",
]
SQLITE_UNINSTALL = [
    "DROP TRIGGER IF EXISTS consent_auditevent_no_update;",
    "DROP TRIGGER IF EXISTS consent_auditevent_no_delete;",
]


def _run(schema_editor, statements_by_vendor):
    vendor = schema_editor.connection.vendor
    if vendor not in statements_by_vendor:
        raise NotImplementedError(f"No audit-log guard for database vendor {vendor!r}; add one before using it.")
    for statement in statements_by_vendor[vendor]:
        schema_editor.execute(statement, params=None)


def install(apps, schema_editor):
    _run(schema_editor, {"postgresql": PG_INSTALL, "sqlite": SQLITE_INSTALL})


def uninstall(apps, schema_editor):
    _run(schema_editor, {"postgresql": PG_UNINSTALL, "sqlite": SQLITE_UNINSTALL})


class Migration(migrations.Migration):
    dependencies = [("consent", "0001_initial")]

    operations = [migrations.RunPython(install, uninstall)]
