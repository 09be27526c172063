"""The positions projection refuses direct UPDATE and DELETE.

``/snapshot`` signs what these tables say, so an edited row would be served
as a correctly signed forgery. Like ``records`` (migrations 0001/0002), the
tables now refuse changes, except what the append path itself does:

- ``position_versions``: a version may be closed once (``known_to`` from
  NULL to a seq, every other column unchanged), as a correction or
  retraction does;
- ``position_marks``: a mark may only rise (``ON CONFLICT DO UPDATE`` of
  the append's running maximum), which keeps it an upper bound;
- ``position_cells`` and ``record_fixes``: never (cells are inserted with
  ``ON CONFLICT DO NOTHING``, fixes plainly).

The one exception is ``ledger projections rebuild``
(``ledger.store.positions.rebuild``): inside its write transaction it
inserts its ledger's id into ``projection_rebuilds``, rewrites that ledger's
rows, and deletes the id again before committing. The triggers let a
change through only while that row exists, and only for that ledger: no
other transaction ever sees the row (SQLite has one writer; PostgreSQL
shows no uncommitted row to others), so an ordinary connection never finds
the guard lifted unless it inserts into ``projection_rebuilds`` itself. On
PostgreSQL a deferred constraint trigger also refuses to commit while such
a row is left behind.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

GUARDED = ("position_versions", "position_cells", "position_marks", "record_fixes")
_MESSAGE = "the positions projection is derived from the records; run ledger projections rebuild"

_PG_REBUILDING = "EXISTS (SELECT 1 FROM projection_rebuilds WHERE ledger_id = OLD.ledger_id)"
_PG_FUNCTIONS = {
    "position_versions": """
IF TG_OP = 'UPDATE' THEN
  IF OLD.known_to IS NULL AND NEW.known_to IS NOT NULL
   AND (NEW.ledger_id, NEW.target_seq, NEW.known_from, NEW.party, NEW.topic, NEW.claimant,
        NEW.occurred_at, NEW.cell)
   IS NOT DISTINCT FROM (OLD.ledger_id, OLD.target_seq, OLD.known_from, OLD.party, OLD.topic,
        OLD.claimant, OLD.occurred_at, OLD.cell) THEN
    RETURN NEW;
  END IF;
END IF;""",
    "position_marks": """
IF TG_OP = 'UPDATE' THEN
  IF NEW.occurred_at >= OLD.occurred_at
   AND (NEW.ledger_id, NEW.known_from) = (OLD.ledger_id, OLD.known_from) THEN
    RETURN NEW;
  END IF;
END IF;""",
    "position_cells": "",
    "record_fixes": "",
}
_SQLITE_ALLOWED_UPDATE = {
    "position_versions": (
        "OLD.known_to IS NULL AND NEW.known_to IS NOT NULL AND NEW.ledger_id = OLD.ledger_id"
        " AND NEW.target_seq = OLD.target_seq AND NEW.known_from = OLD.known_from"
        " AND NEW.party = OLD.party AND NEW.topic = OLD.topic AND NEW.claimant = OLD.claimant"
        " AND NEW.occurred_at = OLD.occurred_at AND NEW.cell IS OLD.cell"
    ),
    "position_marks": (
        "NEW.occurred_at >= OLD.occurred_at AND NEW.ledger_id = OLD.ledger_id"
        " AND NEW.known_from = OLD.known_from"
    ),
    "position_cells": "0",
    "record_fixes": "0",
}
_SQLITE_REBUILDING = "EXISTS (SELECT 1 FROM projection_rebuilds WHERE ledger_id = OLD.ledger_id)"


def _pg_function(table: str) -> str:
    return f"""
CREATE FUNCTION ledger_guard_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    -- What appends do first: they should not pay for the query below.
    {_PG_FUNCTIONS[table]}
    IF {_PG_REBUILDING} THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION 'ledger: % on % is forbidden: {_MESSAGE}',
    TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
"""


# DELETE is checked once per statement, on the rows it removed: a rebuild
# deletes every row of its ledger, and a per-row lookup doubled its time on
# PostgreSQL. Raising in an AFTER trigger undoes the statement.
_PG_DELETE_GUARD = f"""
CREATE FUNCTION ledger_guard_projection_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM gone WHERE NOT EXISTS
      (SELECT 1 FROM projection_rebuilds r WHERE r.ledger_id = gone.ledger_id)) THEN
    RAISE EXCEPTION 'ledger: DELETE on % is forbidden: {_MESSAGE}',
      TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NULL;
END $$;
"""

_PG_LEFT_BEHIND = """
CREATE FUNCTION ledger_rebuild_left_behind() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM projection_rebuilds WHERE ledger_id = NEW.ledger_id) THEN
    RAISE EXCEPTION 'ledger: a projection rebuild must remove its projection_rebuilds row'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "projection_rebuilds",
        sa.Column("ledger_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("ledger_id", name="pk_projection_rebuilds"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_LEFT_BEHIND)
        op.execute(
            "CREATE CONSTRAINT TRIGGER projection_rebuilds_removed AFTER INSERT"
            " ON projection_rebuilds DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
            " EXECUTE FUNCTION ledger_rebuild_left_behind()"
        )
        op.execute(_PG_DELETE_GUARD)
        for table in GUARDED:
            op.execute(_pg_function(table))
            op.execute(
                f"CREATE TRIGGER {table}_guard BEFORE UPDATE ON {table}"
                f" FOR EACH ROW EXECUTE FUNCTION ledger_guard_{table}()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_delete AFTER DELETE ON {table}"
                " REFERENCING OLD TABLE AS gone FOR EACH STATEMENT"
                " EXECUTE FUNCTION ledger_guard_projection_delete()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION ledger_guard_{table}()"
            )
        return
    for table in GUARDED:
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}"
            f" WHEN NOT ({_SQLITE_ALLOWED_UPDATE[table]}) AND NOT {_SQLITE_REBUILDING}"
            f" BEGIN SELECT RAISE(ABORT, 'ledger: UPDATE on {table} is forbidden: {_MESSAGE}');"
            " END"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}"
            f" WHEN NOT {_SQLITE_REBUILDING}"
            f" BEGIN SELECT RAISE(ABORT, 'ledger: DELETE on {table} is forbidden: {_MESSAGE}');"
            " END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in GUARDED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_guard ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS ledger_guard_{table}()")
        op.execute("DROP FUNCTION IF EXISTS ledger_guard_projection_delete()")
        op.execute("DROP TRIGGER IF EXISTS projection_rebuilds_removed ON projection_rebuilds")
        op.execute("DROP FUNCTION IF EXISTS ledger_rebuild_left_behind()")
    else:
        for table in GUARDED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    op.drop_table("projection_rebuilds")
