"""The audit-log trigger SQL lives twice on purpose: frozen in the migrations, live in consent/db_guards.py.

The test helpers lift and restore the triggers with the live copy; if it drifts
from what the migrations installed, the restored triggers are not the ones a
migrated database has. A change to the SQL needs a new migration, not an edit.
"""

from __future__ import annotations

import importlib

from consent import db_guards


def _migration(name: str):
    return importlib.import_module(f"consent.migrations.{name}")


def test_the_live_trigger_sql_is_what_the_migrations_installed():
    installed = _migration("0002_audit_guards")
    # 0008 reinstalls them (SQLite drops triggers when it rebuilds the table) with 0002's frozen copy.
    assert _migration("0008_audit_personal_data_split")._guards is installed
    assert db_guards.install_statements("postgresql") == installed.PG_INSTALL
    assert db_guards.install_statements("sqlite") == installed.SQLITE_INSTALL
    assert db_guards.uninstall_statements("postgresql") == installed.PG_UNINSTALL
    assert db_guards.uninstall_statements("sqlite") == installed.SQLITE_UNINSTALL


def test_no_migration_imports_live_code_of_the_portal_beyond_its_models():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    apps = {
        "accounts",
        "consent",
        "labels",
        "tracks",
        "notifications",
        "downstream",
        "public",
        "platformkit",
        "creatorportal",
    }
    offenders = []
    for path in sorted(root.glob("*/migrations/*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            # Django's serializer writes references to models modules (managers, db_default expressions).
            offenders += [
                f"{path.relative_to(root)}: {n}" for n in names if n.split(".")[0] in apps and not n.endswith(".models")
            ]
    assert not offenders, offenders
