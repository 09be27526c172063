"""Every migration applies to a database that already holds data, not just to an empty one."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from ledger.store.database import Database, alembic_config

CANONICAL = b'{"seq":1}'


def test_a_populated_revision_0003_database_upgrades_to_head(database_url: str) -> None:
    database = Database(url=database_url)
    try:
        database.migrate("0003")
        with database.write() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO ledgers (name, created_at, head_seq, head_hash, last_recorded_at)"
                    " VALUES ('old', '2025-01-01T00:00:00.000000Z', 1, :h, '')"
                ),
                {"h": "0" * 64},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO records (ledger_id, seq, event_id, type, party, topic,"
                    " occurred_at, recorded_at, record_hash, canonical) VALUES (1, 1,"
                    " '00000000-0000-4000-8000-000000000000', 'position.stated', 'US', 'signing',"
                    " '2025-02-01T00:00:00Z', '2025-02-01T00:00:00.000000Z', :h, :c)"
                ),
                {"h": "0" * 64, "c": CANONICAL},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO position_versions (ledger_id, target_seq, known_from, party,"
                    " topic, claimant, occurred_at, cell) VALUES (1, 1, 1, 'US', 'signing', '',"
                    " '2025-02-01T00:00:00Z', :cell)"
                ),
                {"cell": '{"stance":"demand","terms":null}'},
            )
        database.migrate("head")
        with database.read() as conn:
            assert conn.execute(sa.text("SELECT public_read FROM ledgers")).scalar_one()
            marks = conn.execute(sa.text("SELECT known_from, occurred_at FROM position_marks"))
            assert [tuple(m) for m in marks] == [(1, "2025-02-01T00:00:00Z")]
            cell = conn.execute(sa.text("SELECT cell FROM position_versions")).scalar_one()
            assert "demand" in cell
    finally:
        database.dispose()


def _ledger_references(database: Database) -> dict[str, bool]:
    with database.read() as conn:
        inspector = sa.inspect(conn)
        return {
            table: any(
                fk["referred_table"] == "ledgers" for fk in inspector.get_foreign_keys(table)
            )
            for table in ("records", "tree_nodes", "position_versions", "checkpoints")
        }


def test_rows_every_append_writes_skip_postgresqls_per_row_reference_check(
    database_url: str,
) -> None:
    database = Database(url=database_url)
    try:
        database.migrate("head")
        checked = _ledger_references(database)
        if database.is_sqlite:  # its check is cheap, and dropping one copies the table
            assert all(checked.values())
        else:
            assert checked == {
                "records": False,
                "tree_nodes": False,
                "position_versions": False,
                "checkpoints": True,
            }
            with database.write() as conn:
                command.downgrade(alembic_config(conn), "0005")
            assert all(_ledger_references(database).values())
            database.migrate("head")
            assert not _ledger_references(database)["records"]
    finally:
        database.dispose()
