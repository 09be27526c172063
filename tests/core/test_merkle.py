"""The Merkle tree of format §2 (RFC 9162 section 2.1): the transparency-dev
vectors, the README's eight leaves, a recursive reference of RFC 9162
PATH/PROOF, tampering, and the perfect-node storage bounds."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core import merkle
from ledger.core.errors import ProofInvalid, VerificationError
from ledger.core.hashing import HASH_SIZE, empty_root, leaf_hash, node_hash
from ledger.core.merkle import (
    MAX_TREE_SIZE,
    NodeId,
    append_leaves,
    consistency_proof,
    consistency_ranges,
    fold_cover,
    inclusion_proof,
    inclusion_ranges,
    nodes_for_ranges,
    perfect_cover,
    root_from_inclusion_proof,
    root_from_leaves,
    root_from_nodes,
    root_from_range,
    verify_consistency,
    verify_inclusion,
    verify_range,
)

# A copy of ../shared/vectors (format §2) kept in the repository, so that a
# clone on its own runs them; a test below holds it equal to the shared set.
VENDORED_VECTORS = Path(__file__).resolve().parents[1] / "vectors"
SHARED_VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"


def vectors_dir() -> Path:
    """The vectors to run; ``LEDGER_VECTORS_DIR`` overrides the repository's copy."""
    configured = os.environ.get("LEDGER_VECTORS_DIR")
    return Path(configured) if configured else VENDORED_VECTORS


VECTORS_DIR = vectors_dir()
MERKLE_VECTOR_FILES = sorted((VECTORS_DIR / "merkle").rglob("*.json"))

# vectors/README.md: the happy paths are built from these leaf inputs.
README_LEAF_INPUTS = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
README_ROOT = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"

EXHAUSTIVE_MAX_SIZE = 64
RANDOM_MAX_SIZE = 300
NODE_BOUND_MAX_SIZE = 10**6

Nodes = dict[NodeId, bytes]


# -- a straightforward recursive reference of RFC 9162 section 2.1 ------------


def split_point(count: int) -> int:
    """RFC 9162 section 2.1.1: the largest power of two smaller than ``count``."""
    k = 1
    while k * 2 < count:
        k *= 2
    return k


def ref_mth(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return empty_root()
    if len(leaves) == 1:
        return leaves[0]
    k = split_point(len(leaves))
    return node_hash(ref_mth(leaves[:k]), ref_mth(leaves[k:]))


def ref_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.3.1 ``PATH(m, D_n)``."""
    if len(leaves) == 1:
        return []
    k = split_point(len(leaves))
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: Sequence[bytes], known: bool) -> list[bytes]:
    """RFC 9162 section 2.1.4.1 ``SUBPROOF(m, D_n, b)``."""
    if m == len(leaves):
        return [] if known else [ref_mth(leaves)]
    k = split_point(len(leaves))
    if m <= k:
        return [*ref_subproof(m, leaves[:k], known), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def ref_proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    return ref_subproof(m, leaves, True)


# -- helpers --------------------------------------------------------------------


def make_leaves(count: int, *, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(8, "big")) for i in range(count)]


def build_nodes(leaves: Sequence[bytes], chunk_sizes: Sequence[int] = (1,)) -> Nodes:
    """Append ``leaves`` in chunks, passing only the frontier each time (as a store would)."""
    nodes: Nodes = {}
    size, turn = 0, 0
    while size < len(leaves):
        chunk = max(1, chunk_sizes[turn % len(chunk_sizes)])
        frontier = {node: nodes[node] for node in perfect_cover(0, size)}
        created = append_leaves(size, frontier, leaves[size : size + chunk])
        assert not created.keys() & nodes.keys(), "a perfect node was written twice"
        nodes.update(created)
        size, turn = min(len(leaves), size + chunk), turn + 1
    return nodes


def flip(value: bytes, bit: int = 0) -> bytes:
    data = bytearray(value)
    data[bit // 8 % len(data)] ^= 1 << (bit % 8)
    return bytes(data)


def only(nodes: Nodes, wanted: Sequence[NodeId]) -> Nodes:
    """What the one store query returns: exactly the rows asked for."""
    return {node: nodes[node] for node in wanted}


def rejects(check: Callable[[], None]) -> bool:
    try:
        check()
    except ProofInvalid:
        return True
    return False


def inclusion_rejected(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    return rejects(lambda: verify_inclusion(index, size, leaf, proof, root))


def consistency_rejected(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> bool:
    return rejects(lambda: verify_consistency(size1, size2, proof, root1, root2))


# -- transparency-dev/merkle vectors ----------------------------------------


def b64(value: str | None) -> bytes:
    return base64.b64decode(value or "", validate=True)


def run_vector(path: Path) -> bool:
    """True if the verifier accepts the case; any exception but ProofInvalid escapes."""
    case: dict[str, Any] = json.loads(path.read_text())
    proof = [b64(element) for element in case["proof"] or []]
    kind = path.relative_to(VECTORS_DIR / "merkle").parts[0]
    if kind == "inclusion":
        return not inclusion_rejected(
            case["leafIdx"], case["treeSize"], b64(case["leafHash"]), proof, b64(case["root"])
        )
    assert kind == "consistency", path
    return not consistency_rejected(
        case["size1"], case["size2"], proof, b64(case["root1"]), b64(case["root2"])
    )


@pytest.mark.parametrize("files", [MERKLE_VECTOR_FILES], ids=[f"{len(MERKLE_VECTOR_FILES)}-files"])
def test_every_vector_gives_the_expected_result(files: list[Path]) -> None:
    assert files, f"no vectors under {VECTORS_DIR / 'merkle'}"
    wrong: list[str] = []
    ran = accepted = happy = 0
    for path in files:
        want_accept = not json.loads(path.read_text())["wantErr"]
        got_accept = run_vector(path)
        ran += 1
        accepted += got_accept
        happy += path.name.startswith("happy-path") and got_accept
        if got_accept != want_accept:
            wrong.append(str(path.relative_to(VECTORS_DIR)))
    summary = f"{ran} run of {len(files)} files: {accepted} accepted, {ran - accepted} rejected"
    assert not wrong, f"{summary}; wrong result for {wrong}"
    assert ran == len(files), summary
    assert happy == sum(path.name.startswith("happy-path") for path in files) > 0, summary


# -- the README's eight leaves ------------------------------------------------


def test_readme_root_and_every_prefix() -> None:
    leaves = [leaf_hash(bytes.fromhex(value)) for value in README_LEAF_INPUTS]
    assert root_from_leaves(leaves).hex() == README_ROOT
    nodes: Nodes = {}
    for size, leaf in enumerate(leaves):
        nodes.update(append_leaves(size, nodes, [leaf]))
    for size in range(len(leaves) + 1):
        assert (
            root_from_nodes(size, nodes)
            == root_from_leaves(leaves[:size])
            == ref_mth(leaves[:size])
        )
    assert root_from_nodes(0, {}) == empty_root() == root_from_leaves([])


# -- against the reference, with tampering ------------------------------------


def assert_inclusion_tamper_proof(
    index: int, size: int, leaves: Sequence[bytes], proof: list[bytes], roots: dict[int, bytes]
) -> None:
    root, leaf = roots[size], leaves[index]
    for position in range(len(proof)):
        bad = [*proof]
        bad[position] = flip(bad[position], position)
        assert inclusion_rejected(index, size, leaf, bad, root)
    # A wrong length is refused for its length, before any hashing.
    with pytest.raises(ProofInvalid, match="wrong proof length"):
        verify_inclusion(index, size, leaf, [*proof, root], root)
    with pytest.raises(ProofInvalid, match="wrong proof length"):
        verify_inclusion(index, size, leaf, proof[:-1] if proof else [root], root)
    assert inclusion_rejected(index, size, flip(leaf), proof, root)
    assert inclusion_rejected(index, size, leaf, proof, flip(root, 255))
    for other in {index - 1, index + 1, index ^ 2, size} - {index}:
        assert inclusion_rejected(other, size, leaf, proof, root)
    # An inclusion proof alone does not bind the size ((0, 5) and (0, 6) have
    # the same shape); a checkpoint binds size to root, so a tampered size is
    # checked against the root of that size.
    for other in {size - 1, size + 1, size * 2, size // 2, index} - {size}:
        if other in roots:
            assert inclusion_rejected(index, other, leaf, proof, roots[other])
    # Doubling the size always lengthens the path, whatever the root.
    assert inclusion_rejected(index, size * 2, leaf, proof, root)


def assert_consistency_tamper_proof(
    size1: int, size2: int, proof: list[bytes], roots: dict[int, bytes]
) -> None:
    root1, root2 = roots[size1], roots[size2]
    for position in range(len(proof)):
        bad = [*proof]
        bad[position] = flip(bad[position], position)
        assert consistency_rejected(size1, size2, bad, root1, root2)
    if size1 == size2:
        assert consistency_rejected(size1, size2, [root1], root1, root2)
    else:
        with pytest.raises(ProofInvalid, match="wrong proof length"):
            verify_consistency(size1, size2, [*proof, root1], root1, root2)
        with pytest.raises(ProofInvalid, match="wrong proof length"):
            verify_consistency(size1, size2, proof[:-1], root1, root2)
    assert consistency_rejected(size1, size2, proof, flip(root1, 7), root2)
    assert consistency_rejected(size1, size2, proof, root1, flip(root2, 9))
    for other1, other2 in {(size1 - 1, size2), (size1 + 1, size2), (size1, size2 + 1)}:
        if other1 in roots and other2 in roots:
            assert consistency_rejected(other1, other2, proof, roots[other1], roots[other2])
    if size1 != size2:
        assert consistency_rejected(size1, size2, proof, root2, root1)
        assert consistency_rejected(size2, size1, proof, root2, root1)


def check_tree(
    leaves: Sequence[bytes], nodes: Nodes, index: int, size: int, size1: int, tamper: bool
) -> None:
    """Proofs from stored nodes equal the reference, verify, and resist tampering."""
    roots = {n: root_from_nodes(n, nodes) for n in range(len(leaves) + 1)}
    assert roots[size] == ref_mth(leaves[:size])

    wanted = nodes_for_ranges(inclusion_ranges(index, size))
    proof = inclusion_proof(index, size, only(nodes, wanted))
    assert proof == ref_path(index, leaves[:size])
    verify_inclusion(index, size, leaves[index], proof, roots[size])
    assert root_from_inclusion_proof(index, size, leaves[index], proof) == roots[size]

    wanted = nodes_for_ranges(consistency_ranges(size1, size))
    consistency = consistency_proof(size1, size, only(nodes, wanted))
    assert consistency == ref_proof(size1, leaves[:size])
    verify_consistency(size1, size, consistency, roots[size1], roots[size])

    if tamper:
        assert_inclusion_tamper_proof(index, size, leaves, proof, roots)
        assert_consistency_tamper_proof(size1, size, consistency, roots)


def test_every_pair_up_to_64_matches_the_reference_and_resists_tampering() -> None:
    leaves = make_leaves(EXHAUSTIVE_MAX_SIZE)
    nodes = build_nodes(leaves)
    roots = {n: root_from_nodes(n, nodes) for n in range(EXHAUSTIVE_MAX_SIZE + 1)}
    ref_roots = {n: ref_mth(leaves[:n]) for n in range(EXHAUSTIVE_MAX_SIZE + 1)}
    assert roots == ref_roots
    cases = 0
    for size in range(1, EXHAUSTIVE_MAX_SIZE + 1):
        for index in range(size):
            proof = inclusion_proof(index, size, nodes)
            assert proof == ref_path(index, leaves[:size]), (index, size)
            verify_inclusion(index, size, leaves[index], proof, roots[size])
            assert_inclusion_tamper_proof(index, size, leaves, proof, roots)
            cases += 1
        for size1 in range(1, size + 1):
            consistency = consistency_proof(size1, size, nodes)
            assert consistency == ref_proof(size1, leaves[:size]), (size1, size)
            verify_consistency(size1, size, consistency, roots[size1], roots[size])
            assert_consistency_tamper_proof(size1, size, consistency, roots)
            cases += 1
    assert cases == 2 * EXHAUSTIVE_MAX_SIZE * (EXHAUSTIVE_MAX_SIZE + 1) // 2


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_trees_built_in_random_chunks(data: st.DataObject) -> None:
    total = data.draw(st.integers(1, RANDOM_MAX_SIZE), label="leaves")
    chunks = data.draw(st.lists(st.integers(1, 70), min_size=1, max_size=8), label="chunks")
    leaves = make_leaves(total, salt=b"random")
    nodes = build_nodes(leaves, chunks)
    size = data.draw(st.integers(1, total), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    size1 = data.draw(st.integers(1, size), label="size1")
    check_tree(leaves, nodes, index, size, size1, tamper=True)


# -- storage: perfect nodes only, O(log n) reads per proof --------------------


@settings(max_examples=40, deadline=None)
@given(
    total=st.integers(0, 600),
    chunks=st.lists(st.integers(1, 100), min_size=1, max_size=6),
)
def test_append_creates_exactly_the_perfect_nodes(total: int, chunks: list[int]) -> None:
    nodes = build_nodes(make_leaves(total), chunks)
    expected = {
        (level, index) for level in range(total.bit_length()) for index in range(total >> level)
    }
    assert set(nodes) == expected
    assert len(nodes) == 2 * total - total.bit_count()


@pytest.mark.parametrize(("size", "count"), [(0, 1), (0, 9), (5, 3), (7, 1), (8, 8), (1000, 24)])
def test_append_costs_one_hash_per_new_interior_node(
    size: int, count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaves = make_leaves(size + count)
    nodes = build_nodes(leaves[:size], [64])
    calls: list[None] = []

    def counting_node_hash(left: bytes, right: bytes) -> bytes:
        calls.append(None)
        return node_hash(left, right)

    monkeypatch.setattr(merkle, "node_hash", counting_node_hash)
    created = append_leaves(size, nodes, leaves[size:])
    assert len(calls) == len(created) - count <= count + size.bit_length()
    assert len(calls) == count + size.bit_count() - (size + count).bit_count()


def node_bound(size: int) -> int:
    return 2 * size.bit_length() + 2


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_proof_reads_logarithmically_many_nodes(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, NODE_BOUND_MAX_SIZE), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    size1 = data.draw(st.integers(1, size), label="size1")
    assert len(nodes_for_ranges(inclusion_ranges(index, size))) <= node_bound(size)
    assert len(nodes_for_ranges(consistency_ranges(size1, size))) <= node_bound(size)
    assert len(perfect_cover(0, size)) == size.bit_count()


@pytest.mark.parametrize(
    "size", [1, 2, 3, 2**20 - 1, 2**20, 2**20 + 1, NODE_BOUND_MAX_SIZE, 2**63 - 1, MAX_TREE_SIZE]
)
def test_node_bound_at_the_edges(size: int) -> None:
    for index in {0, 1, size // 2, size - 2, size - 1} - {-1, size}:
        assert len(nodes_for_ranges(inclusion_ranges(index, size))) <= node_bound(size)
        if index:
            assert len(nodes_for_ranges(consistency_ranges(index, size))) <= node_bound(size)


def test_only_the_requested_nodes_are_needed() -> None:
    leaves = make_leaves(37)
    nodes = build_nodes(leaves, [5, 11])
    for size in (1, 13, 37):
        assert root_from_nodes(size, only(nodes, perfect_cover(0, size))) == ref_mth(leaves[:size])
    wanted = nodes_for_ranges(inclusion_ranges(20, 37))
    for missing in wanted:
        partial = {node: digest for node, digest in only(nodes, wanted).items() if node != missing}
        with pytest.raises(ValueError, match=rf"level={missing[0]}, index={missing[1]}"):
            inclusion_proof(20, 37, partial)


# -- shapes and argument checks -------------------------------------------------


def test_perfect_cover_and_ranges() -> None:
    assert perfect_cover(0, 0) == []
    assert perfect_cover(0, 7) == [(2, 0), (1, 2), (0, 6)]
    assert perfect_cover(3, 13) == [(0, 3), (2, 1), (2, 2), (0, 12)]
    assert inclusion_ranges(0, 1) == []
    assert inclusion_ranges(5, 7) == [(4, 5), (6, 7), (0, 4)]
    assert consistency_ranges(3, 7) == [(2, 3), (3, 4), (0, 2), (4, 7)]
    assert consistency_ranges(4, 7) == [(4, 7)]
    assert consistency_ranges(5, 5) == []
    assert nodes_for_ranges([(0, 3), (2, 4), (4, 7)]) == [(0, 2), (0, 6), (1, 0), (1, 1), (1, 2)]


@pytest.mark.parametrize(
    "call",
    [
        lambda: perfect_cover(-1, 3),
        lambda: perfect_cover(4, 3),
        lambda: fold_cover([]),
        lambda: inclusion_ranges(3, 3),
        lambda: inclusion_ranges(-1, 3),
        lambda: consistency_ranges(0, 3),
        lambda: consistency_ranges(4, 3),
        lambda: append_leaves(-1, {}, []),
        lambda: append_leaves(2, {}, []),
        lambda: append_leaves(0, {}, [b"short"]),
        lambda: root_from_nodes(3, {}),
    ],
)
def test_generation_refuses_bad_arguments_with_value_error(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()


@settings(max_examples=300, deadline=None)
@given(start=st.integers(0, 2**70), length=st.integers(0, 2**70) | st.integers(0, 40))
def test_perfect_cover_is_the_greedy_aligned_tiling(start: int, length: int) -> None:
    end = start + length
    cover = perfect_cover(start, end)
    position = start
    for level, index in cover:
        assert index << level == position, "contiguous and aligned"
        block_end = position + (1 << level)
        assert block_end <= end
        # Greedy: the next level up is misaligned here or overruns ``end``.
        assert position % (2 << level) != 0 or position + (2 << level) > end
        position = block_end
    assert position == end
    assert len(cover) <= 2 * length.bit_length()


def test_fold_cover_is_a_right_fold() -> None:
    a, b, c = make_leaves(3)
    assert fold_cover([a]) == a
    assert fold_cover([a, b, c]) == node_hash(a, node_hash(b, c))


# -- hostile input: ProofInvalid and nothing else, quickly --------------------

HASH = leaf_hash(b"x")


@pytest.mark.parametrize(
    "call",
    [
        lambda: verify_inclusion(0, 0, HASH, [], HASH),
        lambda: verify_inclusion(-1, 4, HASH, [HASH, HASH], HASH),
        lambda: verify_inclusion(2**63, 2**63, HASH, [HASH] * 63, HASH),
        lambda: verify_inclusion(2**63 - 2, 2**63 - 1, HASH, [HASH] * 64, HASH),
        lambda: verify_inclusion(0, MAX_TREE_SIZE + 1, HASH, [HASH] * 64, HASH),
        lambda: verify_inclusion(0, 2**10_000, HASH, [HASH], HASH),
        lambda: verify_inclusion(2**20_000, 2**20_000, HASH, [HASH], HASH),
        lambda: verify_inclusion(-(2**20_000), 2**63, HASH, [HASH], HASH),
        lambda: verify_consistency(2**20_000, 2**20_001, [HASH], HASH, HASH),
        lambda: verify_inclusion(0, 1, HASH[:31], [], HASH[:31]),
        lambda: verify_inclusion(0, 1, HASH, [], HASH + b"\0"),
        lambda: verify_inclusion(0, 2, HASH, [HASH[:31]], HASH),
        lambda: verify_inclusion(0, 2, HASH, ["0" * 32], HASH),  # type: ignore[list-item]
        lambda: verify_inclusion(0, 2, HASH, None, HASH),  # type: ignore[arg-type]
        lambda: verify_inclusion(0, 2, HASH, HASH, HASH),  # type: ignore[arg-type]
        lambda: verify_inclusion("0", 2, HASH, [HASH], HASH),  # type: ignore[arg-type]
        lambda: verify_inclusion(0, 2.0, HASH, [HASH], HASH),  # type: ignore[arg-type]
        lambda: verify_inclusion(0, 1, "x" * 32, [], HASH),  # type: ignore[arg-type]
        lambda: verify_consistency(0, 0, [], empty_root(), empty_root()),
        lambda: verify_consistency(0, 5, [], empty_root(), HASH),
        lambda: verify_consistency(6, 5, [HASH], HASH, HASH),
        lambda: verify_consistency(-1, 5, [HASH], HASH, HASH),
        lambda: verify_consistency(5, MAX_TREE_SIZE + 1, [HASH], HASH, HASH),
        lambda: verify_consistency(5, 5, [HASH], HASH, HASH),
        lambda: verify_consistency(5, 5, [], HASH, flip(HASH)),
        lambda: verify_consistency(5, 5, None, HASH, HASH),  # type: ignore[arg-type]
        lambda: verify_consistency(3, 2**63, [HASH] * 64, HASH, HASH),
        lambda: verify_consistency(2**63 - 1, 2**64 - 1, [HASH] * 200, HASH, HASH),
        lambda: verify_consistency(3, 5, [], HASH, HASH),
        lambda: verify_consistency(3, 5, [HASH] * 3, HASH[:31], HASH),
        lambda: verify_consistency(3, 5, [HASH, HASH, b""], HASH, HASH),
    ],
)
def test_hostile_input_raises_proof_invalid(call: Callable[[], None]) -> None:
    with pytest.raises(ProofInvalid) as caught:
        call()
    assert isinstance(caught.value, VerificationError)
    assert str(caught.value)


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(-(2**70), 2**70) | st.integers(0, 64),
    size=st.integers(-(2**70), 2**70) | st.integers(0, 64),
    leaf=st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE) | st.binary(max_size=40),
    proof=st.lists(st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE) | st.binary(), max_size=70),
    root=st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE) | st.binary(max_size=40),
)
def test_random_garbage_never_escapes_proof_invalid(
    index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes
) -> None:
    assert inclusion_rejected(index, size, leaf, proof, root)
    # The one acceptable garbage: equal sizes, no proof, equal roots (see
    # verify_consistency and the sizes-are-equal-one-and-proof-is-empty vector).
    trivially_consistent = 0 < index == size <= MAX_TREE_SIZE and not proof and leaf == root
    assert consistency_rejected(index, size, proof, leaf, root) != trivially_consistent


def test_the_repository_copy_of_the_vectors_is_the_shared_set() -> None:
    if not (SHARED_VECTORS / "merkle").is_dir():
        pytest.skip(f"no shared vectors beside this checkout ({SHARED_VECTORS})")

    def contents(root: Path) -> dict[str, bytes]:
        return {
            str(path.relative_to(root)): path.read_bytes()
            for path in sorted((root / "merkle").rglob("*.json"))
        }

    assert contents(VENDORED_VECTORS) == contents(SHARED_VECTORS)


# -- ranges: many leaves from the proofs of the first and the last ------------


@st.composite
def ranges_in_trees(draw: st.DrawFn) -> tuple[int, int, int]:
    size = draw(st.integers(1, 200))
    start = draw(st.integers(0, size - 1))
    count = draw(st.integers(1, size - start))
    return size, start, count


def _leaves_and_nodes(size: int) -> tuple[list[bytes], dict[NodeId, bytes]]:
    leaves = [leaf_hash(f"leaf {n}".encode()) for n in range(size)]
    return leaves, append_leaves(0, {}, leaves)


@given(ranges_in_trees())
def test_a_range_with_its_boundary_proofs_gives_the_root_of_all_leaves(
    case: tuple[int, int, int],
) -> None:
    size, start, count = case
    leaves, nodes = _leaves_and_nodes(size)
    first = inclusion_proof(start, size, nodes)
    last = inclusion_proof(start + count - 1, size, nodes)
    span = leaves[start : start + count]
    assert root_from_range(start, size, span, first, last) == root_from_leaves(leaves)
    verify_range(start, size, span, first, last, root_from_leaves(leaves))


@given(ranges_in_trees(), st.data())
def test_any_changed_leaf_of_a_range_is_refused(
    case: tuple[int, int, int], data: st.DataObject
) -> None:
    size, start, count = case
    leaves, nodes = _leaves_and_nodes(size)
    first = inclusion_proof(start, size, nodes)
    last = inclusion_proof(start + count - 1, size, nodes)
    span = leaves[start : start + count]
    changed = data.draw(st.integers(0, count - 1))
    span[changed] = leaf_hash(b"another record")
    with pytest.raises(ProofInvalid):
        verify_range(start, size, span, first, last, root_from_leaves(leaves))
    # The reference agrees: that leaf alone is not included.
    with pytest.raises(ProofInvalid):
        verify_inclusion(
            start + changed,
            size,
            span[changed],
            inclusion_proof(start + changed, size, nodes),
            root_from_leaves(leaves),
        )


@given(ranges_in_trees(), st.data())
def test_a_changed_hash_outside_the_range_is_refused(
    case: tuple[int, int, int], data: st.DataObject
) -> None:
    size, start, count = case
    if count == size:
        return  # every subtree is hashed from the leaves: the proofs carry nothing used
    leaves, nodes = _leaves_and_nodes(size)
    first = inclusion_proof(start, size, nodes)
    last = inclusion_proof(start + count - 1, size, nodes)
    end = start + count
    used = [
        (which, n)
        for which, index in ((0, start), (1, end - 1))
        for n, (low, high) in enumerate(inclusion_ranges(index, size))
        if high <= start or end <= low
    ]
    which, n = data.draw(st.sampled_from(used))
    proofs = [list(first), list(last)]
    proofs[which][n] = node_hash(proofs[which][n], proofs[which][n])
    with pytest.raises(ProofInvalid):
        verify_range(start, size, leaves[start:end], proofs[0], proofs[1], root_from_leaves(leaves))


@pytest.mark.parametrize(
    ("start", "size", "count", "first_length", "reason"),
    [
        (0, 4, 0, 2, "not a range"),
        (3, 4, 2, 2, "not a range"),
        (-1, 4, 1, 2, "not a range"),
        (0, 4, 2, 1, "wrong proof length"),
    ],
)
def test_malformed_ranges_and_proofs_are_refused(
    start: int, size: int, count: int, first_length: int, reason: str
) -> None:
    _, nodes = _leaves_and_nodes(size)
    span = [leaf_hash(b"x")] * count
    first = [bytes(HASH_SIZE)] * first_length
    last = inclusion_proof(min(size - 1, max(0, start + count - 1)), size, nodes)
    with pytest.raises(ProofInvalid, match=reason):
        root_from_range(start, size, span, first, last)
