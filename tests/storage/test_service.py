"""Use-case guarantees that need a real database under them."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.core.errors import IdempotencyInFlight
from ledger.core.signing import Signer
from ledger.service import LedgerService
from ledger.store.database import Database
from ledger.store.recorder import Recorder
from tests.conftest import ORIGIN, position


def test_a_twin_request_while_the_first_is_in_flight_gets_409(service: LedgerService) -> None:
    started, release = threading.Event(), threading.Event()
    real_signers = service.recorder.signers

    def slow_signers(conn: Connection) -> Sequence[Signer]:
        started.set()
        assert release.wait(timeout=30)
        return real_signers(conn)

    slow = LedgerService(
        recorder=Recorder(database=service.recorder.db, origin=ORIGIN, signers=slow_signers),
        intake=service.intake,
        log=service.log,
        keys=service.keys,
        keyring=service.keyring,
    )
    slow.create_ledger("talks")
    body = json.dumps(position()).encode()
    outcomes: list[object] = []
    first = threading.Thread(
        target=lambda: outcomes.append(
            slow.append("talks", body, actor="t", idempotency_key="k-1").result
        )
    )
    first.start()
    assert started.wait(timeout=30)
    with pytest.raises(IdempotencyInFlight):
        slow.append("talks", body, actor="t", idempotency_key="k-1")
    release.set()
    first.join(timeout=30)
    (original,) = outcomes
    replay = slow.append("talks", body, actor="t", idempotency_key="k-1").result
    assert replay.replayed and replay.receipts == original.receipts  # type: ignore[attr-defined]
    assert slow.get_ledger("talks").size == 1


def test_sqlite_runs_in_wal_mode_with_full_sync(database: Database) -> None:
    if database.url.get_backend_name() != "sqlite":
        pytest.skip("SQLite pragmas")
    with database.read() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
