"""How hard the client tries: the retry policy, and what it retries.

It retries the answers ``answers.retryable_status`` calls transient, and no
answer at all — the in-doubt case, where an append may or may not have
committed: its retry carries the same Idempotency-Key, so the server
answers with the first attempt's receipts or writes it now, never twice.
Backoff, jitter and the limits are ``stamina``'s.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

from ledger_client.answers import RetryableAnswer, problem, retry_after
from ledger_client.errors import TransportError

__all__ = ["RetryPolicy", "retry_delay"]

_TRANSIENT_TRANSPORT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.PoolTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: ``attempts`` in all, within ``timeout`` seconds.

    The waits grow from ``wait_initial`` to ``wait_max`` with jitter, except
    where the server said how long to wait (``Retry-After``).
    ``RetryPolicy(attempts=1)`` never retries.
    """

    attempts: int = 10
    timeout: float = 60.0
    wait_initial: float = 0.1
    wait_max: float = 5.0

    def wait_after(self, error: Exception, failures: int, what: str) -> float:
        """How long to wait before reconnecting a stream after ``failures``
        failures in a row, or the error to raise when the policy gives up.

        Streams retry by hand: a retry loop cannot wrap a generator that hands
        out records between attempts. The wait is ``stamina``'s formula.
        """
        delay = retry_delay(error)
        if delay is False or failures >= self.attempts:
            if isinstance(error, RetryableAnswer):
                raise problem(error.response) from None
            raise TransportError(f"{what}: {error}") from error
        if delay is True:
            backoff = self.wait_initial * 2.0 ** (failures - 1) + random.uniform(0, 1.0)
            return float(min(self.wait_max, backoff))
        return float(delay)


def retry_delay(error: BaseException) -> bool | float:
    """``stamina``'s backoff hook: False to give up, True for the policy's own
    backoff, or the seconds the server asked for."""
    if isinstance(error, RetryableAnswer):
        asked = retry_after(error.response)
        return True if asked is None else asked
    return isinstance(error, _TRANSIENT_TRANSPORT)
