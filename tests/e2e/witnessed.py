"""A ledger server with witnesses, for the end-to-end tests of witnessing: its
signing key made before it starts (so the witnesses can trust it first), its
witness settings, and waits on what the collector does."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.core.signing import VerifierKey
from ledger.keyring import DEFAULT_KEY_FILE, write_private_key
from tests.conftest import ORIGIN, position

__all__ = [
    "append",
    "ledger_key",
    "wait_for",
    "witnessed_size",
    "witnesses_env",
]

# Short, so a test sees several rounds in a second; the collector's rounds are what is tested.
INTERVAL = "0.2"


def ledger_key(data_dir: Path) -> str:
    """Make the server's signing key in ``data_dir`` now; its verifier key string."""
    key = Ed25519PrivateKey.generate()
    write_private_key(data_dir / "keys" / DEFAULT_KEY_FILE, key)
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return VerifierKey(ORIGIN, public).to_string()


def witnesses_env(
    endpoints: Sequence[tuple[str, str]], *, quorum: int | None = None
) -> dict[str, str]:
    """``LEDGER_*`` settings for witnesses given as (url, verifier key) pairs."""
    env = {
        "LEDGER_ORIGIN": ORIGIN,
        "LEDGER_WITNESSES": json.dumps([{"url": url, "key": key} for url, key in endpoints]),
        "LEDGER_WITNESS_INTERVAL": INTERVAL,
    }
    if quorum is not None:
        env["LEDGER_WITNESS_QUORUM"] = str(quorum)
    return env


def append(url: str, ledger: str, count: int, *, party: str = "US") -> int:
    """Append ``count`` events in one batch; the ledger's size after it."""
    events = [position(party=party, occurred_at=f"2025-03-{n % 28 + 1:02d}") for n in range(count)]
    response = httpx.post(f"{url}/v1/ledgers/{ledger}/events", json=events, timeout=10)
    response.raise_for_status()
    return int(response.json()[-1]["seq"])


def witnessed_size(url: str, ledger: str) -> int | None:
    """The size of the server's witnessed checkpoint; None while it has none."""
    response = httpx.get(f"{url}/v1/ledgers/{ledger}/checkpoint/witnessed", timeout=5)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return int(response.headers["Ledger-Tree-Size"])


def wait_for(
    condition: Callable[[], Any], *, timeout: float = 10.0, what: str = "the condition"
) -> Any:
    """Poll ``condition`` every 50 ms until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        time.sleep(0.05)
