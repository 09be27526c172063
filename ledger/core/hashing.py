"""Every hash of the format: record, leaf and node hashes (format §2; RFC 9162 section 2.1.1).

The one place SHA-256 is applied to records and tree nodes, one at a time
for the reference code and in batches for bulk verification, so that the
server, the audit and the offline verifier cannot hash differently.

Domain separation follows RFC 9162: a Merkle leaf is hashed behind the byte
0x00 and an interior node behind 0x01, so that a leaf can never be passed off
as a node. The record hash that links the chain is plain SHA-256 of the
canonical bytes, with no prefix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "GENESIS_PREV",
    "HASH_SIZE",
    "LEAF_HASH_PREFIX",
    "NODE_HASH_PREFIX",
    "empty_root",
    "leaf_hash",
    "leaf_hashes",
    "node_hash",
    "parent_hashes",
    "record_hash",
    "record_hashes",
]

HASH_SIZE = 32
LEAF_HASH_PREFIX = b"\x00"
NODE_HASH_PREFIX = b"\x01"
# format §1: record 1 links to 64 zeros.
GENESIS_PREV = "0" * 64


def record_hash(canonical: bytes) -> str:
    """``H(r)``: lowercase hex SHA-256 of a record's canonical bytes."""
    return hashlib.sha256(canonical).hexdigest()


def leaf_hash(canonical: bytes) -> bytes:
    """RFC 9162 leaf hash of a record's canonical bytes."""
    return hashlib.sha256(LEAF_HASH_PREFIX + canonical).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash."""
    return hashlib.sha256(NODE_HASH_PREFIX + left + right).digest()


def empty_root() -> bytes:
    """Root of the empty tree: SHA-256 of the empty string."""
    return hashlib.sha256(b"").digest()


# The batch forms below are the functions above mapped over a sequence, in a
# comprehension with ``sha256`` bound locally: bulk verification hashes each
# record twice, and a Python call per hash would be a visible part of its
# cost (``scripts/bench.sh verify``). tests/core/test_hashing.py holds them
# equal to the single forms.


def record_hashes(lines: Iterable[bytes]) -> list[str]:
    """``record_hash`` of each canonical line, in order."""
    sha256 = hashlib.sha256
    return [sha256(line).hexdigest() for line in lines]


def leaf_hashes(lines: Iterable[bytes]) -> list[bytes]:
    """``leaf_hash`` of each canonical line, in order."""
    sha256 = hashlib.sha256
    prefix = LEAF_HASH_PREFIX
    return [sha256(prefix + line).digest() for line in lines]


def parent_hashes(nodes: Sequence[bytes]) -> list[bytes]:
    """``node_hash`` of each pair ``nodes[2i], nodes[2i + 1]``: one level up a perfect tree."""
    if len(nodes) % 2:
        raise ValueError(f"cannot pair an odd number ({len(nodes)}) of nodes")
    sha256 = hashlib.sha256
    prefix = NODE_HASH_PREFIX
    pairs = zip(nodes[::2], nodes[1::2], strict=True)
    return [sha256(prefix + left + right).digest() for left, right in pairs]
