"""The Merkle tree of format §2 (RFC 9162 section 2.1): roots, proofs, verifiers.

Storage model. A server keeps only *perfect* subtrees: ``(level, index)`` is
the subtree of the ``2**level`` leaves ``[index * 2**level, (index+1) * 2**level)``.
Such a node is complete once its last leaf exists and never changes after
that, so the rows are append-only (``2n - popcount(n)`` of them for ``n``
leaves) and serve every tree size up to the head, not just the latest one.

Why perfect nodes suffice. RFC 9162 section 2.1.1 splits a tree of ``n > 1``
leaves at the largest power of two ``k < n``, so the left child is always a
perfect, aligned subtree and only the right border can be ragged. Every
subtree hash that a root, an inclusion path (section 2.1.3.1) or a
consistency proof (section 2.1.4.1) asks for therefore covers a leaf range
whose greedy aligned decomposition (``perfect_cover``) has exactly the
shape of its MTH: the MTH is the right fold of those perfect nodes
(``fold_cover``). A proof for any size thus needs ``O(log n)`` stored nodes,
all known in advance from arithmetic alone (``nodes_for_ranges``), so the
store answers it with one query.

Verification (``verify_inclusion``, ``verify_consistency``) follows RFC 9162
sections 2.1.3.2 and 2.1.4.2 in the inner/border form of transparency-dev/merkle
``proof/verify.go``. Verifiers take bytes from untrusted peers: they return
``None`` or raise ``ProofInvalid``, never another exception, and their work
is bounded by the bit length of the sizes, capped at ``MAX_TREE_SIZE``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ledger.core.errors import ProofInvalid
from ledger.core.hashing import HASH_SIZE, empty_root, node_hash, parent_hashes

__all__ = [
    "MAX_TREE_SIZE",
    "NodeId",
    "append_leaves",
    "consistency_proof",
    "consistency_ranges",
    "fold_cover",
    "fold_perfect_subtrees",
    "inclusion_proof",
    "inclusion_ranges",
    "nodes_for_ranges",
    "perfect_cover",
    "perfect_root",
    "root_from_inclusion_proof",
    "root_from_leaves",
    "root_from_nodes",
    "root_from_range",
    "verify_consistency",
    "verify_inclusion",
    "verify_range",
]

NodeId = tuple[int, int]
"""``(level, index)``: the perfect subtree of leaves ``[index << level, (index + 1) << level)``."""

# RFC 9162 section 4.9 carries tree_size as a uint64; refusing anything larger
# keeps a hostile size from turning bit arithmetic into an unbounded loop.
MAX_TREE_SIZE = 2**64 - 1


# -- tree shape (pure arithmetic, no hashing) ---------------------------------


def _largest_power_of_two_below(count: int) -> int:
    """RFC 9162 section 2.1.1 split point ``k``: the largest power of two ``< count``."""
    return 1 << ((count - 1).bit_length() - 1)


def _trailing_zeros(value: int) -> int:
    return (value & -value).bit_length() - 1


def perfect_cover(start: int, end: int) -> list[NodeId]:
    """Split leaves ``[start, end)`` left to right into the largest aligned perfect subtrees."""
    if not 0 <= start <= end:
        raise ValueError(f"invalid leaf range [{start}, {end})")
    cover: list[NodeId] = []
    position = start
    while position < end:
        # A block at ``position`` must be aligned to its own size and fit
        # before ``end``; both bounds halve at worst, so this is O(log n).
        level = (end - position).bit_length() - 1
        if position:
            level = min(level, _trailing_zeros(position))
        cover.append((level, position >> level))
        position += 1 << level
    return cover


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTHs form RFC 9162 section 2.1.3.1 ``PATH(index, D[0:size])``.

    In proof order: the sibling nearest the leaf first.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    top_down: list[tuple[int, int]] = []
    low, high = 0, size
    while high - low > 1:
        split = low + _largest_power_of_two_below(high - low)
        if index < split:
            top_down.append((split, high))
            high = split
        else:
            top_down.append((low, split))
            low = split
    top_down.reverse()
    return top_down


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTHs form RFC 9162 section 2.1.4.1 ``PROOF(size1, D[0:size2])``.

    In proof order (deepest first). ``size1 == size2`` needs no hashes.
    """
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from tree size {size1} to {size2}")
    # ``old_tree_is_root`` is SUBPROOF's flag ``b``: while the old tree is the
    # left edge of the subtree we descend into, the verifier already holds its
    # hash (it is ``root1``), so it is not sent.
    outer_top_down: list[tuple[int, int]] = []
    low, high, old_tree_is_root = 0, size2, True
    while high != size1:
        split = low + _largest_power_of_two_below(high - low)
        if size1 <= split:
            outer_top_down.append((split, high))
            high = split
        else:
            outer_top_down.append((low, split))
            low = split
            old_tree_is_root = False
    ranges = [] if old_tree_is_root else [(low, high)]
    ranges.extend(reversed(outer_top_down))
    return ranges


def nodes_for_ranges(ranges: Iterable[tuple[int, int]]) -> list[NodeId]:
    """The stored nodes needed to hash every range: one query's worth of keys."""
    needed: set[NodeId] = set()
    for start, end in ranges:
        needed.update(perfect_cover(start, end))
    return sorted(needed)


# -- hashing from stored nodes ------------------------------------------------


def fold_cover(hashes: Sequence[bytes]) -> bytes:
    """Right fold with ``node_hash``: the MTH of a range from its perfect cover.

    Right, not left: RFC 9162 section 2.1.1 puts the perfect part on the left
    and recurses into the ragged remainder on the right.
    """
    if not hashes:
        raise ValueError("cannot fold an empty cover")
    folded = hashes[-1]
    for position in range(len(hashes) - 2, -1, -1):
        folded = node_hash(hashes[position], folded)
    return folded


def _stored(nodes: Mapping[NodeId, bytes], node: NodeId) -> bytes:
    try:
        return nodes[node]
    except KeyError:
        level, index = node
        raise ValueError(f"missing perfect node (level={level}, index={index})") from None


def _range_hash(start: int, end: int, nodes: Mapping[NodeId, bytes]) -> bytes:
    return fold_cover([_stored(nodes, node) for node in perfect_cover(start, end)])


def _subtree_root(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    if end - start == 1:
        return leaf_hashes[start]
    split = start + _largest_power_of_two_below(end - start)
    left = _subtree_root(leaf_hashes, start, split)
    return node_hash(left, _subtree_root(leaf_hashes, split, end))


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """Reference RFC 9162 section 2.1.1 ``MTH`` over all leaf hashes, ``O(n)``."""
    if not leaf_hashes:
        return empty_root()
    return _subtree_root(leaf_hashes, 0, len(leaf_hashes))


def perfect_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of ``2**level`` leaf hashes, level by level: ``root_from_leaves`` for a perfect tree.

    Breadth first, a level at a time, so bulk verification pays one batch
    call per level rather than one call per node.
    """
    count = len(leaf_hashes)
    if count == 0 or count & (count - 1):
        raise ValueError(f"{count} leaves do not make a perfect tree")
    level = list(leaf_hashes)
    while len(level) > 1:
        level = parent_hashes(level)
    return level[0]


def fold_perfect_subtrees(start: int, leaf_hashes: Sequence[bytes]) -> list[tuple[int, bytes]]:
    """``(level, root)`` of each node of ``perfect_cover`` over leaves ``start``... given.

    ``leaf_hashes`` are the leaves at ``start, start + 1, ...``. The result is
    what a left-to-right binary-counter accumulator would push for them, so a
    verifier can append a whole run as a few subtrees, not leaf by leaf.
    """
    folded: list[tuple[int, bytes]] = []
    offset = 0
    for level, _ in perfect_cover(start, start + len(leaf_hashes)):
        width = 1 << level
        folded.append((level, perfect_root(leaf_hashes[offset : offset + width])))
        offset += width
    return folded


def root_from_nodes(size: int, nodes: Mapping[NodeId, bytes]) -> bytes:
    """Root of the tree of ``size`` leaves from its ``popcount(size)`` perfect nodes."""
    if size == 0:
        return empty_root()
    return _range_hash(0, size, nodes)


def inclusion_proof(index: int, size: int, nodes: Mapping[NodeId, bytes]) -> list[bytes]:
    """RFC 9162 ``PATH(index, D[0:size])`` from stored perfect nodes.

    ``nodes`` must hold at least ``nodes_for_ranges(inclusion_ranges(index, size))``.
    """
    return [_range_hash(start, end, nodes) for start, end in inclusion_ranges(index, size)]


def consistency_proof(size1: int, size2: int, nodes: Mapping[NodeId, bytes]) -> list[bytes]:
    """RFC 9162 ``PROOF(size1, D[0:size2])`` from stored perfect nodes.

    ``nodes`` must hold at least ``nodes_for_ranges(consistency_ranges(size1, size2))``.
    """
    return [_range_hash(start, end, nodes) for start, end in consistency_ranges(size1, size2)]


def append_leaves(
    size: int, frontier: Mapping[NodeId, bytes], leaf_hashes: Sequence[bytes]
) -> dict[NodeId, bytes]:
    """Append leaves ``size, size + 1, ...``; return every perfect node they complete.

    ``frontier`` must hold at least ``perfect_cover(0, size)``. The result
    includes the level-0 node of each new leaf. The stack below is a binary
    counter: adding a leaf merges equal-level neighbours, so ``k`` leaves cost
    ``k + popcount(size) - popcount(size + k)`` hashes, i.e. ``O(k + log n)``.
    """
    if size < 0:
        raise ValueError(f"invalid tree size {size}")
    stack = [(node, _stored(frontier, node)) for node in perfect_cover(0, size)]
    created: dict[NodeId, bytes] = {}
    for offset, leaf in enumerate(leaf_hashes):
        # A short or long leaf hash would poison every root above it forever.
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"leaf {size + offset} hash is {len(leaf)} bytes, not {HASH_SIZE}")
        node, digest = (0, size + offset), leaf
        created[node] = digest
        while stack and stack[-1][0][0] == node[0]:
            _, left = stack.pop()
            node, digest = (node[0] + 1, node[1] >> 1), node_hash(left, digest)
            created[node] = digest
        stack.append((node, digest))
    return created


# -- verification (untrusted input) -------------------------------------------


def _shown(value: object) -> str:
    """``repr`` that cannot fail: str() of a huge int raises past 4300 digits."""
    if isinstance(value, int) and value.bit_length() > MAX_TREE_SIZE.bit_length():
        return f"<{value.bit_length()}-bit integer>"
    return repr(value)


def _require_tree_size(value: int, name: str) -> int:
    if not isinstance(value, int) or not 0 <= value <= MAX_TREE_SIZE:
        raise ProofInvalid(f"{name} {_shown(value)} is not a tree size in [0, 2**64)")
    return value


def _require_hash(value: bytes, name: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        shown = len(value) if isinstance(value, bytes) else type(value).__name__
        raise ProofInvalid(f"{name} must be {HASH_SIZE} bytes, got {shown}")
    return value


def _require_proof(proof: Sequence[bytes], expected_length: int) -> list[bytes]:
    """The proof as a list of hashes, after its length is checked against the sizes."""
    if not isinstance(proof, Sequence):
        raise ProofInvalid(f"proof must be a sequence of hashes, got {type(proof).__name__}")
    if len(proof) != expected_length:
        raise ProofInvalid(f"wrong proof length {len(proof)}, want {expected_length}")
    return [_require_hash(element, f"proof[{i}]") for i, element in enumerate(proof)]


def _require_match(calculated: bytes, expected: bytes, name: str) -> None:
    if calculated != expected:
        raise ProofInvalid(f"calculated {name} {calculated.hex()} != expected {expected.hex()}")


def _decompose_inclusion(index: int, size: int) -> tuple[int, int]:
    """Split ``PATH(index, size)`` into (inner, border) lengths.

    Inner: the levels below where the paths to ``index`` and ``size - 1``
    diverge; the sibling side follows the index bits there. Border: above it
    the path runs along the right edge, where every sibling is on the left
    and levels whose right child is missing contribute nothing.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for level, sibling in enumerate(proof):
        # A set index bit means the path node is a right child: sibling on the left.
        seed = node_hash(sibling, seed) if (index >> level) & 1 else node_hash(seed, sibling)
    return seed


def _chain_inner_left_only(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Like ``_chain_inner`` but skips right siblings: the older tree's view of the subtree."""
    for level, sibling in enumerate(proof):
        if (index >> level) & 1:
            seed = node_hash(sibling, seed)
    return seed


def _chain_border(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for sibling in proof:
        seed = node_hash(sibling, seed)
    return seed


def root_from_inclusion_proof(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` implies for leaf ``index`` of a tree of ``size`` (RFC 9162 2.1.3.2).

    On its own this binds neither the root nor the size: compare the result
    with the root of a checkpoint whose size is ``size`` (``verify_inclusion``).
    """
    _require_tree_size(size, "tree size")
    if not isinstance(index, int) or not 0 <= index < size:
        raise ProofInvalid(f"leaf index {_shown(index)} is not in a tree of size {size}")
    _require_hash(leaf_hash, "leaf hash")
    inner, border = _decompose_inclusion(index, size)
    path = _require_proof(proof, inner + border)
    return _chain_border(_chain_inner(leaf_hash, path[:inner], index), path[inner:])


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check RFC 9162 section 2.1.3.2 inclusion; raise ``ProofInvalid`` with the reason."""
    _require_hash(root, "root")
    _require_match(root_from_inclusion_proof(index, size, leaf_hash, proof), root, "root")


def root_from_range(
    start: int,
    size: int,
    leaf_hashes: Sequence[bytes],
    first_proof: Sequence[bytes],
    last_proof: Sequence[bytes],
) -> bytes:
    """The root that consecutive leaves ``start, start + 1, …`` imply, with the
    inclusion proofs (RFC 9162 2.1.3.1) of the first and the last of them.

    Every subtree of the tree of ``size`` that holds none of the leaves and
    whose parent holds some is a sibling on the path of the first or of the
    last leaf, so the two proofs supply each such hash; every subtree that
    holds any of the leaves is hashed here from them, never taken from a
    proof. So ``k`` leaves are proven by two proofs and ``O(k + log n)``
    hashes, where ``verify_inclusion`` for each would take ``k`` proofs, and
    the result equals the root ``root_from_leaves`` computes from all leaves.
    """
    _require_tree_size(size, "tree size")
    count = len(leaf_hashes)
    if not isinstance(start, int) or count == 0 or not 0 <= start < start + count <= size:
        raise ProofInvalid(f"{count} leaves from {_shown(start)} are not a range of size {size}")
    end = start + count
    leaves = [_require_hash(leaf, f"leaf {start + n}") for n, leaf in enumerate(leaf_hashes)]
    siblings: dict[tuple[int, int], bytes] = {}
    for index, proof, name in ((start, first_proof, "first"), (end - 1, last_proof, "last")):
        ranges = inclusion_ranges(index, size)
        hashes = _require_proof(proof, len(ranges))
        for span, digest in zip(ranges, hashes, strict=True):
            if siblings.setdefault(span, digest) != digest:
                raise ProofInvalid(f"the {name} proof disagrees on leaves {list(span)}")

    def subtree(low: int, high: int) -> bytes:
        if start <= low and high <= end:
            return _subtree_root(leaves, low - start, high - start)
        if high <= start or end <= low:
            try:
                return siblings[(low, high)]
            except KeyError:  # unreachable for a range of the tree, by the docstring
                raise ProofInvalid(f"no proof hash for leaves [{low}, {high})") from None
        split = low + _largest_power_of_two_below(high - low)
        return node_hash(subtree(low, split), subtree(split, high))

    return subtree(0, size)


def verify_range(
    start: int,
    size: int,
    leaf_hashes: Sequence[bytes],
    first_proof: Sequence[bytes],
    last_proof: Sequence[bytes],
    root: bytes,
) -> None:
    """``root_from_range`` equals ``root``: each of the leaves is in the tree at its index."""
    _require_hash(root, "root")
    _require_match(root_from_range(start, size, leaf_hashes, first_proof, last_proof), root, "root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check RFC 9162 section 2.1.4.2 consistency; raise ``ProofInvalid`` with the reason."""
    _require_tree_size(size1, "size1")
    _require_tree_size(size2, "size2")
    if size1 > size2:
        raise ProofInvalid(f"size1 {size1} > size2 {size2}: a log never shrinks")
    if size1 == 0:
        # format §2: the empty tree is a prefix of every tree, so such a proof
        # proves nothing; refusing it (also for 0 -> 0) keeps callers from
        # mistaking it for a check.
        raise ProofInvalid("a consistency proof from tree size 0 is rejected as meaningless")
    if size1 == size2:
        if not isinstance(proof, Sequence) or len(proof) != 0:
            raise ProofInvalid("size1 == size2, but the proof is not empty")
        # Only byte equality here, no length check: nothing is hashed, and the
        # vector consistency/additional/sizes-are-equal-one-and-proof-is-empty
        # (transparency-dev/merkle) requires 12-byte equal roots to pass.
        if not (isinstance(root1, bytes) and isinstance(root2, bytes)) or root1 != root2:
            raise ProofInvalid("size1 == size2, but root1 != root2")
        return
    _require_hash(root1, "root1")
    _require_hash(root2, "root2")

    # The proof is the tail of PATH(size1 - 1, size2) above level ``shift``:
    # the lowest ``shift`` levels lie inside the old tree's last perfect
    # subtree, whose hash the proof sends first (or is root1 itself when the
    # old tree is that one perfect subtree).
    inner, border = _decompose_inclusion(size1 - 1, size2)
    shift = _trailing_zeros(size1)
    inner -= shift
    old_tree_is_perfect = size1 == 1 << shift
    seed_count = 0 if old_tree_is_perfect else 1
    hashes = _require_proof(proof, seed_count + inner + border)
    seed = root1 if old_tree_is_perfect else hashes[0]
    path = hashes[seed_count:]
    mask = (size1 - 1) >> shift

    calculated1 = _chain_border(_chain_inner_left_only(seed, path[:inner], mask), path[inner:])
    _require_match(calculated1, root1, "root1")
    calculated2 = _chain_border(_chain_inner(seed, path[:inner], mask), path[inner:])
    _require_match(calculated2, root2, "root2")
