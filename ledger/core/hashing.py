"""Record, leaf and node hashes (SPEC §2; RFC 9162 section 2.1.1).

Domain separation follows RFC 9162: a Merkle leaf is hashed behind the byte
0x00 and an interior node behind 0x01, so that a leaf can never be passed off
as a node. The record hash that links the chain is plain SHA-256 of the
canonical bytes, with no prefix.
"""

from __future__ import annotations

import hashlib

__all__ = [
    "GENESIS_PREV",
    "HASH_SIZE",
    "LEAF_HASH_PREFIX",
    "NODE_HASH_PREFIX",
    "empty_root",
    "leaf_hash",
    "node_hash",
    "record_hash",
]

HASH_SIZE = 32
LEAF_HASH_PREFIX = b"\x00"
NODE_HASH_PREFIX = b"\x01"
# SPEC §1: record 1 links to 64 zeros.
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
