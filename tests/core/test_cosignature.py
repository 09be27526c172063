"""Witness cosignatures, C2SP tlog-cosignature v1 Ed25519 (format §7).

No public vector of a whole v1 cosignature (key, checkpoint, timestamp and
signature together) was found: transparency-dev/formats (note/
note_cosigv1_test.go) signs with keys it generates per run. It does publish
a real witness's verifier key, whose key id checks the 0x04 key id rule, and
a cosignature whose timestamp it reads; both are used below. The rest is
checked against the spec's definitions, computed here by hand.
"""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from ledger.core.checkpoint import NoteSignature
from ledger.core.cosignature import (
    Cosignature,
    CosignerKey,
    Witness,
    cosigned_message,
    verified_cosignatures,
)
from ledger.core.errors import CheckpointInvalid
from ledger.core.signing import VerifierKey

# transparency-dev/formats note/note_cosigv1_test.go, TestCoSigV1NewVerifier:
# "native algEd25519CosignatureV1 verifier", a witness of the public network.
REMORA = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
# ... and TestCosignatureTimestamp: a cosignature blob whose timestamp is 1727964367.
TIMESTAMPED_BLOB = (
    "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyoc"
    "WODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=="
)
# ... TestCoSigV1NewVerifier "works: convert from algEd25519": a note (0x01) key.
ED25519_NOTE_KEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"

BODY = b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SEED = bytes(range(32))


def witness() -> Witness:
    return Witness(
        name="witness.example/w1", private_key=Ed25519PrivateKey.from_private_bytes(SEED)
    )


def test_a_published_witness_key_parses_and_its_key_id_is_the_0x04_rule() -> None:
    key = CosignerKey.from_string(REMORA)
    assert key.name == "remora.n621.de"
    by_hand = hashlib.sha256(b"remora.n621.de\n\x04" + key.public_key).digest()[:4]
    assert key.key_id == by_hand == bytes.fromhex("da77ade7")
    assert key.to_string() == REMORA


def test_a_published_cosignature_line_reads_its_timestamp() -> None:
    cosignature = Cosignature.from_line(f"\u2014 some.witness {TIMESTAMPED_BLOB}\n")
    assert cosignature.timestamp == 1727964367
    assert cosignature.key_id == base64.b64decode(TIMESTAMPED_BLOB)[:4]
    assert len(cosignature.signature) == 64
    assert cosignature.to_line() == f"\u2014 some.witness {TIMESTAMPED_BLOB}\n"


def test_a_note_key_is_not_a_cosigner_key_and_the_other_way_round() -> None:
    with pytest.raises(ValueError, match="algorithm 4"):
        CosignerKey.from_string(ED25519_NOTE_KEY)
    with pytest.raises(ValueError):
        VerifierKey.from_string(REMORA)
    # One Ed25519 key under both types gets two key ids: the type byte is hashed in.
    w = witness()
    note_key = VerifierKey(name=w.name, public_key=w.verifier.public_key)
    assert note_key.key_id != w.verifier.key_id


def test_the_signed_message_is_the_spec_example() -> None:
    assert cosigned_message(BODY, 1679315147) == (
        b"cosignature/v1\n"
        b"time 1679315147\n"
        b"example.com/behind-the-sofa\n"
        b"20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    with pytest.raises(ValueError):
        cosigned_message(BODY, 2**63)
    with pytest.raises(ValueError):
        cosigned_message(BODY, -1)


def test_a_cosignature_line_is_key_id_big_endian_time_and_the_ed25519_signature() -> None:
    w = witness()
    cosignature = w.cosign(BODY, 1679315147)
    line = cosignature.to_line()
    name, blob = line.removeprefix("\u2014 ").removesuffix("\n").split(" ")
    raw = base64.b64decode(blob)
    assert name == w.name
    assert len(raw) == 4 + 8 + 64
    assert (
        raw[:4] == hashlib.sha256(b"witness.example/w1\n\x04" + w.verifier.public_key).digest()[:4]
    )
    assert struct.unpack(">Q", raw[4:12]) == (1679315147,)
    expected = w.private_key.sign(cosigned_message(BODY, 1679315147))
    assert raw[12:] == expected
    w.private_key.public_key().verify(raw[12:], b"cosignature/v1\ntime 1679315147\n" + BODY)
    assert Cosignature.from_line(line) == cosignature


@given(body=st.binary(min_size=1, max_size=200), timestamp=st.integers(1, 2**63 - 1))
def test_a_cosignature_verifies_for_its_body_and_time_only(body: bytes, timestamp: int) -> None:
    w = witness()
    cosignature = w.cosign(body, timestamp)
    w.verifier.verify(cosignature, body)
    with pytest.raises(CheckpointInvalid):
        w.verifier.verify(cosignature, body + b"x")
    moved = Cosignature(
        name=cosignature.name,
        key_id=cosignature.key_id,
        timestamp=timestamp - 1 if timestamp > 1 else 2,
        signature=cosignature.signature,
    )
    with pytest.raises(CheckpointInvalid):
        w.verifier.verify(moved, body)


def test_a_witness_never_cosigns_at_time_zero() -> None:
    with pytest.raises(ValueError):
        witness().cosign(BODY, 0)


@pytest.mark.parametrize(
    "blob",
    [
        base64.b64encode(bytes(4 + 8 + 63)).decode(),  # short
        base64.b64encode(bytes(4 + 8 + 65)).decode(),  # long
        base64.b64encode(bytes(4) + struct.pack(">Q", 2**63) + bytes(64)).decode(),  # time
    ],
)
def test_malformed_cosignatures_are_refused(blob: str) -> None:
    with pytest.raises(CheckpointInvalid):
        Cosignature.from_line(f"\u2014 w {blob}\n")


def test_verified_cosignatures_ignores_strangers_and_refuses_a_bad_trusted_line() -> None:
    w, other = witness(), Witness.generate("witness.example/w2")
    stranger = Witness.generate("witness.example/w3")
    log_line = NoteSignature(name="log", key_id=b"abcd", signature=b"x" * 64)
    lines = [
        log_line,
        w.cosign(BODY, 10).to_note_signature(),
        stranger.cosign(BODY, 11).to_note_signature(),
        other.cosign(BODY, 12).to_note_signature(),
    ]
    found = verified_cosignatures(BODY, lines, [w.verifier, other.verifier])
    assert {key.name: c.timestamp for key, c in found.items()} == {
        "witness.example/w1": 10,
        "witness.example/w2": 12,
    }
    forged = Cosignature(
        name=w.name, key_id=w.verifier.key_id, timestamp=10, signature=bytes(64)
    ).to_note_signature()
    with pytest.raises(CheckpointInvalid):
        verified_cosignatures(BODY, [*lines, forged], [w.verifier])
    # Same name, another key: not the trusted key, ignored.
    impostor = Witness.generate(w.name).cosign(BODY, 13).to_note_signature()
    assert verified_cosignatures(BODY, [impostor], [w.verifier]) == {}
