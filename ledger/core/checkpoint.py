"""Checkpoints: C2SP ``tlog-checkpoint`` signed notes (format §3).

    <origin>\\n<tree size>\\n<base64 root>\\nchain <hex head hash>\\n\\n
    — <key name> <base64(key id || Ed25519 signature)>\\n   (one or more)

The signature covers the note body: every byte up to and including the
newline before the blank line. A verifier needs one valid signature from a
key it trusts, ignores unknown keys, and rejects the note when a trusted
key's signature fails (C2SP signed-note).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ledger.core.errors import CheckpointInvalid, VerificationError
from ledger.core.hashing import HASH_SIZE
from ledger.core.signing import KEY_ID_SIZE, Signer, VerifierKey

__all__ = ["Checkpoint", "NoteSignature", "SignedCheckpoint", "sign", "verify"]

# U+2014 EM DASH and a space open every signature line (C2SP signed-note).
SIGNATURE_PREFIX = "\u2014 "
MAX_SIGNATURES = 100
MAX_NOTE_BYTES = 64 * 1024
_DECIMAL = re.compile(r"\A(0|[1-9][0-9]{0,18})\Z")
_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    origin: str
    tree_size: int
    root: bytes
    head_hash: str

    def body(self) -> bytes:
        """The signed bytes: the note text up to and including its last newline."""
        root = base64.b64encode(self.root).decode("ascii")
        return f"{self.origin}\n{self.tree_size}\n{root}\nchain {self.head_hash}\n".encode()

    @classmethod
    def from_body(cls, body: str) -> Checkpoint:
        lines = body.split("\n")
        if len(lines) != 5 or lines[-1] != "":
            raise CheckpointInvalid("a checkpoint body has exactly four lines")
        origin, size_text, root_text, chain_line, _ = lines
        if not origin:
            raise CheckpointInvalid("the origin line is empty")
        if not _DECIMAL.match(size_text):
            raise CheckpointInvalid("the tree size is not a decimal number")
        try:
            root = base64.b64decode(root_text, validate=True)
        except binascii.Error:
            raise CheckpointInvalid("the root is not base64") from None
        if len(root) != HASH_SIZE or base64.b64encode(root).decode() != root_text:
            raise CheckpointInvalid("the root is not 32 bytes in canonical base64")
        head = chain_line.removeprefix("chain ")
        if head == chain_line or not _HEX64.match(head):
            raise CheckpointInvalid("the fourth line must be 'chain <64 hex digits>'")
        return cls(origin=origin, tree_size=int(size_text), root=root, head_hash=head)


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes

    def to_line(self) -> str:
        blob = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{SIGNATURE_PREFIX}{self.name} {blob}\n"

    @classmethod
    def from_line(cls, line: str) -> NoteSignature:
        """Parse one ``— <name> <base64>`` line (without its newline); nothing is
        verified. ``CheckpointInvalid`` says what is wrong."""
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckpointInvalid("a signature line starts with an em dash and a space")
        name, space, blob = line[len(SIGNATURE_PREFIX) :].partition(" ")
        if not space or not name or " " in blob or "\n" in blob:
            raise CheckpointInvalid("a signature line is '— <name> <base64>'")
        try:
            raw = base64.b64decode(blob, validate=True)
        except binascii.Error:
            raise CheckpointInvalid("a signature is not base64") from None
        if len(raw) <= KEY_ID_SIZE:
            raise CheckpointInvalid("a signature is no longer than its key id")
        return cls(name=name, key_id=raw[:KEY_ID_SIZE], signature=raw[KEY_ID_SIZE:])


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    signatures: tuple[NoteSignature, ...]

    def to_text(self) -> str:
        body = self.checkpoint.body().decode("utf-8")
        return body + "\n" + "".join(sig.to_line() for sig in self.signatures)

    @classmethod
    def from_text(cls, text: str | bytes) -> SignedCheckpoint:
        """Parse a note (no signature is checked here: see ``verify``)."""
        if isinstance(text, bytes):
            if len(text) > MAX_NOTE_BYTES:
                raise CheckpointInvalid("the note is too large")
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise CheckpointInvalid("the note is not UTF-8") from None
        if len(text) > MAX_NOTE_BYTES:
            raise CheckpointInvalid("the note is too large")
        if _CONTROL.search(text):
            raise CheckpointInvalid("the note holds control characters other than newline")
        body, blank, sig_text = text.partition("\n\n")
        if not blank or not sig_text.endswith("\n"):
            raise CheckpointInvalid("a note is a body, a blank line and signature lines")
        checkpoint = Checkpoint.from_body(body + "\n")
        lines = sig_text[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise CheckpointInvalid("too many signature lines")
        signatures = tuple(NoteSignature.from_line(line) for line in lines)
        return cls(checkpoint=checkpoint, signatures=signatures)


def sign(checkpoint: Checkpoint, signers: Sequence[Signer]) -> SignedCheckpoint:
    body = checkpoint.body()
    signatures = tuple(
        NoteSignature(name=s.name, key_id=s.verifier.key_id, signature=s.sign(body))
        for s in signers
    )
    return SignedCheckpoint(checkpoint=checkpoint, signatures=signatures)


def verify(text: str | bytes, trusted: Iterable[VerifierKey]) -> SignedCheckpoint:
    """Parse and check a note against trusted keys; raise ``CheckpointInvalid``.

    Returns the note when at least one signature is from a trusted key and
    every signature from a trusted key is valid.
    """
    note = SignedCheckpoint.from_text(text)
    keys = {(k.name, k.key_id): k for k in trusted}
    body = note.checkpoint.body()
    verified = 0
    for sig in note.signatures:
        key = keys.get((sig.name, sig.key_id))
        if key is None:
            continue
        try:
            key.verify(sig.signature, body)
        except VerificationError:
            raise CheckpointInvalid(f"the signature by trusted key {sig.name} is invalid") from None
        verified += 1
    if not verified:
        raise CheckpointInvalid("no signature from a trusted key")
    return note
