"""Stored Merkle tree nodes: only perfect subtrees of 16 leaves or more, written once.

Every proof and every historical root is assembled from O(log n) perfect
nodes (``ledger.core.merkle`` plans which). Those of level 4 and up come
from ``tree_nodes`` in one indexed query; those below cover at most 16
leaves and are hashed again from the records that are their leaves (one
range read of at most 16 records per block of 16 involved). Storing them
would cost nearly two rows per record (the leaf and its half of every
level above), which was as much of an append's database work as the record
itself; the levels from 4 up cost one row per 8 records.

A node (level, index) is stored under one integer, ``level << 56 | index``:
indexes stay below 2^53 (seq is a JSON integer) and levels below 64, and a
single key turns a proof's node set into one ``IN`` list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from ledger.core.hashing import leaf_hash
from ledger.core.merkle import NodeId, root_from_leaves
from ledger.store.database import raw_execute, raw_execute_many
from ledger.store.tables import tree_nodes

__all__ = [
    "STORED_LEVEL",
    "insert_nodes",
    "is_stored",
    "load_nodes",
    "load_nodes_with",
    "node_id",
    "node_key",
    "stored_node_count",
]

_LEVEL_SHIFT = 56
_INDEX_MASK = (1 << _LEVEL_SHIFT) - 1
# The lowest level stored: a node below it covers fewer than 16 leaves.
STORED_LEVEL = 4
_BLOCK = 1 << STORED_LEVEL

_INSERT_NODE = "INSERT INTO tree_nodes (ledger_id, node_key, hash) VALUES (?, ?, ?)"
_SELECT_LEAVES = (
    "SELECT seq, canonical FROM records WHERE ledger_id = ? AND seq BETWEEN ? AND ? ORDER BY seq"
)

# Runs one ``?``-placeholder SELECT and returns its rows.
Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


def node_key(node: NodeId) -> int:
    level, index = node
    return level << _LEVEL_SHIFT | index


def node_id(key: int) -> NodeId:
    return key >> _LEVEL_SHIFT, key & _INDEX_MASK


def is_stored(node: NodeId) -> bool:
    return node[0] >= STORED_LEVEL


def stored_node_count(size: int) -> int:
    """How many rows a tree of ``size`` leaves keeps: its perfect nodes from ``STORED_LEVEL`` up."""
    return sum(size >> level for level in range(STORED_LEVEL, size.bit_length()))


def load_nodes_with(
    query: Query, ledger_id: int, node_ids: Iterable[NodeId]
) -> dict[NodeId, bytes]:
    """The hashes of ``node_ids``: stored ones read, lower ones hashed from their
    records. A node whose subtree is not all there is simply missing."""
    wanted = set(node_ids)
    found: dict[NodeId, bytes] = {}
    keys = sorted(node_key(node) for node in wanted if is_stored(node))
    if keys:
        rows = query(
            "SELECT node_key, hash FROM tree_nodes WHERE ledger_id = ?"
            f" AND node_key IN ({', '.join('?' for _ in keys)})",
            [ledger_id, *keys],
        )
        found.update((node_id(int(key)), bytes(digest)) for key, digest in rows)
    low = [node for node in wanted if not is_stored(node)]
    if low:
        leaves = _leaf_hashes(
            query, ledger_id, {(index << level) // _BLOCK for level, index in low}
        )
        for level, index in low:
            span = range(index << level, (index + 1) << level)
            if all(leaf in leaves for leaf in span):
                found[(level, index)] = root_from_leaves([leaves[leaf] for leaf in span])
    return found


def _leaf_hashes(query: Query, ledger_id: int, blocks: Iterable[int]) -> dict[int, bytes]:
    """Leaf index -> leaf hash of every record in ``blocks`` (of 16 leaves each)."""
    leaves: dict[int, bytes] = {}
    for block in sorted(blocks):
        first_seq = block * _BLOCK + 1
        for seq, canonical in query(_SELECT_LEAVES, [ledger_id, first_seq, first_seq + _BLOCK - 1]):
            leaves[int(seq) - 1] = leaf_hash(bytes(canonical))
    return leaves


def load_nodes(conn: Connection, ledger_id: int, node_ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
    """``load_nodes_with`` inside a transaction."""
    return load_nodes_with(lambda sql, params: raw_execute(conn, sql, params), ledger_id, node_ids)


def insert_nodes(conn: Connection, ledger_id: int, nodes: Mapping[NodeId, bytes]) -> None:
    """Store the nodes of ``nodes`` from ``STORED_LEVEL`` up (the rest is not kept)."""
    raw_execute_many(
        conn,
        _INSERT_NODE,
        [(ledger_id, node_key(node), digest) for node, digest in nodes.items() if is_stored(node)],
        table=tree_nodes,
    )
