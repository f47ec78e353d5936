# ruff: noqa: S608 -- the SQL names only the tables and columns listed below.
"""Foreign keys checked once per statement, for the columns a bulk write fills with one value.

A bulk change writes 20,000 consent rows and 20,000 audit events per chunk,
and each row names the same purpose, the same policy version and the same
actor. PostgreSQL checks a foreign key per row (at commit, for Django's
deferred constraints): one locking lookup of the same referenced row for
every inserted row, about a third of a bulk apply's database time. Here those
columns keep their guarantee with statement-level triggers instead:

* on the referencing table, after each INSERT or UPDATE statement, the
  distinct values the statement wrote are locked FOR KEY SHARE (as
  PostgreSQL's own check does, so a concurrent delete of them waits) and a
  value that names no row fails the statement with SQLSTATE 23503, which
  Django raises as IntegrityError;
* on the referenced table, a DELETE of a row that is still referenced, or a
  change of its key, fails the same way (Django's PROTECT and SET_NULL act
  before the database sees the delete, so the ORM never trips it).

The check runs at the end of the statement rather than at commit: every
writer names rows that exist before it starts (purposes, policy versions,
users). Read committed (Django's default) is assumed: each check sees what
was committed before it. Columns that differ per row (a consent row's track,
an event's personal parts) keep PostgreSQL's ordinary foreign keys.

One module holds the SQL so that the migration that installs it and its test
cannot drift apart. PostgreSQL only; on SQLite (the quick start) these
columns carry no constraint.
"""

from __future__ import annotations

from collections import defaultdict

# (referencing table, column, referenced table); the referenced column is always "id".
KEYS = [
    ("consent_consent", "purpose_id", "consent_purpose"),
    ("consent_consent", "policy_version_id", "consent_policyversion"),
    ("consent_consent", "changed_by_id", "accounts_user"),
    ("consent_auditevent", "purpose_id", "consent_purpose"),
    ("consent_auditevent", "policy_version_id", "consent_policyversion"),
]


def _by(position: int) -> dict[str, list[tuple[str, str, str]]]:
    grouped: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for key in KEYS:
        grouped[key[position]].append(key)
    return dict(grouped)


def _referencing_check(table: str, keys: list[tuple[str, str, str]]) -> str:
    checks = "".join(
        f"""
    SELECT count(DISTINCT n.{column}) INTO wanted FROM new_rows n;
    IF wanted > 0 THEN
        SELECT count(*) INTO found FROM (
            SELECT 1 FROM {referenced} r WHERE r.id IN (SELECT n.{column} FROM new_rows n) FOR KEY SHARE OF r
        ) AS locked;
        IF found < wanted THEN
            RAISE EXCEPTION 'foreign key violated: {table}.{column} names no row of {referenced}'
                USING ERRCODE = 'foreign_key_violation', TABLE = '{table}', COLUMN = '{column}';
        END IF;
    END IF;"""
        for _, column, referenced in keys
    )
    return f"""
CREATE OR REPLACE FUNCTION {table}_keys_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE wanted bigint; found bigint;
BEGIN{checks}
    RETURN NULL;
END;
$$;
"""


def _referenced_guard(referenced: str, keys: list[tuple[str, str, str]]) -> str:
    deleted = "".join(
        f"""
        IF EXISTS (SELECT 1 FROM {table} c WHERE c.{column} IN (SELECT o.id FROM old_rows o)) THEN
            RAISE EXCEPTION 'foreign key violated: deleted {referenced} row still referenced from {table}.{column}'
                USING ERRCODE = 'foreign_key_violation', TABLE = '{table}', COLUMN = '{column}';
        END IF;"""
        for table, column, _ in keys
    )
    rekeyed = "".join(
        f"""
        IF EXISTS (SELECT 1 FROM {table} c WHERE c.{column} = OLD.id) THEN
            RAISE EXCEPTION 'foreign key violated: re-keyed {referenced} row still referenced from {table}.{column}'
                USING ERRCODE = 'foreign_key_violation', TABLE = '{table}', COLUMN = '{column}';
        END IF;"""
        for table, column, _ in keys
    )
    return f"""
CREATE OR REPLACE FUNCTION {referenced}_keys_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN{deleted}
        RETURN NULL;
    END IF;{rekeyed}
    RETURN NEW;
END;
$$;
"""


def _install() -> list[str]:
    statements = []
    for table, keys in _by(0).items():
        statements.append(_referencing_check(table, keys))
        for event in ("insert", "update"):
            transition = "NEW TABLE AS new_rows"
            statements += [
                f"DROP TRIGGER IF EXISTS {table}_keys_{event} ON {table};",
                f"CREATE TRIGGER {table}_keys_{event} AFTER {event.upper()} ON {table} REFERENCING {transition} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_keys_check();",
            ]
    for referenced, keys in _by(2).items():
        statements += [
            _referenced_guard(referenced, keys),
            f"DROP TRIGGER IF EXISTS {referenced}_keys_delete ON {referenced};",
            f"CREATE TRIGGER {referenced}_keys_delete AFTER DELETE ON {referenced} REFERENCING OLD TABLE AS old_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {referenced}_keys_guard();",
            # Row-level with a WHEN clause: an ordinary update (a user's last login) never calls the function.
            f"DROP TRIGGER IF EXISTS {referenced}_keys_rekey ON {referenced};",
            f"CREATE TRIGGER {referenced}_keys_rekey BEFORE UPDATE OF id ON {referenced} FOR EACH ROW "
            f"WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION {referenced}_keys_guard();",
        ]
    return statements


def _uninstall() -> list[str]:
    statements = []
    for table in _by(0):
        statements += [
            f"DROP TRIGGER IF EXISTS {table}_keys_insert ON {table};",
            f"DROP TRIGGER IF EXISTS {table}_keys_update ON {table};",
            f"DROP FUNCTION IF EXISTS {table}_keys_check();",
        ]
    for referenced in _by(2):
        statements += [
            f"DROP TRIGGER IF EXISTS {referenced}_keys_delete ON {referenced};",
            f"DROP TRIGGER IF EXISTS {referenced}_keys_rekey ON {referenced};",
            f"DROP FUNCTION IF EXISTS {referenced}_keys_guard();",
        ]
    return statements


PG_INSTALL = _install()
PG_UNINSTALL = _uninstall()
