"""What ``Client`` and ``AsyncClient`` are configured with, and the headers they send."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from typing import Any

import stamina

from ledger.core.signing import VerifierKey
from ledger_client.events import EventSigner
from ledger_client.protocol import Trust
from ledger_client.retries import RetryPolicy, retry_delay
from ledger_client.state import CheckpointState

__all__ = ["MAX_BATCH", "MAX_BODY_BYTES", "ClientSettings", "new_idempotency_key", "query"]

# The server's default limits (LEDGER_MAX_BATCH, LEDGER_MAX_BODY_BYTES); a
# server configured lower refuses a larger batch with a problem naming it.
MAX_BATCH = 1000
MAX_BODY_BYTES = 1024 * 1024
USER_AGENT = "ledger-client/0.1"


class ClientSettings:
    """The trusted keys and state, the retry policy and the batch limits."""

    def __init__(
        self,
        *,
        trusted_keys: Iterable[str | VerifierKey],
        state: str | os.PathLike[str] | None,
        retry: RetryPolicy | None,
        batch_size: int,
        max_body_bytes: int,
        author: str | None = None,
        author_key: str | os.PathLike[str] | None = None,
    ) -> None:
        keys = tuple(
            key if isinstance(key, VerifierKey) else VerifierKey.from_string(key)
            for key in trusted_keys
        )
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
        self.trust = Trust(keys, CheckpointState(state) if state is not None else None)
        self.retry = retry or RetryPolicy()
        self.batch_size = batch_size
        self.max_body_bytes = max_body_bytes
        if (author is None) != (author_key is None):
            raise ValueError("author and author_key go together: the desk's name and its key")
        self.signer = (
            EventSigner.from_pem_file(author, author_key)
            if author is not None and author_key is not None
            else None
        )

    def trust_for(self, verify: bool) -> Trust | None:
        """What ``verify=True`` checks against; None when not verifying."""
        if not verify:
            return None
        if not self.trust.keys:
            raise ValueError("verify=True needs trusted_keys: the log's verifier key(s)")
        return self.trust

    def retrying(self) -> Any:
        """A ``stamina`` retry context under this policy (iterate it, sync or async)."""
        policy = self.retry
        return stamina.retry_context(
            on=retry_delay,
            attempts=policy.attempts,
            timeout=policy.timeout,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
        )


def headers(token: str | None) -> dict[str, str]:
    sent = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    return sent


def new_idempotency_key() -> str:
    """One per logical append, reused by each of its retries."""
    return f"ledger-client-{uuid.uuid4()}"


def query(**values: str | int | None) -> dict[str, str | int]:
    """The query parameters that were given."""
    return {name: value for name, value in values.items() if value is not None}
