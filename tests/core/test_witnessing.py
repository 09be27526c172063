"""The witness protocol's messages and its cosigning rule (C2SP tlog-witness, format §7)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.checkpoint import Checkpoint, sign
from ledger.core.cosignature import Witness
from ledger.core.errors import (
    InconsistentCheckpoint,
    OldSizeMismatch,
    SubmissionMalformed,
    UntrustedCheckpoint,
    WitnessRefusal,
    WitnessReplyInvalid,
)
from ledger.core.hashing import empty_root
from ledger.core.signing import Signer
from ledger.core.witnessing import (
    MAX_PROOF_LINES,
    AddCheckpoint,
    CheckpointNote,
    add_checkpoint_body,
    check_extends,
    origin_hash,
    parse_add_checkpoint,
    parse_cosignature_lines,
    parse_size_body,
    size_body,
    trusted_log_signatures,
)
from tests.witnesses import TestLog

# The request example of C2SP tlog-witness, "add-checkpoint".
SPEC_REQUEST = (
    "old 20852014\n"
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
    "\n"
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5"
    "/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "\u2014 example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks"
    "+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n"
).encode()

LOG = TestLog()
LOG.grow(64)
FORK = TestLog(origin=LOG.origin, signer=LOG.signer, fork="fork")
FORK.grow(64)


def test_the_spec_example_request_parses() -> None:
    request = parse_add_checkpoint(SPEC_REQUEST)
    assert request.old_size == 20852014
    assert base64.b64encode(request.proof[0]).decode() == (
        "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw="
    )
    assert len(request.proof) == 4
    note = request.checkpoint
    assert (note.origin, note.size, note.extensions) == (
        "example.com/behind-the-sofa",
        20852163,
        (),
    )
    assert note.body == SPEC_REQUEST.split(b"\n\n")[1] + b"\n"
    assert [s.name for s in note.signatures] == ["example.com/behind-the-sofa"] * 2
    # Built back from its parts, byte for byte.
    proof, text = request.proof, SPEC_REQUEST.decode().split("\n\n", 1)[1]
    assert add_checkpoint_body(request.old_size, proof, text) == SPEC_REQUEST


@settings(max_examples=50)
@given(
    old=st.integers(0, 64),
    extensions=st.lists(st.text("abc xyz/+=", min_size=1, max_size=10), max_size=3),
)
def test_requests_round_trip(old: int, extensions: list[str]) -> None:
    log = TestLog(origin=LOG.origin, signer=LOG.signer, extensions=tuple(extensions))
    log.nodes, log.size = LOG.nodes, LOG.size
    body = log.request(old)
    request = parse_add_checkpoint(body)
    assert request.old_size == old
    assert list(request.proof) == log.proof(old)
    assert request.checkpoint.extensions == tuple(extensions)
    assert request.checkpoint.body == log.body()
    assert request.checkpoint.to_text() == log.note()


def test_the_ledgers_own_checkpoints_are_checkpoints_with_one_extension_line() -> None:
    signer = Signer.generate("ledger.test/talks")
    checkpoint = Checkpoint(
        origin="ledger.test/talks", tree_size=3, root=bytes(32), head_hash="ab" * 32
    )
    text = sign(checkpoint, [signer]).to_text()
    note = CheckpointNote.parse(text)
    assert note.extensions == ("chain " + "ab" * 32,)
    assert note.body == checkpoint.body()
    assert trusted_log_signatures(note, [signer.verifier]) == note.signatures


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty line"),
        (b"old 1\n", "empty line"),
        (b"old  1\n\n", "decimal"),
        (b"old 01\n\n", "decimal"),
        (b"old 18446744073709551616\n\n", "decimal"),
        (b"size 1\n\n", "old <size>"),
        (b"old 1\n" + b"A" * 42 + b"==\n\n", "32-byte"),
        (b"old 1\nAAAA AAAA\n\n", "base64"),
        (b"old 0\n\n\xff\n", "UTF-8"),
        (b"old 0\n\nonly-origin\n\n\xe2\x80\x94 k AAAAAAA=\n", "origin, a size and a root"),
        (b"old 0\n\no\n1\n" + base64.b64encode(bytes(32)) + b"\n", "blank line"),
        (b"old 0\n\no\n1\n" + base64.b64encode(bytes(32)) + b"\n\n", "blank line"),
        (b"old 0\n\no\n1\n" + base64.b64encode(bytes(32)) + b"\n\n\xe2\x80\x94 k\n", "signature"),
        (b"old 0\n\no\n1\n" + base64.b64encode(bytes(32)) + b"\n\n- k AAAAAAA=\n", "em dash"),
        (b"old 0\n\no\n1\n" + base64.b64encode(bytes(32)) + b"\n\n\xe2\x80\x94 k AAAA\n", "key id"),
        (b"old 0\n\no\tx\n1\n" + base64.b64encode(bytes(32)) + b"\n\n", "control"),
        (
            b"old 2\n\no\n1\n" + base64.b64encode(bytes(32)) + b"\n\n\xe2\x80\x94 k AAAAAAA=\n",
            "over",
        ),
    ],
)
def test_malformed_requests_name_what_is_wrong(body: bytes, reason: str) -> None:
    with pytest.raises(SubmissionMalformed, match=reason):
        parse_add_checkpoint(body)


def test_at_most_63_proof_lines() -> None:
    line = base64.b64encode(bytes(32)) + b"\n"
    note = LOG.note().encode()
    assert len(parse_add_checkpoint(b"old 1\n" + line * MAX_PROOF_LINES + b"\n" + note).proof) == 63
    with pytest.raises(SubmissionMalformed, match="over 63"):
        parse_add_checkpoint(b"old 1\n" + line * 64 + b"\n" + note)


def test_only_trusted_keys_signatures_count_and_a_bad_one_spoils_the_note() -> None:
    note = CheckpointNote.parse(LOG.note())
    other = Signer.generate(LOG.signer.name)
    assert trusted_log_signatures(note, [LOG.signer.verifier, other.verifier]) == note.signatures
    with pytest.raises(UntrustedCheckpoint, match="no signature"):
        trusted_log_signatures(note, [other.verifier])
    forged = CheckpointNote.parse(LOG.note().replace(str(LOG.size), str(LOG.size - 1), 1))
    with pytest.raises(UntrustedCheckpoint, match="does not verify"):
        trusted_log_signatures(forged, [LOG.signer.verifier])


def _request(log: TestLog, old: int, size: int) -> AddCheckpoint:
    return parse_add_checkpoint(log.request(old, size))


def _latest(size: int) -> CheckpointNote:
    return CheckpointNote.parse(LOG.note(size))


@given(sizes=st.lists(st.integers(1, 64), min_size=2, max_size=2, unique=True).map(sorted))
def test_a_proved_extension_is_accepted_and_a_fork_never_is(sizes: list[int]) -> None:
    old, new = sizes
    check_extends(_request(LOG, old, new), _latest(old))
    check_extends(_request(LOG, new, new), _latest(new))
    with pytest.raises(InconsistentCheckpoint):
        check_extends(_request(FORK, old, new), _latest(old))
    with pytest.raises(InconsistentCheckpoint):
        check_extends(_request(FORK, new, new), _latest(new))


@given(latest=st.integers(0, 64), old=st.integers(0, 64))
def test_an_old_size_other_than_the_latest_is_a_conflict_naming_it(latest: int, old: int) -> None:
    if old == latest:
        return
    request = _request(LOG, old, 64)
    with pytest.raises(OldSizeMismatch) as raised:
        check_extends(request, _latest(latest) if latest else None)
    assert raised.value.size == latest


def test_the_empty_tree_and_old_size_zero() -> None:
    empty = parse_add_checkpoint(LOG.request(0, 0))
    assert empty.checkpoint.root == empty_root()
    check_extends(empty, None)
    check_extends(empty, _latest(0))
    not_empty = parse_add_checkpoint(add_checkpoint_body(0, [], LOG.note(0, root=bytes(32))))
    with pytest.raises(InconsistentCheckpoint, match="empty tree"):
        check_extends(not_empty, None)
    with_proof = parse_add_checkpoint(add_checkpoint_body(0, LOG.proof(3, 9), LOG.note(9)))
    with pytest.raises(InconsistentCheckpoint, match="must be empty"):
        check_extends(with_proof, None)
    check_extends(_request(LOG, 0, 9), None)


def test_a_wrong_proof_is_inconsistent() -> None:
    proof = LOG.proof(5, 40)
    for bad in ([], proof[:-1], [*proof, proof[0]], [bytes(32), *proof[1:]]):
        request = parse_add_checkpoint(add_checkpoint_body(5, bad, LOG.note(40)))
        with pytest.raises(InconsistentCheckpoint):
            check_extends(request, _latest(5))
    same_size_with_proof = parse_add_checkpoint(add_checkpoint_body(5, [bytes(32)], LOG.note(5)))
    with pytest.raises(InconsistentCheckpoint):
        check_extends(same_size_with_proof, _latest(5))


def test_a_conflict_body_is_the_size_and_a_newline() -> None:
    assert size_body(20852163) == b"20852163\n"
    assert parse_size_body(b"20852163\n") == 20852163
    assert parse_size_body(b"0\n") == 0
    for bad in (b"", b"12", b"012\n", b"-1\n", b"1 \n", b"18446744073709551616\n", b"\xff\n"):
        with pytest.raises(WitnessReplyInvalid):
            parse_size_body(bad)


def test_cosignature_lines_of_an_answer() -> None:
    witness = Witness.generate("witness.example/w1")
    cosignature = witness.cosign(LOG.body(), 1_800_000_000)
    other_type = "\u2014 witness.example/w9 " + base64.b64encode(bytes(4 + 100)).decode() + "\n"
    body = (cosignature.to_line() + other_type).encode()
    assert parse_cosignature_lines(body) == (cosignature,)
    for bad in (b"", b"\n", b"not a line\n", cosignature.to_line().encode()[:-1], b"\xff\n"):
        with pytest.raises(WitnessReplyInvalid):
            parse_cosignature_lines(bad)


def test_the_monitoring_path_names_a_log_by_its_origins_sha256() -> None:
    assert origin_hash("example.com/behind-the-sofa") == (
        hashlib.sha256(b"example.com/behind-the-sofa").hexdigest()
    )


def _decide(body: bytes) -> None:
    """The witness's whole decision on ``body`` against ``LOG`` cosigned at size 5."""
    request = parse_add_checkpoint(body)
    trusted_log_signatures(request.checkpoint, [LOG.signer.verifier])
    check_extends(request, _latest(5))


@settings(max_examples=300)
@given(body=st.binary(max_size=300))
def test_any_bytes_are_refused_with_a_witness_refusal_only(body: bytes) -> None:
    with pytest.raises(WitnessRefusal):
        _decide(body)


@settings(max_examples=300)
@given(data=st.data())
def test_a_damaged_request_is_refused_with_a_witness_refusal_only(data: st.DataObject) -> None:
    body = bytearray(LOG.request(5, 20))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(body) - 1))
        body[at] = data.draw(st.integers(0, 255))
    try:
        _decide(bytes(body))
    except WitnessRefusal:
        return
    # Accepted: then it is the very request (a damaged one cannot pass the signature).
    assert parse_add_checkpoint(bytes(body)).checkpoint.body == LOG.body(20)
