"""Stored witness cosignatures (docs/witnesses.md), on every backend: what the
witnessed checkpoint, the witnesses' progress and the integrity check read."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ledger.core.checkpoint import SignedCheckpoint
from ledger.core.cosignature import Witness, verified_cosignatures
from ledger.integrity import check_ledger
from ledger.runtime import Runtime
from ledger.store.cosignatures import CosignatureRow, CosignatureStore
from tests.storage import sample_events

LEDGER = "talks"
W1, W2, W3 = (Witness.generate(f"witness.test/w{i}") for i in (1, 2, 3))
KEYS = [w.verifier.to_string() for w in (W1, W2, W3)]


def cosign(runtime: Runtime, witness: Witness, size: int, timestamp: int = 1_800_000_000) -> None:
    note = runtime.service.checkpoint(LEDGER, size=size)
    body = SignedCheckpoint.from_text(note).checkpoint.body()
    line = witness.cosign(body, timestamp).to_line()
    row = CosignatureRow(
        tree_size=size,
        witness=witness.verifier.to_string(),
        signed_at=timestamp,
        line=line,
        received_at="2026-12-07T07:00:00.000000Z",
    )
    assert runtime.cosignatures.add(LEDGER, row)


@pytest.fixture
def store(runtime: Runtime) -> CosignatureStore:
    sample_events.fill(runtime.service, LEDGER, [2, 3, 4])  # checkpoints of sizes 2, 5, 9
    return runtime.cosignatures


def test_the_newest_checkpoint_of_each_ledger_is_offered(
    runtime: Runtime, store: CosignatureStore
) -> None:
    [target] = [t for t in store.checkpoints_to_witness() if t.ledger == LEDGER]
    assert target.tree_size == 9
    assert target.note == runtime.service.checkpoint(LEDGER)


def test_witnessed_is_the_newest_size_with_the_quorum(
    runtime: Runtime, store: CosignatureStore
) -> None:
    assert store.witnessed(LEDGER, witnesses=KEYS, quorum=2) is None
    cosign(runtime, W1, 2)
    cosign(runtime, W2, 2)
    cosign(runtime, W1, 5)
    cosign(runtime, W3, 9)
    witnessed = store.witnessed(LEDGER, witnesses=KEYS, quorum=2)
    assert witnessed is not None
    assert (witnessed.tree_size, witnessed.head) == (2, 9)
    note = SignedCheckpoint.from_text(witnessed.text())
    found = verified_cosignatures(
        note.checkpoint.body(), note.signatures, [W1.verifier, W2.verifier, W3.verifier]
    )
    assert set(found) == {W1.verifier, W2.verifier}
    # One witness suffices for a quorum of one: its newest.
    one = store.witnessed(LEDGER, witnesses=KEYS, quorum=1)
    assert one is not None and one.tree_size == 9
    # Only the witnesses asked about count, and at_most bounds the size.
    assert store.witnessed(LEDGER, witnesses=KEYS[2:], quorum=1, at_most=8) is None
    bounded = store.witnessed(LEDGER, witnesses=KEYS, quorum=1, at_most=8)
    assert bounded is not None and bounded.tree_size == 5
    assert store.witnessed("nonesuch", witnesses=KEYS, quorum=1) is None


def test_progress_is_each_witness_s_largest_size(runtime: Runtime, store: CosignatureStore) -> None:
    assert store.progress(LEDGER, KEYS) == {}
    cosign(runtime, W1, 2, timestamp=100)
    cosign(runtime, W1, 5, timestamp=200)
    cosign(runtime, W2, 2, timestamp=150)
    progress = store.progress(LEDGER, KEYS)
    assert {k: (p.tree_size, p.signed_at) for k, p in progress.items()} == {
        KEYS[0]: (5, 200),
        KEYS[1]: (2, 150),
    }


def test_a_cosignature_is_stored_once_and_never_changed(
    runtime: Runtime, store: CosignatureStore
) -> None:
    cosign(runtime, W1, 5)
    [(row, note)] = store.rows(LEDGER)
    assert note == runtime.service.checkpoint(LEDGER, size=5)
    assert not store.add(LEDGER, row)
    with pytest.raises(sa.exc.DBAPIError), runtime.database.write() as conn:
        conn.execute(sa.text("UPDATE checkpoint_cosignatures SET signed_at = 1"))
    with pytest.raises(sa.exc.DBAPIError), runtime.database.write() as conn:
        conn.execute(sa.text("DELETE FROM checkpoint_cosignatures"))


def test_the_integrity_check_verifies_every_stored_cosignature(
    runtime: Runtime, store: CosignatureStore
) -> None:
    cosign(runtime, W1, 2)
    cosign(runtime, W2, 5)
    assert check_ledger(runtime, LEDGER).valid
    # A line W3 signed over size 5's body, stored as if it were of size 9.
    body = SignedCheckpoint.from_text(runtime.service.checkpoint(LEDGER, size=5)).checkpoint.body()
    store.add(
        LEDGER,
        CosignatureRow(
            tree_size=9,
            witness=KEYS[2],
            signed_at=1_800_000_000,
            line=W3.cosign(body, 1_800_000_000).to_line(),
            received_at="2026-12-07T07:00:00.000000Z",
        ),
    )
    report = check_ledger(runtime, LEDGER)
    assert not report.valid
    assert report.reason is not None
    assert "tree size 9" in report.reason and "invalid" in report.reason
