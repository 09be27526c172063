"""SQLite's point reads: connections of their own, lent from a free list.

A pool checkout and return cost more than the indexed lookup behind a token
check or a proof step (``scripts/bench.sh proofs``), so point reads borrow
from a plain free list instead. There are at most ``limit`` of these
connections, however many threads read: each caches pages and maps the
file, so one per thread would multiply the server's memory under many
event-stream readers (``scripts/bench.sh readers``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Engine

from ledger.core.errors import StorageUnavailable

__all__ = ["LentReaders"]


class LentReaders:
    """``ledger.store.backend.PointReads`` over connections the engine makes
    (so with its PRAGMAs) and then detaches from its pool."""

    def __init__(self, engine: Engine, *, limit: int, timeout: float) -> None:
        self._engine = engine
        self._connections = _LentConnections(limit=limit, timeout=timeout, connect=self._connect)

    def _connect(self) -> Any:
        pooled = self._engine.raw_connection()
        connection = pooled.driver_connection
        pooled.detach()  # never returned to the pool
        return connection

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        held = self._connections.take()
        try:
            try:
                cursor = held[1].cursor()
            except Exception as e:
                raise StorageUnavailable(f"database unavailable: {type(e).__name__}") from e
            try:
                yield cursor
            except sqlite3.OperationalError as e:
                raise StorageUnavailable(f"database unavailable: {type(e).__name__}") from e
            finally:
                cursor.close()
        finally:
            self._connections.give(held)

    def close_all(self) -> None:
        self._connections.close_all()


class _LentConnections:
    """Up to ``limit`` connections, opened by ``connect`` when first needed and
    lent one caller at a time, the most recently returned first (its cache
    is the warmest). A caller finding all of them lent waits up to
    ``timeout`` seconds, then gets ``StorageUnavailable``.

    ``take`` hands out ``(generation, connection)``, given back as is:
    ``close_all`` starts a new generation, so a connection lent before it
    (and closed by it) is not lent again.
    """

    def __init__(self, *, limit: int, timeout: float, connect: Callable[[], Any]) -> None:
        if limit < 1:
            raise ValueError("at least one connection")
        self._limit = limit
        self._timeout = timeout
        self._connect = connect
        self._free: list[tuple[int, Any]] = []
        self._every: list[Any] = []  # of this generation, free or lent
        self._opening = 0
        self._waiting = 0
        self._generation = 0
        # Taken directly on the fast paths: Condition's own methods are Python code.
        self._lock = threading.Lock()
        self._condition = threading.Condition(self._lock)

    def take(self) -> tuple[int, Any]:
        with self._lock:
            if self._free:  # the common case: no wait, no new connection
                return self._free.pop()
            self._waiting += 1
            try:
                available = self._condition.wait_for(self._can_take, self._timeout)
            finally:
                self._waiting -= 1
            if not available:
                raise StorageUnavailable(
                    f"all {self._limit} read connections stayed busy for {self._timeout:g} s"
                )
            if self._free:
                return self._free.pop()
            self._opening += 1
            generation = self._generation
        try:
            connection = self._connect()
        except Exception as e:
            raise StorageUnavailable(f"database unavailable: {type(e).__name__}") from e
        finally:
            with self._condition:
                self._opening -= 1
                self._condition.notify()
        with self._condition:
            if generation == self._generation:
                self._every.append(connection)
        return generation, connection

    def _can_take(self) -> bool:
        return bool(self._free) or len(self._every) + self._opening < self._limit

    def give(self, held: tuple[int, Any]) -> None:
        with self._lock:
            current = held[0] == self._generation
            if current:
                self._free.append(held)
                if self._waiting:
                    self._condition.notify()
        if not current:
            # Of a generation close_all ended (closing twice is harmless).
            held[1].close()

    def close_all(self) -> None:
        """Close every connection, the lent ones too (their borrowers' next
        statement fails as on a closed database)."""
        with self._condition:
            self._generation += 1
            connections, self._every = self._every, []
            self._free.clear()
            self._condition.notify_all()
        for connection in connections:
            connection.close()
