"""Witness cosignatures: C2SP ``tlog-cosignature`` v1, the Ed25519 kind (format §7).

A cosignature is a signed-note signature line on a checkpoint,

    — <witness name> base64(key id || u64 timestamp || Ed25519 signature)

whose signature covers ``cosignature/v1\\ntime <timestamp>\\n`` followed by
the checkpoint's whole body. Its key id is the first four bytes of
``SHA-256(name || 0x0A || 0x04 || public key)``: the algorithm byte 0x04
keeps a cosigner key from ever verifying a plain note signature (0x01),
and the other way round. A cosignature says: at that time, this was the
largest tree of the log, consistent with every earlier one, that the
witness had seen.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.core.checkpoint import NoteSignature
from ledger.core.errors import CheckpointInvalid
from ledger.core.signing import (
    check_named_key,
    compute_key_id,
    split_key_string,
)

__all__ = [
    "COSIGNATURE_ALGORITHM",
    "Cosignature",
    "CosignedBy",
    "CosignerKey",
    "Witness",
    "cosigned_message",
    "require_quorum",
    "verified_cosignatures",
]

COSIGNATURE_ALGORITHM = b"\x04"
_TIMESTAMP = struct.Struct(">Q")
_SIGNATURE_SIZE = 64
# The spec's ceiling for a timestamp (it is a u64 read as a signed POSIX time).
MAX_TIMESTAMP = 2**63 - 1


def cosigned_message(body: bytes, timestamp: int) -> bytes:
    """The bytes a v1 cosignature signs: header, time line, the checkpoint's body."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError("a cosignature timestamp is between 0 and 2^63 - 1")
    return b"cosignature/v1\ntime %d\n" % timestamp + body


@dataclass(frozen=True, slots=True)
class Cosignature:
    """One witness's cosignature, as read from (or written to) a signature line."""

    name: str
    key_id: bytes
    timestamp: int
    signature: bytes

    def to_note_signature(self) -> NoteSignature:
        return NoteSignature(
            name=self.name,
            key_id=self.key_id,
            signature=_TIMESTAMP.pack(self.timestamp) + self.signature,
        )

    def to_line(self) -> str:
        return self.to_note_signature().to_line()

    @classmethod
    def from_note_signature(cls, note: NoteSignature) -> Cosignature:
        """Read a signature line as a cosignature; ``CheckpointInvalid`` if it
        cannot be one (wrong length, timestamp over 2^63 - 1)."""
        if len(note.signature) != _TIMESTAMP.size + _SIGNATURE_SIZE:
            raise CheckpointInvalid(f"the cosignature by {note.name} is not 72 bytes")
        (timestamp,) = _TIMESTAMP.unpack_from(note.signature)
        if timestamp > MAX_TIMESTAMP:
            raise CheckpointInvalid(f"the cosignature by {note.name} has a timestamp over 2^63-1")
        return cls(
            name=note.name,
            key_id=note.key_id,
            timestamp=timestamp,
            signature=note.signature[_TIMESTAMP.size :],
        )

    @classmethod
    def from_line(cls, line: str) -> Cosignature:
        """Parse one ``— <name> <base64>`` line (with or without its newline)."""
        return cls.from_note_signature(NoteSignature.from_line(line.removesuffix("\n")))


@dataclass(frozen=True, slots=True)
class CosignerKey:
    """A witness's public key: ``<name>+<8 hex key id>+<base64(0x04 || key)>``."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        check_named_key(self.name, self.public_key)

    @property
    def key_id(self) -> bytes:
        return compute_key_id(self.name, self.public_key, COSIGNATURE_ALGORITHM)

    def to_string(self) -> str:
        encoded = base64.b64encode(COSIGNATURE_ALGORITHM + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_string(cls, text: str) -> CosignerKey:
        """Parse a witness verifier key; ``ValueError`` says what is wrong."""
        name, hex_id, public = split_key_string(
            text, COSIGNATURE_ALGORITHM, "a timestamped Ed25519 cosignature (algorithm 4)"
        )
        key = cls(name=name, public_key=public)
        if key.key_id.hex() != hex_id:
            raise ValueError("the key id does not match the name and key")
        return key

    def signed(self, cosignature: Cosignature) -> bool:
        """Whether ``cosignature`` names this key (by name and key id)."""
        return cosignature.name == self.name and cosignature.key_id == self.key_id

    def verify(self, cosignature: Cosignature, body: bytes) -> None:
        """Raise ``CheckpointInvalid`` unless ``cosignature`` is this key's over ``body``."""
        if not self.signed(cosignature):
            raise CheckpointInvalid(f"the cosignature is not by witness {self.name}")
        message = cosigned_message(body, cosignature.timestamp)
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                cosignature.signature, message
            )
        except InvalidSignature:
            raise CheckpointInvalid(f"the cosignature by witness {self.name} is invalid") from None


@dataclass(frozen=True, slots=True)
class Witness:
    """A witness's private key: it cosigns checkpoint bodies."""

    name: str
    private_key: Ed25519PrivateKey
    verifier: CosignerKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        object.__setattr__(self, "verifier", CosignerKey(name=self.name, public_key=public))

    @classmethod
    def generate(cls, name: str) -> Witness:
        return cls(name=name, private_key=Ed25519PrivateKey.generate())

    def cosign(self, body: bytes, timestamp: int) -> Cosignature:
        """The cosignature of a checkpoint body at ``timestamp`` (POSIX seconds, not 0)."""
        if timestamp <= 0:
            raise ValueError("a witness's cosignature carries a time after the epoch")
        signature = self.private_key.sign(cosigned_message(body, timestamp))
        return Cosignature(
            name=self.name,
            key_id=self.verifier.key_id,
            timestamp=timestamp,
            signature=signature,
        )


def verified_cosignatures(
    body: bytes, signatures: Iterable[NoteSignature], witnesses: Iterable[CosignerKey]
) -> Mapping[CosignerKey, Cosignature]:
    """The trusted witnesses that cosigned ``body``, each with its cosignature.

    Lines from keys not in ``witnesses`` are ignored (they may be the log's
    own signature or other witnesses'); a line naming a trusted witness
    that fails to verify makes the note malformed (C2SP signed-note), so it
    raises ``CheckpointInvalid`` rather than being skipped.
    """
    trusted = {(key.name, key.key_id): key for key in witnesses}
    found: dict[CosignerKey, Cosignature] = {}
    for note in signatures:
        key = trusted.get((note.name, note.key_id))
        if key is None:
            continue
        cosignature = Cosignature.from_note_signature(note)
        key.verify(cosignature, body)
        found[key] = cosignature
    return found


@dataclass(frozen=True, slots=True)
class CosignedBy:
    """A trusted witness that cosigned a checkpoint, as a verifier reports it."""

    name: str
    key_id: str
    timestamp: int

    def to_dict(self) -> dict[str, str | int]:
        return {"name": self.name, "key_id": self.key_id, "timestamp": self.timestamp}


def require_quorum(
    body: bytes,
    signatures: Iterable[NoteSignature],
    witnesses: Sequence[CosignerKey],
    quorum: int,
) -> tuple[CosignedBy, ...]:
    """The trusted witnesses that cosigned ``body``, in ``witnesses`` order;
    ``CheckpointInvalid`` naming who is missing unless at least ``quorum`` did."""
    found = verified_cosignatures(body, signatures, witnesses)
    signed = tuple(
        CosignedBy(name=key.name, key_id=key.key_id.hex(), timestamp=found[key].timestamp)
        for key in witnesses
        if key in found
    )
    if len(signed) < quorum:
        missing = ", ".join(key.name for key in witnesses if key not in found)
        raise CheckpointInvalid(
            f"{len(signed)} of the {quorum} witness cosignatures required "
            f"(of {len(witnesses)} trusted witnesses); missing: {missing}"
        )
    return signed
