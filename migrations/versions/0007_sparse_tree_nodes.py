"""Tree nodes below level 4 are no longer stored.

A node of level 0-3 covers at most 16 leaves, so any proof that needs one
hashes it again from those records (``ledger.store.tree``): a range read of
at most 16 rows. Storing them cost nearly two rows per appended record (the
leaf, and its half of the nodes above it), as much database work per
append as the record itself. The upgrade deletes the ones already stored;
the audit counts only the levels kept. The downgrade hashes them back from
the records.

``tree_nodes`` refuses DELETE (migration 0002): the upgrade lifts that guard
for its one statement and puts it back.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

STORED_LEVEL = 4
_LEVEL_SHIFT = 56
_FIRST_STORED_KEY = STORED_LEVEL << _LEVEL_SHIFT
_FORBID_DELETE = (
    "CREATE TRIGGER tree_nodes_no_delete BEFORE DELETE ON tree_nodes "
    "BEGIN SELECT RAISE(ABORT, 'ledger: DELETE on tree_nodes is forbidden: "
    "stored records are append-only'); END"
)


def upgrade() -> None:
    delete = sa.text("DELETE FROM tree_nodes WHERE node_key < :first")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE tree_nodes DISABLE TRIGGER tree_nodes_append_only")
        op.get_bind().execute(delete, {"first": _FIRST_STORED_KEY})
        op.execute("ALTER TABLE tree_nodes ENABLE TRIGGER tree_nodes_append_only")
    else:
        op.execute("DROP TRIGGER tree_nodes_no_delete")
        op.get_bind().execute(delete, {"first": _FIRST_STORED_KEY})
        op.execute(_FORBID_DELETE)


def downgrade() -> None:
    bind = op.get_bind()
    insert = sa.text("INSERT INTO tree_nodes (ledger_id, node_key, hash) VALUES (:l, :k, :h)")
    for (ledger_id,) in bind.execute(sa.text("SELECT id FROM ledgers")).all():
        after = 0
        # Leaf hashes of the current block of 16 leaves.
        block: list[bytes] = []
        while True:
            rows = bind.execute(
                sa.text(
                    "SELECT seq, canonical FROM records WHERE ledger_id = :l AND seq > :a"
                    " ORDER BY seq LIMIT 2000"
                ),
                {"l": ledger_id, "a": after},
            ).all()
            nodes = []
            for seq, canonical in rows:
                index = int(seq) - 1
                leaf = hashlib.sha256(b"\x00" + bytes(canonical)).digest()
                block.append(leaf)
                # The perfect nodes this leaf completes, as the append stored them.
                nodes.append({"l": ledger_id, "k": index, "h": leaf})
                for level in range(1, STORED_LEVEL):
                    if (index + 1) % (1 << level):
                        break
                    key = level << _LEVEL_SHIFT | index >> level
                    nodes.append({"l": ledger_id, "k": key, "h": _subtree(block[-(1 << level) :])})
                if len(block) == 1 << STORED_LEVEL:
                    block = []
            if nodes:
                bind.execute(insert, nodes)
            if len(rows) < 2000:
                break
            after = int(rows[-1][0])


def _subtree(leaves: list[bytes]) -> bytes:
    """RFC 9162 hash of a perfect subtree from its leaf hashes."""
    while len(leaves) > 1:
        leaves = [
            hashlib.sha256(b"\x01" + leaves[i] + leaves[i + 1]).digest()
            for i in range(0, len(leaves), 2)
        ]
    return leaves[0]
