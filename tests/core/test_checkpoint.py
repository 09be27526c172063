"""Signed notes and checkpoints (format §3): known answers, round trips, rejections."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from ledger.core import checkpoint as notes
from ledger.core.errors import VerificationError
from ledger.core.signing import Signer, VerifierKey, compute_key_id, endorse, follow_rotation

# golang.org/x/mod/sumdb/note's own test vector (note_test.go): the reference
# implementation of the verifier key format format §3 adopts.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
GO_SIGNATURE_BLOB = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)


def go_signer() -> Signer:
    return Signer(
        name="PeterNeumann", private_key=Ed25519PrivateKey.from_private_bytes(GO_SKEY_SEED)
    )


def test_the_verifier_key_string_matches_go_sumdb_note() -> None:
    assert go_signer().verifier.to_string() == GO_VKEY
    assert VerifierKey.from_string(GO_VKEY) == go_signer().verifier


def test_a_signature_line_matches_go_sumdb_note() -> None:
    signer = go_signer()
    blob = base64.b64encode(signer.verifier.key_id + signer.sign(GO_TEXT)).decode()
    assert blob == GO_SIGNATURE_BLOB


def test_the_key_id_is_computed_as_spec_section_3_says() -> None:
    key = go_signer().verifier
    by_hand = hashlib.sha256(b"PeterNeumann" + b"\n" + b"\x01" + key.public_key).digest()[:4]
    assert compute_key_id("PeterNeumann", key.public_key) == by_hand
    assert key.key_id_hex == "c74f20a3"


@pytest.mark.parametrize(
    "text",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong id
        "PeterNeumann+c74f20a3+AhpjZxDFPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong alg
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",  # short key
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # space
        "PeterNeumann+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "",
    ],
)
def test_malformed_verifier_keys_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        VerifierKey.from_string(text)


def checkpoint(size: int = 7) -> notes.Checkpoint:
    return notes.Checkpoint(
        origin="ledger.example.org/us-ua-minerals-2025",
        tree_size=size,
        root=hashlib.sha256(b"root").digest(),
        head_hash="ab" * 32,
    )


def test_a_checkpoint_note_has_the_exact_spec_layout() -> None:
    signer = go_signer()
    text = notes.sign(checkpoint(), [signer]).to_text()
    body, signature_line = text.split("\n\n")
    assert body + "\n" == (
        "ledger.example.org/us-ua-minerals-2025\n7\n"
        + base64.b64encode(hashlib.sha256(b"root").digest()).decode()
        + "\nchain "
        + "ab" * 32
        + "\n"
    )
    assert signature_line.startswith("\u2014 PeterNeumann ")
    assert signature_line.endswith("\n")
    blob = base64.b64decode(signature_line.split(" ")[2])
    assert blob[:4] == signer.verifier.key_id
    signer.verifier.verify(blob[4:], (body + "\n").encode())


@given(
    size=st.integers(min_value=0, max_value=2**53),
    root=st.binary(min_size=32, max_size=32),
    head=st.binary(min_size=32, max_size=32),
    origin=st.from_regex(r"[a-z0-9.-]{1,30}/[a-z0-9-]{1,20}", fullmatch=True),
)
def test_checkpoints_round_trip_through_text(
    size: int, root: bytes, head: bytes, origin: str
) -> None:
    original = notes.Checkpoint(origin=origin, tree_size=size, root=root, head_hash=head.hex())
    signed = notes.sign(original, [go_signer()])
    parsed = notes.SignedCheckpoint.from_text(signed.to_text())
    assert parsed == signed
    assert notes.verify(signed.to_text().encode(), [go_signer().verifier]).checkpoint == original


def test_unknown_keys_are_ignored_and_a_trusted_one_suffices() -> None:
    stranger = Signer.generate("stranger")
    text = notes.sign(checkpoint(), [stranger, go_signer()]).to_text()
    assert notes.verify(text, [go_signer().verifier]).checkpoint == checkpoint()


def test_a_note_without_a_trusted_signature_is_rejected() -> None:
    text = notes.sign(checkpoint(), [Signer.generate("stranger")]).to_text()
    with pytest.raises(VerificationError, match="no signature from a trusted key"):
        notes.verify(text, [go_signer().verifier])


def test_a_bad_signature_from_a_trusted_key_rejects_the_note() -> None:
    good = notes.sign(checkpoint(), [go_signer()])
    forged = notes.SignedCheckpoint(
        checkpoint=checkpoint(size=8), signatures=good.signatures
    ).to_text()
    with pytest.raises(VerificationError, match="invalid"):
        notes.verify(forged, [go_signer().verifier])
    # ...even when another trusted key signed correctly.
    other = Signer.generate("other")
    mixed = notes.SignedCheckpoint(
        checkpoint=checkpoint(size=8),
        signatures=good.signatures + notes.sign(checkpoint(size=8), [other]).signatures,
    ).to_text()
    with pytest.raises(VerificationError):
        notes.verify(mixed, [go_signer().verifier, other.verifier])


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace("\n\n", "\n"),
        lambda t: t.replace("chain ", "chain  "),
        lambda t: t.replace("\n7\n", "\n07\n"),
        lambda t: t.replace("\n7\n", "\n-7\n"),
        lambda t: t.replace("\u2014 ", "- "),
        lambda t: t[:-1],
        lambda t: t.replace("chain", "chain\t"),
        lambda t: "\x00" + t,
        lambda t: t.replace("=\nchain", "\nchain"),
        lambda t: t + "\u2014 x\n",
    ],
)
def test_mangled_notes_are_rejected(mangle: object) -> None:
    text = notes.sign(checkpoint(), [go_signer()]).to_text()
    assert callable(mangle)
    with pytest.raises(VerificationError):
        notes.verify(mangle(text), [go_signer().verifier])


def test_a_rotation_endorsement_is_followed_only_from_the_old_key() -> None:
    old, new = go_signer(), Signer.generate("PeterNeumann")
    endorsement = endorse(old, new.verifier)
    assert follow_rotation(old.verifier, new.verifier.to_string(), endorsement) == new.verifier
    with pytest.raises(VerificationError):
        follow_rotation(new.verifier, new.verifier.to_string(), endorsement)
    with pytest.raises(VerificationError):
        follow_rotation(old.verifier, "not a key", endorsement)
