"""KeyTrail: the keys a verifier trusts, grown only by endorsed rotations (format §3)."""

from __future__ import annotations

import base64
import uuid
from dataclasses import replace
from itertools import pairwise

import pytest

from ledger.core.errors import RotationInvalid
from ledger.core.hashing import GENESIS_PREV, record_hash
from ledger.core.record_lines import check_run
from ledger.core.records import Record
from ledger.core.signing import Signer, endorse
from ledger.core.verification import KeyTrail, LogVerifier, UnnamedKey


def rotation(seq: int, old: Signer, new: Signer, *, endorser: Signer | None = None) -> Record:
    signature = endorse(endorser or old, new.verifier)
    return Record(
        ledger="talks",
        seq=seq,
        id=str(uuid.uuid4()),
        type="key.rotated",
        occurred_at="2025-03-01T00:00:00Z",
        recorded_at="2025-03-01T00:00:00.000000Z",
        data={
            "new_key": new.verifier.to_string(),
            "old_key": old.verifier.to_string(),
            "endorsement": base64.b64encode(signature).decode(),
        },
        actor="admin",
        prev=GENESIS_PREV,
    )


def test_a_key_the_given_key_endorsed_is_trusted() -> None:
    old, new = Signer.generate("vm"), Signer.generate("vm")
    trail = KeyTrail(old.verifier)
    assert not trail.trusts(new.verifier)
    trail.see(rotation(5, old, new))
    assert trail.trusts(new.verifier)
    assert trail.find("vm", new.verifier.key_id_hex) == new.verifier
    assert [r.seq for r in trail.path_to(new.verifier)] == [5]


def test_rotations_are_followed_in_a_row_and_from_a_pem_key() -> None:
    first, second, third = (Signer.generate(name) for name in ("a", "b", "c"))
    trail = KeyTrail(UnnamedKey(first.verifier.public_key))
    trail.see(rotation(3, first, second))
    trail.see(rotation(9, second, third))
    assert [(r.old, r.new) for r in trail.path_to(third.verifier)] == [
        (first.verifier, second.verifier),
        (second.verifier, third.verifier),
    ]
    assert trail.path_to(first.verifier) == []  # trusted as given, by no rotation


def test_a_rotation_from_a_key_not_trusted_is_passed_over() -> None:
    given, stranger, new = (Signer.generate("vm") for _ in range(3))
    trail = KeyTrail(given.verifier)
    trail.see(rotation(4, stranger, new))
    assert not trail.trusts(new.verifier) and trail.rotations == []


def test_a_rotation_from_a_trusted_key_with_a_false_endorsement_is_refused() -> None:
    old, new = Signer.generate("vm"), Signer.generate("vm")
    trail = KeyTrail(old.verifier)
    with pytest.raises(RotationInvalid, match="endorsement") as caught:
        trail.see(rotation(7, old, new, endorser=new))
    assert caught.value.seq == 7
    assert not trail.trusts(new.verifier)
    broken = rotation(8, old, new)
    broken.data["endorsement"] = "not base64!"
    with pytest.raises(RotationInvalid):
        trail.see(broken)


def test_a_run_holding_a_rotation_is_read_record_by_record() -> None:
    """The bulk path checks runs without building records; one holding a
    key.rotated record must be handed back, or the rotation goes unseen."""
    keys = [Signer.generate("vm") for _ in range(3)]
    lines: list[bytes] = []
    for seq, (old, new) in enumerate(pairwise(keys), start=1):
        record = replace(
            rotation(seq, old, new), prev=record_hash(lines[-1]) if lines else GENESIS_PREV
        )
        lines.append(record.canonical())
    run = check_run(b"\n".join(lines), ledger="talks", first_seq=1, merkle=True)
    assert run is not None and run.rotations == 2
    trail = KeyTrail(keys[0].verifier)
    log = LogVerifier(ledger="talks", keys=trail)
    assert not log.add_run(run) and log.last_seq == 0
    for line in lines:
        log.check_line(line)
    assert trail.followed == [keys[1].verifier, keys[2].verifier]
    # Without a trail to grow, the same run is taken whole.
    assert LogVerifier(ledger="talks").add_run(run)
