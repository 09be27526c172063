"""Post to and read from a ledger server from Python, trusting only its key.

``Client`` (blocking) and ``AsyncClient`` (asyncio) have the same methods.
Appends carry an Idempotency-Key and are retried safely; with
``verify=True`` each receipt, and each record read, is proven included in a
checkpoint signed by a trusted key that extends the last one verified
(docs/client.md, docs/format.md §5).
"""

from ledger_client.aio import AsyncClient
from ledger_client.client import Client
from ledger_client.errors import (
    LedgerClientError,
    ProblemError,
    StateFileError,
    TransportError,
    VerificationError,
)
from ledger_client.receipts import Receipt
from ledger_client.retries import RetryPolicy

__all__ = [
    "AsyncClient",
    "Client",
    "LedgerClientError",
    "ProblemError",
    "Receipt",
    "RetryPolicy",
    "StateFileError",
    "TransportError",
    "VerificationError",
]
