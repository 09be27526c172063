"""The batch hashes and subtree folds bulk verification uses equal the reference ones.

``record_hashes``, ``leaf_hashes`` and ``parent_hashes`` are ``record_hash``,
``leaf_hash`` and ``node_hash`` mapped over a sequence; ``perfect_root`` and
``fold_perfect_subtrees`` give the RFC 9162 roots of ``root_from_leaves`` and
of a recursive reference, on the public vectors and on generated leaves.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core.hashing import (
    HASH_SIZE,
    empty_root,
    leaf_hash,
    leaf_hashes,
    node_hash,
    parent_hashes,
    record_hash,
    record_hashes,
)
from ledger.core.merkle import (
    consistency_ranges,
    fold_cover,
    fold_perfect_subtrees,
    inclusion_ranges,
    perfect_cover,
    perfect_root,
    root_from_leaves,
)
from ledger.core.verification import MerkleAccumulator
from tests.core.test_merkle import README_LEAF_INPUTS, README_ROOT, VECTORS_DIR, ref_mth

HAPPY_PATHS = sorted((VECTORS_DIR / "merkle").rglob("happy-path.json"))
README_LEAVES = leaf_hashes(bytes.fromhex(value) for value in README_LEAF_INPUTS)

lines = st.lists(st.binary(max_size=300), max_size=40)
hashes = st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE)


def batch_mth(start: int, leaves: Sequence[bytes]) -> bytes:
    """The MTH of leaves ``start``... as bulk verification computes it."""
    if not leaves:
        return empty_root()
    return fold_cover([root for _, root in fold_perfect_subtrees(start, leaves)])


# -- batch hashes -----------------------------------------------------------------


@given(lines)
def test_batch_record_and_leaf_hashes_are_the_single_ones(given_lines: list[bytes]) -> None:
    assert record_hashes(given_lines) == [record_hash(line) for line in given_lines]
    assert leaf_hashes(given_lines) == [leaf_hash(line) for line in given_lines]
    # Any iterable will do, a generator included.
    assert leaf_hashes(iter(given_lines)) == leaf_hashes(given_lines)
    assert record_hashes(iter(given_lines)) == record_hashes(given_lines)


@given(st.lists(st.tuples(hashes, hashes), max_size=20))
def test_parent_hashes_are_node_hashes_of_neighbours(pairs: list[tuple[bytes, bytes]]) -> None:
    level = [digest for pair in pairs for digest in pair]
    assert parent_hashes(level) == [node_hash(left, right) for left, right in pairs]


def test_an_odd_number_of_nodes_has_no_parent_level() -> None:
    with pytest.raises(ValueError, match="odd"):
        parent_hashes([bytes(HASH_SIZE)] * 3)


# -- perfect subtrees -------------------------------------------------------------


@given(st.integers(0, 7), st.data())
def test_a_perfect_root_is_the_rfc_9162_root(level: int, data: st.DataObject) -> None:
    leaves = data.draw(st.lists(hashes, min_size=1 << level, max_size=1 << level))
    assert perfect_root(leaves) == root_from_leaves(leaves) == ref_mth(leaves)


@pytest.mark.parametrize("count", [0, 3, 6, 12])
def test_only_a_power_of_two_of_leaves_has_a_perfect_root(count: int) -> None:
    with pytest.raises(ValueError, match="perfect"):
        perfect_root([bytes(HASH_SIZE)] * count)


@given(st.integers(0, 1000), st.lists(hashes, max_size=70))
def test_folded_subtrees_are_the_perfect_cover_of_their_leaves(
    start: int, leaves: list[bytes]
) -> None:
    folded = fold_perfect_subtrees(start, leaves)
    cover = perfect_cover(start, start + len(leaves))
    assert [level for level, _ in folded] == [level for level, _ in cover]
    offset = 0
    for (level, index), (_, root) in zip(cover, folded, strict=True):
        assert index << level == start + offset
        assert root == root_from_leaves(leaves[offset : offset + (1 << level)])
        offset += 1 << level
    assert offset == len(leaves)


@given(st.lists(hashes, max_size=100), st.data())
def test_folded_subtrees_give_the_root_of_the_whole_tree(
    leaves: list[bytes], data: st.DataObject
) -> None:
    assert batch_mth(0, leaves) == root_from_leaves(leaves) == ref_mth(leaves)
    # And they continue a tree grown leaf by leaf up to where they start.
    start = data.draw(st.integers(0, len(leaves)))
    tree = MerkleAccumulator()
    for leaf in leaves[:start]:
        tree.add(leaf)
    for level, root in fold_perfect_subtrees(start, leaves[start:]):
        tree.add_subtree(level, root)
    assert (tree.size, tree.root()) == (len(leaves), root_from_leaves(leaves))


# -- public vectors (transparency-dev/merkle) -------------------------------------


def test_the_readme_leaves_give_the_readme_root() -> None:
    assert [leaf_hash(bytes.fromhex(value)) for value in README_LEAF_INPUTS] == README_LEAVES
    assert perfect_root(README_LEAVES).hex() == README_ROOT
    assert batch_mth(0, README_LEAVES).hex() == README_ROOT


def b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


@pytest.mark.parametrize(
    "path", HAPPY_PATHS, ids=[str(p.relative_to(VECTORS_DIR)) for p in HAPPY_PATHS]
)
def test_batch_hashes_rebuild_every_happy_path_vector(path: Path) -> None:
    """Each root, leaf hash and proof element, recomputed from the README leaves."""
    case = json.loads(path.read_text())
    if "leafIdx" in case:
        assert README_LEAVES[case["leafIdx"]] == b64(case["leafHash"])
        roots = {case["treeSize"]: case["root"]}
        ranges = inclusion_ranges(case["leafIdx"], case["treeSize"])
    else:
        roots = {case["size1"]: case["root1"], case["size2"]: case["root2"]}
        ranges = consistency_ranges(case["size1"], case["size2"])
    for size, root in roots.items():
        assert batch_mth(0, README_LEAVES[:size]) == b64(root)
    proof = [batch_mth(start, README_LEAVES[start:end]) for start, end in ranges]
    assert proof == [b64(element) for element in case["proof"] or []]


def test_there_are_happy_path_vectors() -> None:
    assert len(HAPPY_PATHS) >= 10, f"happy paths missing under {VECTORS_DIR / 'merkle'}"
