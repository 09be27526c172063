"""Private signing keys on disk (Ed25519, PKCS#8 PEM, file mode 0600).

``LEDGER_SIGNING_KEY`` names the key file to use; without it the embedded
default generates ``<data dir>/keys/signing-key.pem`` on first start. Keys
created by rotation live beside it as ``<key id>.pem``, so every process
sharing the data directory can sign with every active key. A key's name
comes from its registration (``ledger.store.keys``), not from the file: a
rotation may rename.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Connection

from ledger.core.errors import StorageUnavailable
from ledger.core.signing import Signer, VerifierKey
from ledger.store.keys import KeyRegistry

__all__ = [
    "ActiveSigners",
    "KeyFileError",
    "KeyRing",
    "load_private",
    "primary_key",
    "raw_public_key",
    "write_private_key",
]

log = logging.getLogger("ledger.keys")
DEFAULT_KEY_FILE = "signing-key.pem"


class KeyFileError(Exception):
    """A key file that cannot be read or is not an Ed25519 private key."""


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two processes starting at once must not both create (and one
    # silently lose) a key; the loser reads the winner's file instead.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"cannot read signing key {path}: {e.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise KeyFileError(f"{path} is not an unencrypted PKCS#8 PEM private key: {e}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} does not hold an Ed25519 private key")
    return key


def raw_public_key(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def primary_key(keys_dir: Path, configured: Path | None = None) -> Ed25519PrivateKey:
    """The configured key, or the default one (generated on first use)."""
    if configured is not None:
        return load_private(configured)
    path = keys_dir / DEFAULT_KEY_FILE
    if not path.exists():
        try:
            write_private_key(path, Ed25519PrivateKey.generate())
            log.warning("generated a signing key at %s", path)
        except FileExistsError:
            pass
    return load_private(path)


class KeyRing:
    """The private keys this process can sign with; ``name`` is the signing
    identity's key name, for the primary key and keys generated now."""

    def __init__(self, *, keys_dir: Path, name: str, configured: Path | None = None) -> None:
        self.keys_dir = keys_dir
        self.name = name
        self.configured = configured

    def primary(self) -> Signer:
        return Signer(name=self.name, private_key=primary_key(self.keys_dir, self.configured))

    def generate(self, name: str | None = None) -> Signer:
        """A new key for rotation, saved as ``<key id>.pem``."""
        key = Ed25519PrivateKey.generate()
        signer = Signer(name=name or self.name, private_key=key)
        write_private_key(self.keys_dir / f"{signer.verifier.key_id_hex}.pem", key)
        return signer

    def private_keys(self) -> dict[bytes, Ed25519PrivateKey]:
        """Every key this process holds, by its 32 public key bytes."""
        primary = primary_key(self.keys_dir, self.configured)
        found = {raw_public_key(primary): primary}
        if self.keys_dir.is_dir():
            for path in sorted(self.keys_dir.glob("*.pem")):
                if path.name == DEFAULT_KEY_FILE:
                    continue
                try:
                    key = load_private(path)
                except KeyFileError as e:
                    log.error("skipping key file: %s", e)
                    continue
                found[raw_public_key(key)] = key
        return found

    def signer_for(self, verifier_key: str) -> Signer | None:
        """A signer for a registered verifier key string, under its registered name."""
        public = VerifierKey.from_string(verifier_key)
        key = self.private_keys().get(public.public_key)
        return None if key is None else Signer(name=public.name, private_key=key)


class ActiveSigners:
    """Signers for the keys the registry lists as active, from this key ring.

    Called inside each append transaction, so a rotation or retirement made
    by another process takes effect at that process's next append.
    """

    def __init__(self, *, keyring: KeyRing, registry: KeyRegistry) -> None:
        self.keyring = keyring
        self.registry = registry
        # The active set last read and this key ring's signers for it: one
        # tuple, so a thread reading ``held`` while another appends sees one
        # consistent pair.
        self._state: tuple[tuple[str, ...], list[Signer]] | None = None

    def __call__(self, conn: Connection) -> list[Signer]:
        active = tuple(self.registry.active_keys(conn))
        state = self._state
        if state is None or state[0] != active:
            # Read the key files again only when the active set changed: an
            # active key this server does not hold must not cost a directory
            # scan and a PEM parse on every append.
            ring = self.keyring.private_keys()
            named = [VerifierKey.from_string(key) for key in active]
            state = (
                active,
                [
                    Signer(name=key.name, private_key=ring[key.public_key])
                    for key in named
                    if key.public_key in ring
                ],
            )
            self._state = state
        if not state[1]:
            raise StorageUnavailable(
                "no active signing key is available to this server; check LEDGER_SIGNING_KEY"
            )
        return state[1]

    def held(self) -> tuple[tuple[str, ...], list[Signer]] | None:
        """The active keys as the last append read them, with the signers for
        those this server holds; None before any append, or holding none."""
        state = self._state
        return state if state is not None and state[1] else None
