"""Test support: lift the usage ledger's append-only guards only for the flush after a transactional test.

Registered for the whole suite from the root conftest.py (``pytest_plugins``),
beside consent.testing, which does the same for the audit log.
"""

from __future__ import annotations

import pytest
from django.db import connections

from consent.testing import _is_transactional
from downstream import db_guards

_lifted: set[str] = set()


def _run(connection, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


@pytest.fixture(autouse=True)
def _usage_guards_around_flush(request, django_db_blocker):
    if _lifted:
        with django_db_blocker.unblock():
            for alias in list(_lifted):
                connection = connections[alias]
                if connection.vendor == "postgresql":
                    _run(connection, [f"ALTER TABLE {db_guards.TABLE} ENABLE TRIGGER USER;"])
                else:
                    _run(connection, db_guards.statements(connection.vendor, install=True))
                if not connection.in_atomic_block:
                    _lifted.discard(alias)
    if not _is_transactional(request):
        yield
        return
    request.getfixturevalue("_django_db_helper")
    yield
    with django_db_blocker.unblock():
        connection = connections["default"]
        if connection.vendor == "postgresql":
            _run(connection, [f"ALTER TABLE {db_guards.TABLE} DISABLE TRIGGER USER;"])
        else:
            _run(connection, db_guards.statements(connection.vendor, install=False))
        _lifted.add("default")
