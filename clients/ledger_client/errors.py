"""The client's exceptions: one tree under ``LedgerClientError``.

``ProblemError`` is an RFC 9457 problem the server answered (after any
retries); ``VerificationError`` is a check of what the server sent that
failed; ``TransportError`` is a request that never got an answer.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "LedgerClientError",
    "ProblemError",
    "StateFileError",
    "TransportError",
    "VerificationError",
]


class LedgerClientError(Exception):
    """Anything the client raises on purpose.

    ``committed`` holds the receipts of the batches ``append_many`` had
    already written when it failed (each batch is all or none).
    """

    committed: tuple[Any, ...] = ()


class ProblemError(LedgerClientError):
    """The server refused a request with a problem document (RFC 9457).

    ``field`` names the offending input when the server named one (for
    example ``[2].data.stance``); ``body`` is the whole document.
    """

    def __init__(
        self,
        *,
        status: int,
        type: str,
        title: str,
        detail: str,
        field: str | None = None,
        body: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.field = field
        self.body = body or {}
        self.retry_after = retry_after
        where = f" ({field})" if field else ""
        super().__init__(f"{status} {title}: {detail}{where}")

    @property
    def slug(self) -> str:
        """The last segment of ``type``: ``"/problems/rate-limited"`` -> ``"rate-limited"``."""
        return self.type.rstrip("/").rsplit("/", 1)[-1]


class VerificationError(LedgerClientError):
    """Something the server sent does not check out.

    ``check`` says which check failed (``"checkpoint"``, ``"consistency"``,
    ``"inclusion"``, ``"record"``, ``"receipt"``); ``seq`` is the record at
    fault, when there is one.
    """

    def __init__(self, check: str, reason: str, *, seq: int | None = None) -> None:
        self.check = check
        self.reason = reason
        self.seq = seq
        where = f"seq {seq}: " if seq is not None else ""
        super().__init__(f"{check} check failed: {where}{reason}")


class TransportError(LedgerClientError):
    """No answer from the server, after every retry the policy allowed."""


class StateFileError(LedgerClientError):
    """The state file exists but is not one this client wrote."""
