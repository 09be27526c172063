"""The author registry (format §1.4) kept inside each append, and its reads.

``author_keys`` holds one row per ``author.registered`` or ``author.revoked``
record. An append that registers, revokes or carries a signed event is a
validating batch (``ledger.store.projections``): it is sealed under the
ledger's head lock, and ``apply`` folds the registry as the rows before it
leave it, then checks the batch's records in seq order, refusing the request
if any breaks a rule. Because every writer takes that lock, a revocation
committed by any process is seen by the next signed append of every other.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.core.authors import (
    AUTHOR_REGISTERED,
    AUTHOR_REVOKED,
    AUTHOR_TYPES,
    AuthorMark,
    AuthorRegistry,
    AuthorRuleBroken,
    registered_key,
    signed_bytes,
)
from ledger.core.errors import (
    AuthorNotAllowed,
    AuthorSignatureRejected,
    Conflict,
    InvalidEvent,
    LedgerError,
    NotFound,
)
from ledger.core.jsonvalues import format_path
from ledger.core.records import EventDraft, Record, SealedDraft
from ledger.core.signing import VerifierKey
from ledger.store.database import Database, raw_execute, raw_execute_many
from ledger.store.projections import PlannedRows, RowsInto
from ledger.store.tables import author_keys

__all__ = ["AuthorRow", "AuthorsProjection", "read_registry", "registry_rows", "stored_rows"]

# (seq, name, verifier key string or None for a revocation)
AuthorRow = tuple[int, str, str | None]

_SELECT_ROWS = "SELECT seq, name, verifier_key FROM author_keys WHERE ledger_id = ? ORDER BY seq"
_INSERT = "INSERT INTO author_keys (ledger_id, seq, name, verifier_key) VALUES (?, ?, ?, ?)"
_SELECT_NAME = "SELECT name FROM ledgers WHERE id = ?"
_SELECT_REGISTRATIONS = (
    "SELECT seq, canonical FROM records WHERE ledger_id = ? AND type IN (?, ?) ORDER BY seq"
)


def registry_rows(registry_records: Sequence[Record]) -> list[AuthorRow]:
    """The rows ``author.*`` records make (the reference for ``apply`` and ``rebuild``)."""
    rows: list[AuthorRow] = []
    for record in registry_records:
        if record.type == AUTHOR_REGISTERED:
            key = registered_key(record.data).to_string()
            rows.append((record.seq, str(record.data["name"]), key))
        elif record.type == AUTHOR_REVOKED:
            rows.append((record.seq, str(record.data["name"]), None))
    return rows


def fold(rows: Sequence[Sequence[Any]]) -> AuthorRegistry:
    """The registry ``author_keys`` rows leave, applied in seq order."""
    registry = AuthorRegistry()
    for seq, name, verifier_key in rows:
        if verifier_key is None:
            registry.revoke(str(name), int(seq))
        else:
            registry.register(VerifierKey.from_string(str(verifier_key)), int(seq))
    return registry


def _signed_bytes_of(draft: EventDraft, ledger: str) -> bytes:
    return signed_bytes(draft.signed_members(ledger))


def _refusal(error: AuthorRuleBroken, field: str) -> LedgerError:
    if error.kind == "malformed":
        return InvalidEvent(error.reason, field=field)
    if error.kind == "signature":
        return AuthorSignatureRejected(error.reason, field=field)
    if error.kind == "registered":
        return Conflict(error.reason)
    return AuthorNotAllowed(error.reason, field=field)


class AuthorsProjection:
    """Keeps ``author_keys`` and checks signed events inside the append
    transaction (a ``ledger.store.projections.Projection``)."""

    tables: tuple[sa.Table, ...] = (author_keys,)
    writes: tuple[RowsInto, ...] = ()

    @staticmethod
    def validates(batch: Sequence[SealedDraft]) -> bool:
        """A batch that signs, registers or revokes: its checks read the registry."""
        return any(
            draft.author_json is not None or draft.type in AUTHOR_TYPES for _, draft in batch
        )

    def planned(self, batch: Sequence[SealedDraft]) -> tuple[PlannedRows, ...] | None:
        return None if self.validates(batch) else ()

    def apply(self, conn: Connection, ledger_id: int, batch: Sequence[SealedDraft]) -> None:
        """Check ``batch`` (one request's records, already inserted) against the
        registry, in seq order, and store the rows its registrations make.

        A ``LedgerError`` refuses the request: a signature by an author not
        registered (or revoked, or with another key) is forbidden, one that
        does not verify is unauthenticated, a second registration of a name
        conflicts.
        """
        if not self.validates(batch):
            return
        registry = fold(raw_execute(conn, _SELECT_ROWS, (ledger_id,)))
        found = raw_execute(conn, _SELECT_NAME, (ledger_id,))
        if not found:
            raise NotFound(f"no ledger with id {ledger_id}")
        ledger = str(found[0][0])
        rows: list[tuple[Any, ...]] = []
        many = len(batch) > 1
        for index, (seq, draft) in enumerate(batch):
            at: tuple[str | int, ...] = (index,) if many else ()
            if draft.author_json is not None:
                try:
                    mark = AuthorMark.from_value(orjson.loads(draft.author_json))
                    registry.check(
                        mark,
                        functools.partial(_signed_bytes_of, draft, ledger),
                        checked_with=draft.signature_checked_with,
                    )
                except AuthorRuleBroken as e:
                    raise _refusal(e, format_path((*at, "author"))) from None
            if draft.type not in AUTHOR_TYPES:
                continue
            data = draft.data
            try:
                registry.see(seq, draft.type, data)
            except AuthorRuleBroken as e:
                raise _refusal(e, format_path((*at, "data", "name"))) from None
            key = registered_key(data).to_string() if draft.type == AUTHOR_REGISTERED else None
            rows.append((ledger_id, seq, str(data["name"]), key))
        if rows:
            raw_execute_many(conn, _INSERT, rows, table=author_keys)

    @staticmethod
    def rebuild(
        conn: Connection, ledger_id: int, head: int, progress: Callable[[int], None]
    ) -> None:
        """Every row of ``author_keys`` for the ledger, from its records (only
        the ``author.*`` ones are read; progress counts the ledger done at once)."""
        found = raw_execute(
            conn, _SELECT_REGISTRATIONS, (ledger_id, AUTHOR_REGISTERED, AUTHOR_REVOKED)
        )
        made = registry_rows([Record.from_dict(orjson.loads(bytes(row[1]))) for row in found])
        if made:
            raw_execute_many(conn, _INSERT, [(ledger_id, *row) for row in made], table=author_keys)
        progress(head)


def stored_rows(database: Database, ledger_id: int) -> list[AuthorRow]:
    """Every stored row of a ledger, in seq order (the audit, the API)."""
    with database.read() as conn:
        return [
            (int(seq), str(name), None if key is None else str(key))
            for seq, name, key in raw_execute(conn, _SELECT_ROWS, (ledger_id,))
        ]


def read_registry(database: Database, ledger_id: int) -> AuthorRegistry:
    """The ledger's authors as its stored registry rows leave them."""
    return fold(stored_rows(database, ledger_id))
