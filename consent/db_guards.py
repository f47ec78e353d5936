"""The database side of "the audit log is append-only".

One module holds the trigger SQL so that the migration that installs it and
the test helpers that lift it around a test-database flush cannot drift apart.
"""

from __future__ import annotations

TABLE = "consent_auditevent"

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {TABLE}_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % on {TABLE} refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
"""

PG_INSTALL = [
    _PG_FUNCTION,
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

# SQLite has no TRUNCATE; DELETE without WHERE fires the row trigger (SQLite
# skips its truncate optimisation when a DELETE trigger exists).
SQLITE_INSTALL = [
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE on {TABLE} refused'); END;""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE on {TABLE} refused'); END;""",
]

SQLITE_UNINSTALL = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_update;",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_delete;",
]


def install_statements(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return PG_INSTALL
    if vendor == "sqlite":
        return SQLITE_INSTALL
    raise NotImplementedError(f"No audit-log guard for database vendor {vendor!r}; add one before using it.")


def uninstall_statements(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return PG_UNINSTALL
    if vendor == "sqlite":
        return SQLITE_UNINSTALL
    raise NotImplementedError(f"No audit-log guard for database vendor {vendor!r}.")


def install(schema_editor) -> None:
    for statement in install_statements(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


def uninstall(schema_editor) -> None:
    for statement in uninstall_statements(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)
