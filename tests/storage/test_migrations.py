"""Every migration applies to a database that already holds data, not just to an empty one."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command

from ledger.core.hashing import leaf_hash
from ledger.core.merkle import root_from_leaves
from ledger.integrity import check_ledger
from ledger.runtime import Runtime
from ledger.store.database import Database, alembic_config
from ledger.store.tree import is_stored, node_id, node_key, stored_node_count
from tests.conftest import backend_database, migrate
from tests.storage import sample_events

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
        if (
            database.url.get_backend_name() == "sqlite"
        ):  # its check is cheap, and dropping one copies the table
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


def _nodes(database: Database) -> dict[int, bytes]:
    with database.read() as conn:
        rows = conn.execute(sa.text("SELECT node_key, hash FROM tree_nodes")).all()
    return {int(key): bytes(digest) for key, digest in rows}


def _every_perfect_node(lines: list[bytes]) -> dict[int, bytes]:
    """What revision 0006 stored: every perfect subtree of the tree, level 0 up."""
    leaves = [leaf_hash(line) for line in lines]
    nodes = {}
    for level in range(len(leaves).bit_length()):
        width = 1 << level
        for index in range(len(leaves) >> level):
            nodes[node_key((level, index))] = root_from_leaves(
                leaves[index * width : (index + 1) * width]
            )
    return nodes


def test_tree_nodes_below_level_4_are_dropped_and_the_downgrade_hashes_them_back(
    runtime: Runtime,
) -> None:
    lines = sample_events.fill(runtime.service, "sparse", [1, 16, 20, 13])
    every = _every_perfect_node(lines)
    assert _nodes(runtime.database) == {k: h for k, h in every.items() if is_stored(node_id(k))}
    # Three nodes over 16 leaves, one over 32.
    assert len(_nodes(runtime.database)) == stored_node_count(len(lines)) == 4

    with runtime.database.write() as conn:
        command.downgrade(alembic_config(conn), "0006")
    assert _nodes(runtime.database) == every

    runtime.database.migrate("head")
    assert _nodes(runtime.database) == {k: h for k, h in every.items() if is_stored(node_id(k))}
    assert check_ledger(runtime, "sparse").valid
    # The recorder's cached frontier and the reads agree with what was migrated.
    runtime.service.recorder.append("sparse", sample_events.drafts(3, start=50), actor="t")
    assert check_ledger(runtime, "sparse").valid
    lines = list(runtime.service.iter_records("sparse"))
    proof = runtime.service.inclusion("sparse", seq=7, tree_size=None)
    assert proof.root == root_from_leaves([leaf_hash(line) for line in lines])


def test_stored_idempotency_keys_still_replay_for_the_principal_that_sent_them(
    runtime: Runtime,
) -> None:
    recorder = runtime.service.recorder
    recorder.create_ledger("keys")
    first = recorder.append(
        "keys", sample_events.drafts(2), actor="desk-a", idempotency_key="k", request_sha256="ab"
    )
    # Back to keys without a principal, and up again: the key's principal is derived.
    with runtime.database.write() as conn:
        command.downgrade(alembic_config(conn), "0007")
        assert "principal" not in {
            c["name"] for c in sa.inspect(conn).get_columns("idempotency_keys")
        }
    runtime.database.migrate("head")
    again = recorder.append(
        "keys", sample_events.drafts(2), actor="desk-a", idempotency_key="k", request_sha256="ab"
    )
    assert again.replayed
    assert again.sealed == first.sealed
    other = recorder.append(
        "keys",
        sample_events.drafts(2, start=10),
        actor="desk-b",
        idempotency_key="k",
        request_sha256="ab",
    )
    assert not other.replayed
    assert [s[0] for s in other.sealed] == [3, 4]


_SQLITE_SCHEMA = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
# Every object a migration makes, each as its definition, the schema's name left out.
_POSTGRES_SCHEMA = """
SELECT 'column', table_name || '.' || column_name || ' ' || data_type || ' '
  || is_nullable || ' ' || coalesce(column_default, '')
  FROM information_schema.columns WHERE table_schema = current_schema()
UNION ALL SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = current_schema()
UNION ALL SELECT 'constraint', conrelid::regclass::text || ' ' || conname || ' '
  || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = current_schema()::regnamespace
UNION ALL SELECT 'trigger', pg_get_triggerdef(t.oid) FROM pg_trigger t
  JOIN pg_class c ON c.oid = t.tgrelid
  WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal
UNION ALL SELECT 'function', proname || ' ' || prosrc FROM pg_proc
  WHERE pronamespace = current_schema()::regnamespace
UNION ALL SELECT 'revision', version_num FROM alembic_version
ORDER BY 1, 2
"""


def _schema_of(url: str) -> list[tuple[str, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                return [tuple(map(str, row)) for row in conn.execute(sa.text(_SQLITE_SCHEMA))]
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
            rows = conn.execute(sa.text(_POSTGRES_SCHEMA)).all()
    finally:
        engine.dispose()
    named = [(kind, str(text).replace(f"{schema}.", "")) for kind, text in rows]
    return sorted(
        (kind, _without_casts(text) if kind == "constraint" else text) for kind, text in named
    )


def _without_casts(definition: str) -> str:
    """A CHECK as PostgreSQL deparses it, less the casts and parentheses it words
    differently after a dump and reload (``x IN ('a', 'b')`` on a varchar)."""
    for noise in ("::character varying", "::text[]", "::text", "(", ")", " "):
        definition = definition.replace(noise, "")
    return definition


def test_the_tests_migrated_copy_is_the_migrated_database(
    migrated_url: str, tmp_path: Path
) -> None:
    """``tests/conftest.py``'s ``migrated_url`` (a copy of a template) holds
    exactly what running the migrations makes."""
    backend = sa.engine.make_url(migrated_url).get_backend_name()
    reference = tmp_path / "reference"  # beside the copy, which is tmp_path's ledger.db
    reference.mkdir()
    with backend_database(backend, reference) as url:
        migrate(url)
        expected = _schema_of(url)
    assert len(expected) > 20
    assert _schema_of(migrated_url) == expected
