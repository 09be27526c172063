"""The guards of an insert-only projection table added after migration 0010.

Such a table refuses UPDATE and DELETE (and, on PostgreSQL, TRUNCATE) unless
the ledger's id is in ``projection_rebuilds``, as migration 0010's tables
do: only ``ledger projections rebuild`` rewrites it. The statement-level
DELETE check is 0010's function, shared by every projection.
"""

from __future__ import annotations

from alembic import op

__all__ = ["add_guards", "drop_guards"]

_REBUILDING = "EXISTS (SELECT 1 FROM projection_rebuilds WHERE ledger_id = OLD.ledger_id)"


def add_guards(table: str, message: str) -> None:
    """Guard ``table``; ``message`` says why an edit is refused and what to run instead."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
CREATE FUNCTION ledger_guard_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND {_REBUILDING} THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'ledger: % on % is forbidden: {message}',
    TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
"""
        )
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
    for operation in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table}"
            f" WHEN NOT {_REBUILDING} BEGIN SELECT RAISE(ABORT,"
            f" 'ledger: {operation} on {table} is forbidden: {message}'); END"
        )


def drop_guards(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_guard ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS ledger_guard_{table}()")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
