# ruff: noqa: S608, E501 -- the SQL names only the tables below; its long lines are frozen in migration 0012.
"""The triggers that keep consent_trackconsentsummary and consent_ownergrantcount equal to the consent table.

Triggers rather than calls in each writer: the summary then follows every
write to consent_consent and tracks_track in that write's own transaction,
whoever makes it (the services, the set-based bulk writer, policy lapses,
track deletion, an admin action, a migration), and a writer cannot forget it.
They are statement-level with transition tables, so a bulk chunk's one
INSERT or UPDATE of 20,000 consent rows costs one more set-based statement
inside the trigger, not one per row.

One module holds the SQL so that the migration that installs it and the
tests cannot drift apart. PostgreSQL only: elsewhere the catalogue reads the
consent table directly (consent.summary.available()).
"""

from __future__ import annotations

SUMMARY = "consent_trackconsentsummary"
COUNTS = "consent_ownergrantcount"

# Recompute the masks of some tracks from their consent rows; rows whose masks do not change are not written.
_REFRESH = f"""
CREATE OR REPLACE FUNCTION {SUMMARY}_refresh(touched bigint[]) RETURNS void LANGUAGE sql AS $$
    UPDATE {SUMMARY} s SET granted = x.granted, withdrawn = x.withdrawn, lapsed = x.lapsed
    FROM (
        SELECT t.track_id,
            coalesce(bit_or(1::bigint << p.mask_bit) FILTER (WHERE c.granted), 0) AS granted,
            coalesce(bit_or(1::bigint << p.mask_bit)
                FILTER (WHERE NOT c.granted AND c.changed_by_kind <> 'system'), 0) AS withdrawn,
            coalesce(bit_or(1::bigint << p.mask_bit)
                FILTER (WHERE NOT c.granted AND c.changed_by_kind = 'system'), 0) AS lapsed
        FROM unnest(touched) AS t (track_id)
        LEFT JOIN (consent_consent c JOIN consent_purpose p ON p.id = c.purpose_id) ON c.track_id = t.track_id
        GROUP BY t.track_id
    ) x
    WHERE s.track_id = x.track_id
      AND (s.granted, s.withdrawn, s.lapsed) IS DISTINCT FROM (x.granted, x.withdrawn, x.lapsed);
$$;
"""

# A new purpose takes the lowest bit no purpose holds (a bigint mask has 63 usable bits).
_PURPOSE_BIT = """
CREATE OR REPLACE FUNCTION consent_purpose_mask_bit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.mask_bit IS NULL THEN
        LOCK TABLE consent_purpose IN SHARE ROW EXCLUSIVE MODE;
        SELECT min(b) INTO NEW.mask_bit FROM generate_series(0, 62) AS b
        WHERE b NOT IN (SELECT mask_bit FROM consent_purpose WHERE mask_bit IS NOT NULL);
        IF NEW.mask_bit IS NULL THEN
            RAISE EXCEPTION 'no free bit for another purpose: the catalogue summary holds 63'
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
"""

# Migration 0012's function: every write recomputed its tracks' masks from all their consent rows.
FROM_CONSENT_RECOMPUTED = f"""
CREATE OR REPLACE FUNCTION {SUMMARY}_from_consent() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE touched bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT track_id) INTO touched FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT track_id) INTO touched FROM old_rows;
    ELSE
        SELECT array_agg(track_id) INTO touched FROM (
            SELECT n.track_id FROM new_rows n
            UNION
            SELECT o.track_id FROM old_rows o
        ) AS both_sides;
    END IF;
    IF touched IS NOT NULL THEN
        PERFORM {SUMMARY}_refresh(touched);
    END IF;
    RETURN NULL;
END;
$$;
"""

# Migration 0017's: the masks moved by what the statement itself changed, read from its transition tables
# alone (a consent row puts its purpose's bit in exactly one mask: granted, withdrawn by a person, or lapsed),
# without reading the tracks' other consent rows again. The bits of the old rows are cleared, then the new
# rows' set, so a row that moved to another track or purpose is right too. verify_audit_log recomputes the
# masks from the consent table and reports any difference.
_CELL_BITS = """
        SELECT {alias}.track_id,
            bit_or(1::bigint << p.mask_bit) AS cells,
            coalesce(bit_or(1::bigint << p.mask_bit) FILTER (WHERE {alias}.granted), 0) AS granted,
            coalesce(bit_or(1::bigint << p.mask_bit)
                FILTER (WHERE NOT {alias}.granted AND {alias}.changed_by_kind <> 'system'), 0) AS withdrawn,
            coalesce(bit_or(1::bigint << p.mask_bit)
                FILTER (WHERE NOT {alias}.granted AND {alias}.changed_by_kind = 'system'), 0) AS lapsed
        FROM {rows} {alias} JOIN consent_purpose p ON p.id = {alias}.purpose_id
        GROUP BY {alias}.track_id"""
_NEW_BITS = _CELL_BITS.format(alias="n", rows="new_rows")
_OLD_BITS = _CELL_BITS.format(alias="o", rows="old_rows")
FROM_CONSENT = f"""
CREATE OR REPLACE FUNCTION {SUMMARY}_from_consent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE {SUMMARY} s
        SET granted = (s.granted & ~x.cells) | x.granted, withdrawn = (s.withdrawn & ~x.cells) | x.withdrawn,
            lapsed = (s.lapsed & ~x.cells) | x.lapsed
        FROM ({_NEW_BITS}) AS x
        WHERE s.track_id = x.track_id
          AND (s.granted, s.withdrawn, s.lapsed) IS DISTINCT FROM (
              (s.granted & ~x.cells) | x.granted, (s.withdrawn & ~x.cells) | x.withdrawn,
              (s.lapsed & ~x.cells) | x.lapsed);
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE {SUMMARY} s
        SET granted = s.granted & ~x.cells, withdrawn = s.withdrawn & ~x.cells, lapsed = s.lapsed & ~x.cells
        FROM ({_OLD_BITS}) AS x
        WHERE s.track_id = x.track_id AND (s.granted | s.withdrawn | s.lapsed) & x.cells <> 0;
    ELSE
        UPDATE {SUMMARY} s
        SET granted = (s.granted & ~x.cleared) | x.granted, withdrawn = (s.withdrawn & ~x.cleared) | x.withdrawn,
            lapsed = (s.lapsed & ~x.cleared) | x.lapsed
        FROM (
            SELECT coalesce(n.track_id, o.track_id) AS track_id,
                coalesce(o.cells, 0) | coalesce(n.cells, 0) AS cleared,
                coalesce(n.granted, 0) AS granted, coalesce(n.withdrawn, 0) AS withdrawn,
                coalesce(n.lapsed, 0) AS lapsed
            FROM ({_NEW_BITS}) AS n FULL JOIN ({_OLD_BITS}) AS o ON o.track_id = n.track_id
        ) AS x
        WHERE s.track_id = x.track_id
          AND (s.granted, s.withdrawn, s.lapsed) IS DISTINCT FROM (
              (s.granted & ~x.cleared) | x.granted, (s.withdrawn & ~x.cleared) | x.withdrawn,
              (s.lapsed & ~x.cleared) | x.lapsed);
    END IF;
    RETURN NULL;
END;
$$;
"""

# A new track has no consent yet; a changed title or date is copied; a deleted track's row goes.
_FROM_TRACKS = f"""
CREATE OR REPLACE FUNCTION {SUMMARY}_from_tracks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO {SUMMARY} (track_id, owner_id, title, created_at, granted, withdrawn, lapsed)
        SELECT n.id, n.owner_id, n.title, n.created_at, 0, 0, 0 FROM new_rows n;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM {SUMMARY} s USING old_rows o WHERE s.track_id = o.id;
    ELSE
        UPDATE {SUMMARY} s SET owner_id = n.owner_id, title = n.title, created_at = n.created_at
        FROM new_rows n
        WHERE s.track_id = n.id AND (s.owner_id, s.title, s.created_at) IS DISTINCT FROM (n.owner_id, n.title, n.created_at);
    END IF;
    RETURN NULL;
END;
$$;
"""

# Tracks without any grant are not counted: the catalogue counts them from the summary when it must.
# A summary row is inserted with no grant (a new track has no consent), so only updates and deletions count.
_COUNT_DELTAS = {
    "UPDATE": """
        SELECT n.owner_id, n.granted, 1 AS n FROM new_rows n WHERE n.granted <> 0
        UNION ALL
        SELECT o.owner_id, o.granted, -1 FROM old_rows o WHERE o.granted <> 0""",
    "DELETE": "SELECT o.owner_id, o.granted, -1 AS n FROM old_rows o WHERE o.granted <> 0",
}


def _counts_function(op: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION {COUNTS}_on_{op.lower()}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {COUNTS} (owner_id, granted, tracks)
    SELECT d.owner_id, d.granted, sum(d.n) FROM ({_COUNT_DELTAS[op]}) AS d
    GROUP BY d.owner_id, d.granted
    HAVING sum(d.n) <> 0
    ON CONFLICT (owner_id, granted) DO UPDATE SET tracks = {COUNTS}.tracks + EXCLUDED.tracks;
    RETURN NULL;
END;
$$;
"""


def _transition(op: str) -> str:
    return {
        "INSERT": "REFERENCING NEW TABLE AS new_rows",
        "DELETE": "REFERENCING OLD TABLE AS old_rows",
        "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    }[op]


def _trigger(table: str, name: str, op: str, function: str) -> list[str]:
    # Transition tables allow one event per trigger: one trigger per operation.
    return [
        f"DROP TRIGGER IF EXISTS {name} ON {table};",
        f"CREATE TRIGGER {name} AFTER {op} ON {table} {_transition(op)} FOR EACH STATEMENT EXECUTE FUNCTION {function}();",
    ]


OPS = ("INSERT", "UPDATE", "DELETE")
TRIGGERS = [
    *((("consent_consent", f"consent_consent_summary_{op.lower()}", op, f"{SUMMARY}_from_consent")) for op in OPS),
    *((("tracks_track", f"tracks_track_summary_{op.lower()}", op, f"{SUMMARY}_from_tracks")) for op in OPS),
    *(((SUMMARY, f"{SUMMARY}_counts_{op.lower()}", op, f"{COUNTS}_on_{op.lower()}")) for op in ("UPDATE", "DELETE")),
]

# Fill both tables from what is there (the migration; also what a repair would run).
BACKFILL = [
    f"DELETE FROM {COUNTS};",
    f"DELETE FROM {SUMMARY};",
    f"""INSERT INTO {SUMMARY} (track_id, owner_id, title, created_at, granted, withdrawn, lapsed)
        SELECT t.id, t.owner_id, t.title, t.created_at, 0, 0, 0 FROM tracks_track t;""",
    f"SELECT {SUMMARY}_refresh(array_agg(track_id)) FROM {SUMMARY};",
]

# What a database migrated to the latest consent migration has (0012, then 0017's function).
PG_INSTALL = [
    f"ALTER TABLE {SUMMARY} SET (fillfactor = 60);",
    _PURPOSE_BIT,
    "DROP TRIGGER IF EXISTS consent_purpose_mask_bit ON consent_purpose;",
    """CREATE TRIGGER consent_purpose_mask_bit BEFORE INSERT ON consent_purpose
        FOR EACH ROW EXECUTE FUNCTION consent_purpose_mask_bit();""",
    """UPDATE consent_purpose SET mask_bit = n.bit FROM (
        SELECT id, row_number() OVER (ORDER BY id) - 1 AS bit FROM consent_purpose) n
        WHERE consent_purpose.id = n.id;""",
    _REFRESH,
    FROM_CONSENT,
    _FROM_TRACKS,
    _counts_function("UPDATE"),
    _counts_function("DELETE"),
    *(statement for table, name, op, function in TRIGGERS for statement in _trigger(table, name, op, function)),
    *BACKFILL,
]

PG_UNINSTALL = [
    "DROP TRIGGER IF EXISTS consent_purpose_mask_bit ON consent_purpose;",
    "DROP FUNCTION IF EXISTS consent_purpose_mask_bit();",
    *(f"DROP TRIGGER IF EXISTS {name} ON {table};" for table, name, _op, _function in TRIGGERS),
    f"DROP FUNCTION IF EXISTS {COUNTS}_on_update();",
    f"DROP FUNCTION IF EXISTS {COUNTS}_on_delete();",
    f"DROP FUNCTION IF EXISTS {SUMMARY}_from_tracks();",
    f"DROP FUNCTION IF EXISTS {SUMMARY}_from_consent();",
    f"DROP FUNCTION IF EXISTS {SUMMARY}_refresh(bigint[]);",
]

# Migration 0012 installed the function that recomputed; 0017 replaced it with FROM_CONSENT.
PG_INSTALL_0012 = [FROM_CONSENT_RECOMPUTED if statement is FROM_CONSENT else statement for statement in PG_INSTALL]
