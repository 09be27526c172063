"""Ed25519 keys in the signed-note conventions of format §3.

The verifier key string is ``<name>+<8 hex key id>+<base64(0x01 || key)>``,
the format of Go's ``golang.org/x/mod/sumdb/note``; the key id is the first
4 bytes of ``SHA-256(name || 0x0A || 0x01 || public key)``. Binding the name
into the id means a signature line cannot be re-labelled with another name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.core.errors import VerificationError

__all__ = [
    "ED25519_ALGORITHM",
    "KEY_NAME_PATTERN",
    "Signer",
    "VerifierKey",
    "check_named_key",
    "compute_key_id",
    "endorse",
    "follow_rotation",
    "split_key_string",
]

# sumdb/note algorithm byte for Ed25519.
ED25519_ALGORITHM = b"\x01"
KEY_ID_SIZE = 4
# Names are free text without spaces or '+' (format §3); we also refuse control
# characters and the empty name, which no signature line could carry.
KEY_NAME_PATTERN = re.compile(r"\A[^\s+\x00-\x1f\x7f]{1,255}\Z")


def split_key_string(text: str, algorithm: bytes, kind: str) -> tuple[str, str, bytes]:
    """``(name, hex key id, 32-byte public key)`` of a signed-note verifier key
    string ``<name>+<8 hex>+<base64(algorithm || key)>``; the caller checks the
    id, which each algorithm derives its own way. ``ValueError`` says what is wrong."""
    # The base64 key may itself hold "+": split off the name and id only.
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise ValueError("a verifier key is <name>+<8 hex digits>+<base64 key>")
    name, hex_id, encoded = parts
    if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise ValueError("the key id must be 8 lowercase hex digits")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ValueError("the key is not valid base64") from None
    if len(raw) != 33 or raw[:1] != algorithm:
        raise ValueError(f"the key is not {kind} public key")
    return name, hex_id, raw[1:]


def compute_key_id(name: str, public_key: bytes, algorithm: bytes = ED25519_ALGORITHM) -> bytes:
    """``SHA-256(name || 0x0A || algorithm || public key)[:4]``, signed-note's key id."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + algorithm + public_key).digest()
    return digest[:KEY_ID_SIZE]


def check_named_key(name: str, public_key: bytes) -> None:
    """``ValueError`` unless ``name`` can head a signature line and the key is Ed25519's size."""
    if not KEY_NAME_PATTERN.match(name):
        raise ValueError("a key name is non-empty text without spaces or '+'")
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A named Ed25519 public key, as a verifier trusts it."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        check_named_key(self.name, self.public_key)

    @property
    def key_id(self) -> bytes:
        return compute_key_id(self.name, self.public_key)

    @property
    def key_id_hex(self) -> str:
        return self.key_id.hex()

    def to_string(self) -> str:
        """The format §3 verifier key string."""
        encoded = base64.b64encode(ED25519_ALGORITHM + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id_hex}+{encoded}"

    @classmethod
    def from_string(cls, text: str) -> VerifierKey:
        """Parse a verifier key string; ``ValueError`` says what is wrong."""
        name, hex_id, public = split_key_string(text, ED25519_ALGORITHM, "an Ed25519 (algorithm 1)")
        key = cls(name=name, public_key=public)
        if key.key_id_hex != hex_id:
            raise ValueError("the key id does not match the name and key")
        return key

    @classmethod
    def from_public_key(cls, name: str, key: Ed25519PublicKey) -> VerifierKey:
        return cls(name=name, public_key=_raw_public(key))

    @classmethod
    def from_pem(cls, name: str, pem: bytes) -> VerifierKey:
        loaded = serialization.load_pem_public_key(pem)
        if not isinstance(loaded, Ed25519PublicKey):
            raise ValueError("the PEM file does not hold an Ed25519 public key")
        return cls.from_public_key(name, loaded)

    def verify(self, signature: bytes, message: bytes) -> None:
        """Raise ``VerificationError`` unless ``signature`` signs ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            raise VerificationError(f"signature by key {self.name} is invalid") from None

    def public_pem(self) -> bytes:
        return Ed25519PublicKey.from_public_bytes(self.public_key).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass(frozen=True, slots=True)
class Signer:
    """A named Ed25519 private key."""

    name: str
    private_key: Ed25519PrivateKey
    # Derived once: deriving it took a third of a checkpoint signature's time.
    verifier: VerifierKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        public = VerifierKey.from_public_key(self.name, self.private_key.public_key())
        object.__setattr__(self, "verifier", public)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    @classmethod
    def generate(cls, name: str) -> Signer:
        return cls(name=name, private_key=Ed25519PrivateKey.generate())


def endorse(old: Signer, new: VerifierKey) -> bytes:
    """format §3 rotation: the old key signs the new verifier key string's UTF-8 bytes."""
    return old.sign(new.to_string().encode("utf-8"))


def follow_rotation(old: VerifierKey, new_key: str, endorsement: bytes) -> VerifierKey:
    """The new key a ``key.rotated`` record introduces, if ``old`` endorsed it.

    Raises ``VerificationError`` when the endorsement is not ``old``'s
    signature over ``new_key``, or ``new_key`` is not a verifier key string.
    """
    try:
        new = VerifierKey.from_string(new_key)
    except ValueError as e:
        raise VerificationError(f"key.rotated names an invalid new key: {e}") from None
    old.verify(endorsement, new.to_string().encode("utf-8"))
    return new
