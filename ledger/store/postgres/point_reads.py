"""PostgreSQL's point reads: a pooled connection in autocommit, for one
statement or a few, with no transaction around them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from ledger.core.errors import StorageUnavailable

__all__ = ["PooledReaders"]


class PooledReaders:
    """``ledger.store.backend.PointReads`` on the engine's pool."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        try:
            pooled = self._engine.raw_connection()
        except sa_exc.TimeoutError as e:
            raise StorageUnavailable("every pooled database connection stayed busy") from e
        except Exception as e:
            raise StorageUnavailable(f"database unavailable: {type(e).__name__}") from e
        driver = pooled.driver_connection
        try:
            driver.autocommit = True  # type: ignore[union-attr]
            cursor = pooled.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
        except (psycopg.OperationalError, psycopg.InterfaceError) as e:
            pooled.invalidate(e)
            raise StorageUnavailable(f"database unavailable: {type(e).__name__}") from e
        finally:
            if pooled.is_valid:
                try:
                    driver.autocommit = False  # type: ignore[union-attr]
                except psycopg.Error:
                    pooled.invalidate()
            pooled.close()

    def close_all(self) -> None:
        """Nothing of its own: the engine's pool is disposed with the engine."""
