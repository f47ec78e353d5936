"""Test support: lifting the audit-log guards around a test-database flush.

pytest-django empties the database after every transactional test with
TRUNCATE (PostgreSQL) or DELETE (SQLite), which the append-only triggers
refuse by design. The fixture below lifts the guards only for that flush and
puts them back before the next test starts, so every test sees them in force.
The flush also empties the purposes and policy versions that data migrations
seeded; the fixture restores them with those same migrations' code.

Register it for the whole suite from the root conftest.py with::

    pytest_plugins = ["consent.testing"]

Nothing in the production code path imports this module.
"""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps
from django.db import connections

from consent import db_guards

_lifted: set[str] = set()


def _run(connection, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def disable_audit_guards(connection) -> None:
    """Lift the triggers (test databases only)."""
    if connection.vendor == "postgresql":
        _run(connection, [f"ALTER TABLE {db_guards.TABLE} DISABLE TRIGGER USER;"])
    else:
        _run(connection, db_guards.uninstall_statements(connection.vendor))
    _lifted.add(connection.alias)


def enable_audit_guards(connection) -> None:
    """Put the triggers back exactly as the migration installed them."""
    if connection.vendor == "postgresql":
        _run(connection, [f"ALTER TABLE {db_guards.TABLE} ENABLE TRIGGER USER;"])
    else:
        _run(connection, db_guards.install_statements(connection.vendor))
    # Inside a test's wrapping transaction the DDL is rolled back with the
    # test, so the guards still count as lifted for the next one.
    if not connection.in_atomic_block:
        _lifted.discard(connection.alias)


def restore_reference_data() -> None:
    """Re-run the data migrations' code (idempotent) against the current models."""
    importlib.import_module("consent.migrations.0003_seed_purposes_and_policy").seed(django_apps, None)
    importlib.import_module("consent.migrations.0007_third_party_ai_training").add_purpose_and_announce(
        django_apps, None
    )


def _is_transactional(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    if marker is not None and (marker.kwargs.get("transaction") or (len(marker.args) > 0 and marker.args[0])):
        return True
    return bool({"transactional_db", "live_server", "django_db_serialized_rollback"} & set(request.fixturenames))


@pytest.fixture(autouse=True)
def _audit_guards_around_flush(request, django_db_blocker):
    """Guards on for every test; lifted only for the flush after a transactional one."""
    if _lifted:
        with django_db_blocker.unblock():
            restore_reference_data()
            for alias in list(_lifted):
                enable_audit_guards(connections[alias])
    if not _is_transactional(request):
        yield
        return
    # Depending on the database fixture here makes our teardown run before its
    # flush, which is the moment the guards must be lifted.
    request.getfixturevalue("_django_db_helper")
    yield
    with django_db_blocker.unblock():
        disable_audit_guards(connections["default"])
