"""The stored Merkle tree, proofs and checkpoints (format §2-3), on every backend."""

from __future__ import annotations

import base64
import random

import pytest

from ledger.core import checkpoint as notes
from ledger.core.errors import InvalidParameter, NotFound, VerificationError
from ledger.core.hashing import GENESIS_PREV, empty_root, leaf_hash, record_hash
from ledger.core.jsonvalues import loads_strict
from ledger.core.merkle import root_from_leaves, verify_consistency, verify_inclusion
from ledger.core.records import Record
from ledger.core.signing import Signer, VerifierKey, follow_rotation
from ledger.service import LedgerService
from ledger.store.recorder import Recorder
from tests.conftest import ORIGIN
from tests.storage import sample_events

LEDGER = "talks"


def fill(service: LedgerService, sizes: list[int]) -> list[bytes]:
    return sample_events.fill(service, LEDGER, sizes)


def trusted(service: LedgerService) -> list[VerifierKey]:
    return [VerifierKey.from_string(k.verifier_key) for k in service.list_keys()]


def test_every_proof_up_to_size_64_verifies(service: LedgerService) -> None:
    lines = fill(service, [1, 2, 3, 5, 8, 13, 32])  # appends of uneven sizes
    leaves = [leaf_hash(line) for line in lines]
    roots = {size: root_from_leaves(leaves[:size]) for size in range(1, 65)}
    for size in range(1, 65):
        for seq in range(1, size + 1):
            proof = service.inclusion(LEDGER, seq=seq, tree_size=size)
            assert proof.root == roots[size]
            verify_inclusion(seq - 1, size, leaves[seq - 1], proof.proof, roots[size])
        for size1 in range(1, size + 1):
            consistency = service.consistency(LEDGER, size1=size1, size2=size)
            assert (consistency.root1, consistency.root2) == (roots[size1], roots[size])
            verify_consistency(size1, size, consistency.proof, roots[size1], roots[size])


def test_random_proofs_on_a_10000_record_ledger_verify(service: LedgerService) -> None:
    lines = fill(service, [1000] * 9 + [999, 1])
    leaves = [leaf_hash(line) for line in lines]
    rng = random.Random(9162)
    sizes = sorted({rng.randint(1, 10_000) for _ in range(40)} | {10_000})
    roots = {size: root_from_leaves(leaves[:size]) for size in sizes}
    for size in sizes:
        for _ in range(5):
            seq = rng.randint(1, size)
            proof = service.inclusion(LEDGER, seq=seq, tree_size=size)
            verify_inclusion(seq - 1, size, leaves[seq - 1], proof.proof, roots[size])
        older = rng.choice([s for s in sizes if s <= size])
        consistency = service.consistency(LEDGER, size1=older, size2=size)
        verify_consistency(older, size, consistency.proof, roots[older], roots[size])


def test_proof_arguments_out_of_range_are_refused(service: LedgerService) -> None:
    fill(service, [10])
    with pytest.raises(NotFound):
        service.inclusion(LEDGER, seq=11, tree_size=None)
    with pytest.raises(InvalidParameter) as caught:
        service.inclusion(LEDGER, seq=5, tree_size=11)
    assert caught.value.field == "tree_size"
    with pytest.raises(InvalidParameter) as caught:
        service.inclusion(LEDGER, seq=5, tree_size=4)
    assert caught.value.field == "seq"
    with pytest.raises(InvalidParameter) as caught:
        service.consistency(LEDGER, size1=0, size2=5)
    assert caught.value.field == "from"
    with pytest.raises(InvalidParameter):
        service.consistency(LEDGER, size1=6, size2=5)
    with pytest.raises(InvalidParameter):
        service.consistency(LEDGER, size1=5, size2=11)


def test_every_append_signs_a_checkpoint_of_its_tree(service: LedgerService) -> None:
    lines = fill(service, [3, 4])
    note = notes.verify(service.checkpoint(LEDGER), trusted(service))
    checkpoint = note.checkpoint
    assert checkpoint.origin == f"ledger.test/{LEDGER}"
    assert checkpoint.tree_size == 7
    assert checkpoint.root == root_from_leaves([leaf_hash(line) for line in lines])
    assert checkpoint.head_hash == record_hash(lines[-1]) == service.get_ledger(LEDGER).head_hash
    stored = notes.verify(service.checkpoint(LEDGER, size=3), trusted(service)).checkpoint
    assert stored.tree_size == 3 and stored.head_hash == record_hash(lines[2])


def test_two_servers_appending_in_turn_sign_the_roots_of_their_leaves(
    service: LedgerService,
) -> None:
    # Each recorder remembers the frontier of the tree it last committed; the
    # other's appends must make it read the tree again, never reuse it.
    other = Recorder(database=service.recorder.db, origin=ORIGIN, signers=service.recorder.signers)
    service.create_ledger(LEDGER)
    sizes = []
    for turn, count in enumerate([1, 2, 3, 1, 4, 5, 2, 1]):
        writer = other if turn % 3 == 1 else service.recorder
        writer.append(LEDGER, sample_events.drafts(count, start=turn * 10), actor="t")
        sizes.append(service.get_ledger(LEDGER).size)
    other.close()
    leaves = [leaf_hash(line) for line in service.iter_records(LEDGER)]
    for size in sizes:
        note = notes.verify(service.checkpoint(LEDGER, size=size), trusted(service))
        assert note.checkpoint.root == root_from_leaves(leaves[:size])


def test_checkpoints_of_sizes_inside_a_batch_are_signed_on_demand(
    service: LedgerService,
) -> None:
    lines = fill(service, [10])
    for size in (0, 1, 5, 9):
        note = service.checkpoint(LEDGER, size=size)
        assert note == service.checkpoint(LEDGER, size=size)  # Ed25519 is deterministic
        checkpoint = notes.verify(note, trusted(service)).checkpoint
        assert checkpoint.tree_size == size
        leaves = [leaf_hash(line) for line in lines[:size]]
        assert checkpoint.root == (root_from_leaves(leaves) if size else empty_root())
        assert checkpoint.head_hash == (record_hash(lines[size - 1]) if size else GENESIS_PREV)
    with pytest.raises(NotFound):
        service.checkpoint(LEDGER, size=11)


def test_a_verifier_holding_only_the_old_key_follows_a_rotation(service: LedgerService) -> None:
    fill(service, [2])
    (old_key,) = trusted(service)
    rotation = service.rotate_key(actor="admin")
    assert rotation.old_key == old_key
    receipt = rotation.receipts[LEDGER]

    rotated = Record.from_dict(loads_strict(service.get_record(LEDGER, receipt.seq)))
    assert rotated.type == "key.rotated" and rotated.actor == "admin"
    new_key = follow_rotation(
        old_key, rotated.data["new_key"], base64.b64decode(rotated.data["endorsement"])
    )
    assert new_key == rotation.new_key

    # During the overlap both keys sign; each alone is enough.
    overlap = service.checkpoint(LEDGER)
    assert len(notes.SignedCheckpoint.from_text(overlap).signatures) == 2
    notes.verify(overlap, [old_key])
    notes.verify(overlap, [new_key])

    service.retire_key(old_key.key_id_hex)
    service.recorder.append(LEDGER, sample_events.drafts(1), actor="t")
    after = service.checkpoint(LEDGER)
    assert len(notes.SignedCheckpoint.from_text(after).signatures) == 1
    notes.verify(after, [new_key])
    with pytest.raises(VerificationError, match="no signature from a trusted key"):
        notes.verify(after, [old_key])
    statuses = {k.key_id: k.status for k in service.list_keys()}
    assert statuses == {old_key.key_id_hex: "retired", new_key.key_id_hex: "active"}


def test_an_endorsement_by_any_other_key_is_rejected(service: LedgerService) -> None:
    fill(service, [1])
    (old_key,) = trusted(service)
    rotation = service.rotate_key(actor="admin")
    record = Record.from_dict(
        loads_strict(service.get_record(LEDGER, rotation.receipts[LEDGER].seq))
    )
    impostor = Signer.generate(old_key.name)
    forged = impostor.sign(record.data["new_key"].encode())
    with pytest.raises(VerificationError):
        follow_rotation(old_key, record.data["new_key"], forged)
    with pytest.raises(VerificationError):
        follow_rotation(
            impostor.verifier, record.data["new_key"], base64.b64decode(record.data["endorsement"])
        )


def test_a_second_rotation_waits_for_the_first_to_end(service: LedgerService) -> None:
    from ledger.core.errors import Conflict

    fill(service, [1])
    service.rotate_key(actor="admin")
    with pytest.raises(Conflict):
        service.rotate_key(actor="admin")


def test_the_last_active_key_cannot_be_retired(service: LedgerService) -> None:
    from ledger.core.errors import Conflict

    (key,) = trusted(service)
    with pytest.raises(Conflict):
        service.retire_key(key.key_id_hex)
