"""The usage ledger is append-only in the database too (like the audit log: consent.db_guards)."""

from __future__ import annotations

TABLE = "downstream_usagerecord"

PG_INSTALL = [
    f"""CREATE OR REPLACE FUNCTION {TABLE}_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the usage ledger is append-only: % on {TABLE} refused', TG_OP
            USING ERRCODE = 'restrict_violation';
    END;
    $$;""",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_rewrite ON {TABLE};",
    f"""CREATE TRIGGER {TABLE}_no_rewrite BEFORE UPDATE OR DELETE ON {TABLE}
        FOR EACH ROW EXECUTE FUNCTION {TABLE}_refuse();""",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE};",
    f"""CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}
        FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_refuse();""",
]
PG_UNINSTALL = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_rewrite ON {TABLE};",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE};",
    f"DROP FUNCTION IF EXISTS {TABLE}_refuse();",
]
SQLITE_INSTALL = [
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'the usage ledger is append-only: UPDATE on {TABLE} refused'); END;""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'the usage ledger is append-only: DELETE on {TABLE} refused'); END;""",
]
SQLITE_UNINSTALL = [f"DROP TRIGGER IF EXISTS {TABLE}_no_update;", f"DROP TRIGGER IF EXISTS {TABLE}_no_delete;"]


def statements(vendor: str, *, install: bool) -> list[str]:
    table = {
        ("postgresql", True): PG_INSTALL,
        ("postgresql", False): PG_UNINSTALL,
        ("sqlite", True): SQLITE_INSTALL,
        ("sqlite", False): SQLITE_UNINSTALL,
    }
    if (vendor, install) not in table:
        raise NotImplementedError(f"No usage-ledger guard for database vendor {vendor!r}.")
    return table[(vendor, install)]


def install(apps, schema_editor) -> None:
    for statement in statements(schema_editor.connection.vendor, install=True):
        schema_editor.execute(statement, params=None)


def uninstall(apps, schema_editor) -> None:
    for statement in statements(schema_editor.connection.vendor, install=False):
        schema_editor.execute(statement, params=None)
