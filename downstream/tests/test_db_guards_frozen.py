"""The usage-ledger trigger SQL lives twice on purpose: frozen in the migration, live in downstream/db_guards.py.

downstream.testing lifts and restores the triggers with the live copy; if it
drifts from what the migration installed, the restored triggers are not the
ones a migrated database has. A change to the SQL needs a new migration.
"""

from __future__ import annotations

import importlib

from downstream import db_guards


def test_the_live_ledger_trigger_sql_is_what_the_migration_installed():
    installed = importlib.import_module("downstream.migrations.0002_usage_ledger_guards")
    for vendor, install, frozen in [
        ("postgresql", True, installed.PG_INSTALL),
        ("postgresql", False, installed.PG_UNINSTALL),
        ("sqlite", True, installed.SQLITE_INSTALL),
        ("sqlite", False, installed.SQLITE_UNINSTALL),
    ]:
        assert db_guards.statements(vendor, install=install) == frozen, (vendor, install)
