"""The change feed's order: positions, cursors and the commit horizon.

Every audit event has a position (xid_horizon, id) (see
consent.models.TransactionHorizon). A reader only hands out events whose
horizon is at or below the oldest transaction still running (in its snapshot):
those come from transactions that have finished, and every transaction still
running (or yet to start) can only add events above that bound. So a cursor, once handed out, never has a change
committed behind it, however writers interleave their commits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import F, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThanOrEqual

from consent.models import AuditEvent

CURSOR_PATTERN = r"^[0-9]{1,19}\.[0-9]{1,19}$"
_CURSOR = re.compile(CURSOR_PATTERN)
_MAX_BIGINT = 2**63 - 1


class BadCursor(ValueError):
    pass


@dataclass(frozen=True, order=True)
class Position:
    horizon: int
    event_id: int

    @classmethod
    def parse(cls, cursor: str) -> Position:
        if not _CURSOR.match(cursor or ""):
            raise BadCursor("A cursor is two whole numbers joined by a dot, as the feed hands them out.")
        horizon, _, event_id = cursor.partition(".")
        position = cls(int(horizon), int(event_id))
        if position.horizon > _MAX_BIGINT or position.event_id > _MAX_BIGINT:
            raise BadCursor("This cursor is beyond any position the feed can hand out.")
        return position

    def __str__(self) -> str:
        return f"{self.horizon}.{self.event_id}"


START = Position(0, 0)

# The horizon on PostgreSQL: the oldest transaction still running at this
# statement's snapshot, among those that may belong to this database (a
# transaction known to run in another database cannot write our events; one
# that finished since the snapshot, or whose database we cannot see, counts).
# With none, the snapshot's xmax. Every event at or below it is committed and
# final; anything still to commit lands above it.
_PG_HORIZON = """(
    SELECT LEAST(
        pg_snapshot_xmax(snap.s)::text::bigint,
        COALESCE(
            (SELECT min(x::text::bigint) FROM pg_snapshot_xip(snap.s) AS x
             WHERE x::xid NOT IN (
                 SELECT backend_xid FROM pg_stat_activity
                 WHERE backend_xid IS NOT NULL AND datname <> current_database()
             )),
            pg_snapshot_xmax(snap.s)::text::bigint
        )
    )
    FROM (SELECT pg_current_snapshot() AS s) AS snap
)"""


def settled(events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
    """Only events no still-running transaction can be ordered before."""
    if connection.vendor == "postgresql":
        return events.filter(xid_horizon__lte=RawSQL(_PG_HORIZON, []))  # noqa: S611 -- constant SQL, no input
    # SQLite runs one writer at a time: whatever is visible is final, in id order.
    return events


def _key() -> Tuple:
    return Tuple(F("xid_horizon"), F("id"))


# Row comparisons, (xid_horizon, id) > (h, e): one range of the (xid_horizon, id) index.
def after(events: QuerySet[AuditEvent], position: Position) -> QuerySet[AuditEvent]:
    return events.filter(TupleGreaterThan(_key(), (position.horizon, position.event_id)))


def up_to(events: QuerySet[AuditEvent], position: Position) -> QuerySet[AuditEvent]:
    return events.filter(TupleLessThanOrEqual(_key(), (position.horizon, position.event_id)))


def in_order(events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
    return events.order_by("xid_horizon", "id")


def current_horizon() -> int | None:
    """The bound a reader would apply now (None: no bound, SQLite)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {_PG_HORIZON}")
        return int(cursor.fetchone()[0])
