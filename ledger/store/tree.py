"""Stored Merkle tree nodes: only perfect subtrees, written once.

Every proof and every historical root is assembled from O(log n) stored
nodes fetched in one indexed query (``ledger.core.merkle`` plans which), so
proof cost does not grow with the ledger beyond a B-tree lookup.

A node (level, index) is stored under one integer, ``level << 56 | index``:
indexes stay below 2^53 (seq is a JSON integer) and levels below 64, and a
single key turns a proof's node set into one ``IN`` list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy.engine import Connection

from ledger.core.merkle import NodeId
from ledger.store.database import raw_execute, raw_execute_many
from ledger.store.tables import tree_nodes

__all__ = ["insert_nodes", "load_nodes", "node_id", "node_key"]

_LEVEL_SHIFT = 56
_INDEX_MASK = (1 << _LEVEL_SHIFT) - 1


_INSERT_NODE = "INSERT INTO tree_nodes (ledger_id, node_key, hash) VALUES (?, ?, ?)"


def node_key(node: NodeId) -> int:
    level, index = node
    return level << _LEVEL_SHIFT | index


def node_id(key: int) -> NodeId:
    return key >> _LEVEL_SHIFT, key & _INDEX_MASK


def load_nodes(conn: Connection, ledger_id: int, node_ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
    """The stored hashes of ``node_ids`` (absent ones are simply missing)."""
    keys = sorted({node_key(node) for node in node_ids})
    if not keys:
        return {}
    rows = raw_execute(
        conn,
        "SELECT node_key, hash FROM tree_nodes WHERE ledger_id = ?"
        f" AND node_key IN ({', '.join('?' for _ in keys)})",
        [ledger_id, *keys],
    )
    return {node_id(int(key)): bytes(digest) for key, digest in rows}


def insert_nodes(conn: Connection, ledger_id: int, nodes: Mapping[NodeId, bytes]) -> None:
    raw_execute_many(
        conn,
        _INSERT_NODE,
        [(ledger_id, node_key(node), digest) for node, digest in nodes.items()],
        table=tree_nodes,
    )
