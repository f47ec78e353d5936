from django.db import migrations

# The trigger SQL as it was when this migration was written, carried here so that
# a later change to downstream/db_guards.py (used by the test helpers) cannot change
# what this migration did. downstream/tests/test_db_guards_frozen.py checks they agree.
PG_INSTALL = [
    "CREATE OR REPLACE FUNCTION downstream_usagerecord_refuse() RETURNS trigger LANGUAGE plpgsql AS $$\n    BEGIN\n        RAISE EXCEPTION 'the usage ledger is append-only: % on downstream_usagerecord refused', TG_OP\n            USING ERRCODE = 'restrict_violation';\n    END;\n    $$;",
    'DROP TRIGGER IF EXISTS downstream_usagerecord_no_rewrite ON downstream_usagerecord;',
    'CREATE TRIGGER downstream_usagerecord_no_rewrite BEFORE UPDATE OR DELETE ON downstream_usagerecord\n        FOR EACH ROW EXECUTE FUNCTION downstream_usagerecord_refuse();',
    'DROP TRIGGER IF EXISTS downstream_usagerecord_no_truncate ON downstream_usagerecord;',
    'CREATE TRIGGER downstream_usagerecord_no_truncate BEFORE TRUNCATE ON downstream_usagerecord\n        FOR EACH STATEMENT EXECUTE FUNCTION downstream_usagerecord_refuse();',
]
PG_UNINSTALL = [
    'DROP TRIGGER IF EXISTS downstream_usagerecord_no_rewrite ON downstream_usagerecord;',
    'DROP TRIGGER IF EXISTS downstream_usagerecord_no_truncate ON downstream_usagerecord;',
    'DROP FUNCTION IF EXISTS downstream_usagerecord_refuse();',
]
SQLITE_INSTALL = [
    "CREATE TRIGGER IF NOT EXISTS downstream_usagerecord_no_update BEFORE UPDATE ON downstream_usagerecord\n        BEGIN SELECT RAISE(ABORT, 'the usage ledger is append-only: UPDATE on downstream_usagerecord refused'); END;",
    "CREATE TRIGGER IF NOT EXISTS downstream_usagerecord_no_delete BEFORE DELETE ON downstream_usagerecord\n        BEGIN SELECT RAISE(ABORT, 'the usage ledger is append-only: DELETE on downstream_usagerecord refused'); END;",
]
SQLITE_UNINSTALL = [
    'DROP TRIGGER IF EXISTS downstream_usagerecord_no_update;',
    'DROP TRIGGER IF EXISTS downstream_usagerecord_no_delete;',
]


def _run(schema_editor, statements_by_vendor):
    vendor = schema_editor.connection.vendor
    if vendor not in statements_by_vendor:
        raise NotImplementedError(f"No usage-ledger guard for database vendor {vendor!r}.")
    for statement in statements_by_vendor[vendor]:
        schema_editor.execute(statement, params=None)


def install(apps, schema_editor):
    _run(schema_editor, {"postgresql": PG_INSTALL, "sqlite": SQLITE_INSTALL})


def uninstall(apps, schema_editor):
    _run(schema_editor, {"postgresql": PG_UNINSTALL, "sqlite": SQLITE_UNINSTALL})


class Migration(migrations.Migration):
    dependencies = [("downstream", "0001_initial")]

    operations = [migrations.RunPython(install, uninstall)]
