"""docs/format.md agrees with the code: its worked example and its member tables.

The example's blocks are read from the page itself (fenced blocks whose info
string is ``<language> example:<name>``) and recomputed with ``ledger.core``,
so the page cannot drift from what the code produces.
"""

from __future__ import annotations

import base64
import json
import re
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.core.authors import (
    SIGNATURE_CONTEXT,
    AuthorMark,
    AuthorRegistry,
    sign_event,
    signed_bytes,
)
from ledger.core.bundle import (
    DOCUMENT_MANIFEST_MEMBERS,
    MANIFEST_MEMBERS,
    MEMBERS,
    TIMESTAMP_MEMBERS,
    WITNESSED_MEMBERS,
    document_member,
)
from ledger.core.canonical import canonical_bytes
from ledger.core.chain import verify_chain
from ledger.core.checkpoint import Checkpoint, sign, verify
from ledger.core.hashing import GENESIS_PREV, empty_root, leaf_hash
from ledger.core.jsonvalues import loads_strict
from ledger.core.merkle import (
    append_leaves,
    consistency_proof,
    inclusion_proof,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)
from ledger.core.positions import fold, sign_snapshot, snapshot_document, verify_snapshot_signature
from ledger.core.records import LEDGER_NAME_PATTERN, RECORD_MEMBERS, UUID_PATTERN, Record
from ledger.core.signing import Signer, VerifierKey

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "format.md"
LEDGER = "demo"
ORIGIN = "ledger.example.org/demo"
_BLOCK = re.compile(r"^```\w+ example:([\w-]+)\n(.*?)\n```$", re.MULTILINE | re.DOTALL)


@cache
def text() -> str:
    return DOC.read_text(encoding="utf-8")


@cache
def blocks() -> dict[str, str]:
    found: dict[str, str] = {}
    for match in _BLOCK.finditer(text()):
        name, body = match.group(1), match.group(2)
        assert name not in found, f"two example blocks named {name}"
        found[name] = body
    return found


def assignments(name: str) -> dict[str, str]:
    """A block of ``name = value`` lines, as a mapping."""
    pairs = (line.split("=", 1) for line in blocks()[name].splitlines())
    return {left.strip(): right.strip() for left, right in pairs}


def record_bytes() -> list[bytes]:
    return [blocks()[f"record-{n}"].encode("utf-8") for n in (1, 2)]


def records() -> list[Record]:
    return [Record.from_dict(loads_strict(line)) for line in record_bytes()]


def example_signer() -> Signer:
    seed = bytes.fromhex(assignments("key")["seed"])
    return Signer(name="ledger.example.org", private_key=Ed25519PrivateKey.from_private_bytes(seed))


def table_names(table: str) -> list[str]:
    """The backticked first cells of the table after ``<!-- table:<table> -->``."""
    after = text().split(f"<!-- table:{table} -->\n", 1)[1]
    rows = []
    for line in after.splitlines():
        if not line.startswith("|"):
            break
        rows.append(line)
    names = [re.match(r"\|\s*`([^`]+)`", row) for row in rows[2:]]
    assert all(names), f"a row of table {table} does not start with a `name`"
    return [name.group(1) for name in names if name]


def test_the_page_holds_every_example_block() -> None:
    assert set(blocks()) == {
        "key",
        "record-1",
        "record-2",
        "hashes",
        "inclusion",
        "consistency",
        "checkpoint",
        "snapshot",
        "author-key",
        "author-event",
        "author-signed",
    }


def test_the_example_key_string_is_the_seed_key() -> None:
    assert example_signer().verifier.to_string() == assignments("key")["verifier key"]


def test_the_example_records_are_canonical_well_formed_and_chained() -> None:
    lines = record_bytes()
    for seq, (line, record) in enumerate(zip(lines, records(), strict=True), start=1):
        assert canonical_bytes(loads_strict(line)) == line
        assert record.canonical() == line
        assert record.seq == seq and record.ledger == LEDGER
    assert records()[0].prev == GENESIS_PREV
    assert verify_chain(lines, ledger=LEDGER) == records()[1].hash()


def test_the_example_hashes_and_roots_are_recomputed() -> None:
    lines = record_bytes()
    r1, r2 = records()
    leaves = [leaf_hash(line) for line in lines]
    assert assignments("hashes") == {
        "H(r1)": r1.hash(),
        "H(r2)": r2.hash(),
        "leaf(r1)": leaves[0].hex(),
        "leaf(r2)": leaves[1].hex(),
        "root(1)": root_from_leaves(leaves[:1]).hex(),
        "root(2)": root_from_leaves(leaves).hex(),
        "root(0)": empty_root().hex(),
    }
    assert r2.prev == r1.hash()


def test_the_example_proofs_are_the_ones_the_tree_gives_and_verify() -> None:
    leaves = [leaf_hash(line) for line in record_bytes()]
    nodes = append_leaves(0, {}, leaves)
    root1, root2 = root_from_leaves(leaves[:1]), root_from_leaves(leaves)

    def b64(digest: bytes) -> str:
        return base64.b64encode(digest).decode("ascii")

    inclusion = json.loads(blocks()["inclusion"])
    assert inclusion == {
        "seq": 1,
        "tree_size": 2,
        "leaf_index": 0,
        "proof": [b64(h) for h in inclusion_proof(0, 2, nodes)],
        "root": b64(root2),
    }
    verify_inclusion(0, 2, leaves[0], [base64.b64decode(h) for h in inclusion["proof"]], root2)

    consistency = json.loads(blocks()["consistency"])
    assert consistency == {
        "from": 1,
        "to": 2,
        "proof": [b64(h) for h in consistency_proof(1, 2, nodes)],
        "root1": b64(root1),
        "root2": b64(root2),
    }
    proof = [base64.b64decode(h) for h in consistency["proof"]]
    verify_consistency(1, 2, proof, root1, root2)


def test_the_example_checkpoint_is_signed_by_the_example_key() -> None:
    note = blocks()["checkpoint"] + "\n"
    leaves = [leaf_hash(line) for line in record_bytes()]
    checkpoint = Checkpoint(
        origin=ORIGIN, tree_size=2, root=root_from_leaves(leaves), head_hash=records()[1].hash()
    )
    signer = example_signer()
    assert sign(checkpoint, [signer]).to_text() == note
    key = VerifierKey.from_string(assignments("key")["verifier key"])
    assert verify(note, [key]).checkpoint == checkpoint


def test_the_example_snapshot_is_the_fold_of_the_records_signed() -> None:
    shown = blocks()["snapshot"].encode("utf-8")
    leaves = [leaf_hash(line) for line in record_bytes()]
    document = snapshot_document(
        ledger=LEDGER,
        as_of=None,
        known_at=2,
        merkle_root=root_from_leaves(leaves),
        positions=fold(records(), known_at=2),
    )
    signed = sign_snapshot(document, example_signer())
    assert canonical_bytes(signed) == shown
    verify_snapshot_signature(json.loads(shown), example_signer().verifier)


def test_the_example_author_signature_is_the_desk_keys_over_the_signed_bytes() -> None:
    key = assignments("author-key")
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(key["seed"]))
    desk = VerifierKey.from_public_key("ua-desk", private.public_key())
    assert desk.to_string() == key["verifier key"]
    posted = json.loads(blocks()["author-event"])
    assert canonical_bytes(posted) == blocks()["author-event"].encode("utf-8")
    event = {name: value for name, value in posted.items() if name != "author"}
    message = signed_bytes({**event, "ledger": LEDGER})
    assert message == blocks()["author-signed"].encode("utf-8")
    assert message.startswith(SIGNATURE_CONTEXT)
    assert posted["author"] == sign_event(private, "ua-desk", LEDGER, event)
    registry = AuthorRegistry()
    registry.register(desk, seq=1)
    registry.check(AuthorMark.from_value(posted["author"]), message)


def test_the_member_tables_list_what_the_code_reads() -> None:
    assert sorted(table_names("record-members")) == sorted(RECORD_MEMBERS)
    manifest = MANIFEST_MEMBERS | DOCUMENT_MANIFEST_MEMBERS
    assert sorted(table_names("manifest-members")) == sorted(manifest)
    assert sorted(table_names("document-manifest-members")) == sorted(DOCUMENT_MANIFEST_MEMBERS)
    # Bundle members are listed in the order the tar must hold them.
    assert table_names("bundle-members") == list(MEMBERS)
    assert table_names("witnessed-members") == list(WITNESSED_MEMBERS)
    assert table_names("timestamp-members") == list(TIMESTAMP_MEMBERS)
    # One order when a bundle holds every optional group: witnessed, timestamp, documents.
    optional = [*WITNESSED_MEMBERS, *TIMESTAMP_MEMBERS, document_member("<sha256>")]
    assert table_names("bundle-order") == [*MEMBERS, *optional]


def test_the_patterns_on_the_page_are_the_code_and_schema_patterns() -> None:
    common = json.loads((ROOT / "schemas" / "common.json").read_text(encoding="utf-8"))
    patterns = [
        *(f"^{p.pattern[2:-2]}$" for p in (LEDGER_NAME_PATTERN, UUID_PATTERN)),
        common["$defs"]["party"]["pattern"],
        common["$defs"]["topic"]["pattern"],
    ]
    for pattern in patterns:
        assert f"`{pattern}`" in text(), pattern
