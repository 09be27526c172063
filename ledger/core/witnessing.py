"""The witness protocol, C2SP ``tlog-witness``: its messages and its rules (format §7).

A log asks a witness to cosign a checkpoint with ``POST <prefix>/add-checkpoint``:

    old <size the witness last cosigned>\\n
    <base64 consistency proof hash>\\n        (0 to 63 lines)
    \\n
    <checkpoint note: origin, size, root, extension lines, blank line, signatures>

The witness answers 200 with its cosignature lines, or refuses: 404 an
unknown origin, 403 no valid signature by a key it trusts for the origin,
400 a malformed request, 409 (body: the size it last cosigned, a
``text/x.tlog.size``) a stale old size, 422 a checkpoint that does not
extend the last one it cosigned.

This module holds the pure half, for both ends: the witness parses requests
and decides with ``parse_add_checkpoint``, ``trusted_log_signatures`` and
``check_extends``; a log builds requests with ``add_checkpoint_body`` and
reads the answers with ``parse_size_body`` and ``parse_cosignature_lines``.
Checkpoints here are any C2SP ``tlog-checkpoint`` (origin, size, root, then
optional extension lines), not only the ledger's own four-line ones.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ledger.core.checkpoint import NoteSignature
from ledger.core.cosignature import Cosignature
from ledger.core.errors import (
    CheckpointInvalid,
    InconsistentCheckpoint,
    OldSizeMismatch,
    ProofInvalid,
    SubmissionMalformed,
    UntrustedCheckpoint,
    VerificationError,
    WitnessReplyInvalid,
)
from ledger.core.hashing import HASH_SIZE, empty_root
from ledger.core.merkle import MAX_TREE_SIZE, verify_consistency
from ledger.core.signing import VerifierKey

__all__ = [
    "MAX_NOTE_BYTES",
    "MAX_PROOF_LINES",
    "MAX_REQUEST_BYTES",
    "SIZE_CONTENT_TYPE",
    "AddCheckpoint",
    "CheckpointNote",
    "add_checkpoint_body",
    "check_extends",
    "origin_hash",
    "parse_add_checkpoint",
    "parse_cosignature_lines",
    "parse_size_body",
    "size_body",
    "trusted_log_signatures",
]

# The spec's ceiling on consistency proof lines (a proof for a 2^64 tree).
MAX_PROOF_LINES = 63
# A checkpoint note: its body and up to 100 signature lines fit well within this.
MAX_NOTE_BYTES = 64 * 1024
# "old <20 digits>\n" + 63 lines of "<44 base64 chars>\n" + "\n" + the note.
MAX_REQUEST_BYTES = 25 + MAX_PROOF_LINES * 45 + 1 + MAX_NOTE_BYTES
MAX_SIGNATURES = 100
# The media type of a 409 answer's body: the size the witness last cosigned.
SIZE_CONTENT_TYPE = "text/x.tlog.size"

_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,19})")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def _size(text: str, what: str) -> int:
    """A tree size: ASCII decimal without leading zeroes, below 2^64."""
    if not _DECIMAL.fullmatch(text) or int(text) > MAX_TREE_SIZE:
        raise SubmissionMalformed(f"{what} is not a decimal tree size below 2^64")
    return int(text)


def _hash(text: str, what: str) -> bytes:
    """A 32-byte hash in canonical standard base64."""
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise SubmissionMalformed(f"{what} is not base64") from None
    if len(raw) != HASH_SIZE or base64.b64encode(raw).decode("ascii") != text:
        raise SubmissionMalformed(f"{what} is not a 32-byte hash in canonical base64")
    return raw


def _signature_line(line: str) -> NoteSignature:
    try:
        signature = NoteSignature.from_line(line)
    except CheckpointInvalid as error:
        raise SubmissionMalformed(error.reason) from None
    if "+" in signature.name:
        raise SubmissionMalformed("a signature line's key name holds no '+'")
    return signature


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckpointNote:
    """A C2SP checkpoint as a signed note; no signature is checked by parsing.

    ``body`` is the signed text (every line up to and including the newline
    before the blank line); ``extensions`` are the lines after the root.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...]
    body: bytes
    signatures: tuple[NoteSignature, ...]

    @classmethod
    def parse(cls, text: str) -> CheckpointNote:
        """Parse a checkpoint note; ``SubmissionMalformed`` says what is wrong."""
        if len(text.encode("utf-8")) > MAX_NOTE_BYTES:
            raise SubmissionMalformed(f"the checkpoint note is over {MAX_NOTE_BYTES} bytes")
        if _CONTROL.search(text):
            raise SubmissionMalformed("the checkpoint holds control characters besides newline")
        # Checkpoint lines are never empty, so the first blank line ends the body.
        body, blank, signature_text = text.partition("\n\n")
        if not blank or not signature_text.endswith("\n"):
            raise SubmissionMalformed(
                "a checkpoint note is its lines, a blank line, then signature lines, "
                "each ending in a newline"
            )
        lines = body.split("\n")
        if len(lines) < 3:
            raise SubmissionMalformed("a checkpoint has an origin, a size and a root line")
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise SubmissionMalformed("the checkpoint's origin line is empty")
        size = _size(size_text, "the checkpoint's size line")
        root = _hash(root_text, "the checkpoint's root line")
        signature_lines = signature_text[:-1].split("\n")
        if len(signature_lines) > MAX_SIGNATURES:
            raise SubmissionMalformed(f"the checkpoint has over {MAX_SIGNATURES} signatures")
        return cls(
            origin=origin,
            size=size,
            root=root,
            extensions=tuple(extensions),
            body=(body + "\n").encode("utf-8"),
            signatures=tuple(_signature_line(line) for line in signature_lines),
        )

    def to_text(self, extra: Iterable[NoteSignature] = ()) -> str:
        """The note with its signatures, then ``extra`` lines (e.g. cosignatures)."""
        lines = [s.to_line() for s in (*self.signatures, *extra)]
        return self.body.decode("utf-8") + "\n" + "".join(lines)


def trusted_log_signatures(
    note: CheckpointNote, keys: Iterable[VerifierKey]
) -> tuple[NoteSignature, ...]:
    """The note's signatures by ``keys``, all verified; else ``UntrustedCheckpoint``.

    Lines by other keys are ignored (other witnesses' cosignatures, keys the
    witness was not given); a line naming a trusted key that fails to verify
    makes the note malformed (C2SP signed-note), so it refuses the note.
    """
    trusted = {(key.name, key.key_id): key for key in keys}
    verified: list[NoteSignature] = []
    for line in note.signatures:
        key = trusted.get((line.name, line.key_id))
        if key is None:
            continue
        try:
            key.verify(line.signature, note.body)
        except VerificationError:
            raise UntrustedCheckpoint(
                f"the signature by trusted key {line.name} does not verify"
            ) from None
        verified.append(line)
    if not verified:
        raise UntrustedCheckpoint(f"no signature by a key trusted for origin {note.origin}")
    return tuple(verified)


@dataclass(frozen=True, slots=True, kw_only=True)
class AddCheckpoint:
    """One add-checkpoint request: the old size, the proof from it, the checkpoint."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: CheckpointNote


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse an add-checkpoint request body; ``SubmissionMalformed`` (400) says why.

    An old size over the checkpoint's size is malformed too (the spec's 400).
    """
    if len(body) > MAX_REQUEST_BYTES:
        raise SubmissionMalformed(f"the request is over {MAX_REQUEST_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SubmissionMalformed("the request is not UTF-8") from None
    head, blank, note_text = text.partition("\n\n")
    if not blank:
        raise SubmissionMalformed("the request has no empty line before the checkpoint")
    old_line, *proof_lines = head.split("\n")
    if not old_line.startswith("old "):
        raise SubmissionMalformed("the request's first line is 'old <size>'")
    old_size = _size(old_line[len("old ") :], "the old size")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise SubmissionMalformed(f"the proof has over {MAX_PROOF_LINES} lines")
    proof = tuple(_hash(line, f"proof line {i + 1}") for i, line in enumerate(proof_lines))
    checkpoint = CheckpointNote.parse(note_text)
    if old_size > checkpoint.size:
        raise SubmissionMalformed(
            f"the old size {old_size} is over the checkpoint's size {checkpoint.size}"
        )
    return AddCheckpoint(old_size=old_size, proof=proof, checkpoint=checkpoint)


def check_extends(request: AddCheckpoint, latest: CheckpointNote | None) -> None:
    """Whether a witness whose latest cosigned checkpoint is ``latest`` may cosign.

    ``latest`` is None when it never cosigned one for the origin. Raises
    ``OldSizeMismatch`` (409) when the old size is not the latest size, and
    ``InconsistentCheckpoint`` (422) when the checkpoint is not proved to
    extend it. Passing this, no two roots are ever cosigned for one size.
    """
    new = request.checkpoint
    latest_size = latest.size if latest is not None else 0
    if request.old_size != latest_size:
        raise OldSizeMismatch(
            f"the old size {request.old_size} is not {latest_size}, "
            "the size of the latest cosigned checkpoint",
            size=latest_size,
        )
    if new.size == 0 and new.root != empty_root():
        raise InconsistentCheckpoint("a checkpoint of size 0 has the empty tree's root")
    if request.old_size == 0:
        if request.proof:
            raise InconsistentCheckpoint("a proof from old size 0 must be empty")
        return
    assert latest is not None
    if new.size == latest.size:
        if request.proof:
            raise InconsistentCheckpoint("a proof between equal sizes must be empty")
        if new.root != latest.root:
            raise InconsistentCheckpoint(
                f"the root differs from the one cosigned for size {new.size}"
            )
        return
    try:
        verify_consistency(latest.size, new.size, request.proof, latest.root, new.root)
    except ProofInvalid as e:
        raise InconsistentCheckpoint(f"the consistency proof fails: {e.reason}") from None


def add_checkpoint_body(old_size: int, proof: Sequence[bytes], note_text: str) -> bytes:
    """The add-checkpoint request body a log sends (``note_text``: the signed note)."""
    if old_size < 0:
        raise ValueError("an old size is not negative")
    lines = [f"old {old_size}\n"]
    lines.extend(base64.b64encode(h).decode("ascii") + "\n" for h in proof)
    return ("".join(lines) + "\n" + note_text).encode("utf-8")


def size_body(size: int) -> bytes:
    """The body of a 409 answer: the latest cosigned size and a newline."""
    return b"%d\n" % size


def parse_size_body(body: bytes) -> int:
    """The size a 409 answer names; ``WitnessReplyInvalid`` if it is not one."""
    text = body.decode("ascii", errors="replace")
    if not text.endswith("\n") or not _DECIMAL.fullmatch(text[:-1]):
        raise WitnessReplyInvalid("a 409 answer's body is a decimal size and a newline")
    size = int(text[:-1])
    if size > MAX_TREE_SIZE:
        raise WitnessReplyInvalid("a 409 answer's size is over 2^64 - 1")
    return size


def parse_cosignature_lines(body: bytes) -> tuple[Cosignature, ...]:
    """The cosignatures of a 200 answer (one or more signature lines).

    Nothing is verified here: keep those of trusted witness keys with
    ``ledger.core.cosignature.verified_cosignatures`` over the checkpoint's body.
    Lines that cannot be a v1 Ed25519 cosignature (another witness key type)
    are skipped; a body that is not signature lines is ``WitnessReplyInvalid``.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessReplyInvalid("a witness's answer is not UTF-8") from None
    if not text.endswith("\n") or text == "\n":
        raise WitnessReplyInvalid("a witness's answer is signature lines, each ending in newline")
    found: list[Cosignature] = []
    for line in text[:-1].split("\n"):
        try:
            note = _signature_line(line)
        except SubmissionMalformed as e:
            raise WitnessReplyInvalid(f"a witness's answer line: {e.detail}") from None
        try:
            found.append(Cosignature.from_note_signature(note))
        except VerificationError:
            continue
    return tuple(found)


def origin_hash(origin: str) -> str:
    """The monitoring path's name for a log: lowercase hex SHA-256 of its origin."""
    return hashlib.sha256(origin.encode("utf-8")).hexdigest()
