"""A witness's directory: its private key (``witness-key.pem``) and its state (``witness.db``).

The key is an Ed25519 PKCS#8 PEM file of mode 0600, created with
``O_EXCL`` so that ``init`` never replaces a witness's key: a witness whose
key or state is replaced can no longer vouch for what it cosigned before.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.core.cosignature import Witness
from ledger.core.signing import KEY_NAME_PATTERN
from ledger.witness.state import DATABASE_FILE, WitnessState

__all__ = ["KEY_FILE", "WitnessDirectoryError", "WitnessFiles", "init_witness", "open_witness"]

KEY_FILE = "witness-key.pem"


class WitnessDirectoryError(Exception):
    """A witness directory that cannot be created or opened; the message says why."""


@dataclass(frozen=True, slots=True)
class WitnessFiles:
    """An opened witness: its signing key and its state."""

    witness: Witness
    state: WitnessState


def _write_key(path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())


def _load_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise WitnessDirectoryError(f"cannot read the witness key {path}: {e.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise WitnessDirectoryError(f"{path} is not a PKCS#8 PEM private key: {e}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise WitnessDirectoryError(f"{path} does not hold an Ed25519 private key")
    return key


def init_witness(directory: Path, name: str) -> Witness:
    """Create a witness named ``name`` in ``directory``; refuse one that holds a witness."""
    if not KEY_NAME_PATTERN.match(name):
        raise WitnessDirectoryError(
            "a witness name is non-empty text without spaces or '+', e.g. witness.example.com/w1"
        )
    if directory.exists() and not directory.is_dir():
        raise WitnessDirectoryError(f"{directory} is not a directory")
    if (directory / KEY_FILE).exists() or (directory / DATABASE_FILE).exists():
        raise WitnessDirectoryError(f"{directory} already holds a witness")
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        witness = Witness.generate(name)
        _write_key(directory / KEY_FILE, witness.private_key)
    except FileExistsError:
        raise WitnessDirectoryError(f"{directory} already holds a witness") from None
    except OSError as e:
        raise WitnessDirectoryError(f"cannot create the witness in {directory}: {e}") from None
    WitnessState.create(directory, name).close()
    return witness


def open_witness(directory: Path) -> WitnessFiles:
    """The witness in ``directory``, made by ``init_witness``."""
    if not (directory / KEY_FILE).is_file() or not (directory / DATABASE_FILE).is_file():
        raise WitnessDirectoryError(
            f"{directory} holds no witness (run: ledger witness init {directory} --name NAME)"
        )
    key = _load_key(directory / KEY_FILE)
    try:
        state = WitnessState.open(directory)
    except ValueError as e:
        raise WitnessDirectoryError(f"cannot open the witness state in {directory}: {e}") from None
    return WitnessFiles(witness=Witness(name=state.name(), private_key=key), state=state)
