"""The one port between the store and a database engine, and the factory that
picks the engine's implementation (``ledger.store.sqlite`` or
``ledger.store.postgres``) once, from the database URL."""

from __future__ import annotations

import importlib
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:
    from ledger.store.projections import PlannedRows, RowsInto

__all__ = [
    "AppendPort",
    "Backend",
    "PointReads",
    "RevocationNotices",
    "SealedGroup",
    "backend_for",
    "backend_of",
    "driver_outages",
    "register",
]

# The package implementing each URL's backend name (``URL.get_backend_name``).
_PACKAGES = {"sqlite": "ledger.store.sqlite", "postgresql": "ledger.store.postgres"}


@dataclass(frozen=True, slots=True, kw_only=True)
class SealedGroup:
    """An append group the recorder sealed, chained, grew the tree for and
    signed, on a head it assumed: what ``Backend.write_group`` stores."""

    ledger_id: int
    # The head the group was sealed on, and the one it leaves.
    old_seq: int
    old_hash: str
    new_seq: int
    new_hash: str
    recorded_at: str
    # The active verifier keys the note was signed with, oldest first.
    active_keys: Sequence[str]
    # records rows without their ledger id, in the table's column order.
    records: Sequence[Sequence[Any]]
    # Every registered projection's rows for the group (``Projection.planned``).
    projected: Sequence[PlannedRows]
    nodes: Sequence[tuple[int, bytes]]  # (node key, hash) of the stored nodes
    root: bytes
    note: str


class RevocationNotices(Protocol):
    """How a committed token revocation reaches every server of one database
    (``ledger.store.tokens`` caches principals only while it is heard)."""

    def watch(
        self, *, on_listening: Callable[[bool], None], on_revoked: Callable[[], None]
    ) -> None:
        """Start hearing revocations: ``on_listening(True)`` once every later one
        will be heard, ``on_listening(False)`` whenever that stops being sure,
        ``on_revoked()`` for each one heard. Idempotent."""

    def stop(self) -> None:
        """Stop hearing them (caching stops with it)."""

    def fresh(self) -> bool:
        """Per request: whether cached principals may be served now; a revocation
        found here is reported to ``on_revoked`` first (and False returned)."""

    def announce_in(self, conn: Connection) -> None:
        """Inside the revoking transaction: say it, to be heard once it commits."""

    def announce(self, name: str, revoked_at: str) -> None:
        """After the revoking transaction committed: say it now."""


class AppendPort(Protocol):
    """Where ``ledger.store.recorder`` hands what it sealed: the one place an
    append's writes differ between engines.

    * ``inline_groups``: append groups from an event loop are prepared on
      that loop, their COMMIT in a thread, and requests that queue
      meanwhile are sealed ahead (a local, in-process database whose
      statements are CPU; see ``ledger.store.groupcommit``). Otherwise they
      are offered to ``write_group`` first, when ``writes_groups``.
    * ``head_lock``: what a ``SELECT`` of the head row appends so that it
      holds the ledger's write lock until the transaction ends ("" when the
      write transaction already holds the database's only write lock).
    * ``integrity_errors``: what a constraint refusing a row raises, from
      SQLAlchemy or from the driver.
    """

    inline_groups: bool
    writes_groups: bool
    head_lock: str
    integrity_errors: tuple[type[Exception], ...]

    def insert_many(
        self,
        conn: Connection,
        sql: str,
        rows: Sequence[Sequence[Any]],
        table: sa.Table | None,
    ) -> None:
        """All of ``rows`` inserted by ``sql`` (a one-row ``INSERT ... VALUES
        (?, ...)``; ``table`` its definition), inside the caller's transaction
        and atomic with it; a constraint refusing any row raises one of
        ``integrity_errors``."""

    def move_head(self, conn: Connection, moved: Sequence[Any], checkpoint: Sequence[Any]) -> None:
        """Inside the caller's transaction: the head row updated (``moved``: head
        seq, hash, last_recorded_at, ledger id) and the checkpoint row inserted
        (``checkpoint``: ledger id, tree size, root, head hash, note,
        created_at)."""

    async def write_group(self, group: SealedGroup, projections: Sequence[RowsInto]) -> bool:
        """Only when ``writes_groups``, from the event loop, without holding a
        thread: ``group`` stored in one transaction of its own, if the ledger's
        head is still ``old_seq``/``old_hash`` and the active keys are still
        ``active_keys``. ``projections``: where ``group.projected``'s rows may
        go (every registered projection's ``writes``, one tuple for the
        caller's life). True: all of it was committed. False: nothing was
        written (the head or keys moved, a constraint refused a row, the
        write failed), and the caller commits the group the usual way.
        Raises ``StorageUnavailable`` when the connection failed after the
        write was sent (it may or may not have committed)."""
        ...


class PointReads(Protocol):
    """Cursors for the hot point reads, in autocommit: no transaction around them."""

    def cursor(self) -> AbstractContextManager[Any]:
        """A DBAPI cursor for a few statements; a failure to get one, or the
        driver's outage errors inside the block, raise ``StorageUnavailable``."""
        ...

    def close_all(self) -> None:
        """Close every connection kept for point reads (new ones open if used again)."""


class Backend(AppendPort, Protocol):
    """One database engine's way of holding the store: chosen once by
    ``backend_for``, owned by its ``Database``. Its capabilities are fixed
    for its life; the store reads them rather than asking which engine it
    runs on."""

    # Token lookups cost less than the hop to a worker thread (a local read).
    cheap_token_lookups: bool
    # Statements run in this process: rows the database can derive from the
    # records a transaction just stored cost no round trip.
    derives_rows: bool
    # The driver's own errors for a database that cannot be reached or used.
    outage_errors: tuple[type[Exception], ...]

    # The engine has LATERAL joins (else the newest row of a group is found
    # by a correlated subquery on rowid).
    lateral_joins: bool

    # -- SQL the engines spell differently ------------------------------

    def json_text(self, column: str, *path: str) -> str:
        """SQL for the text at ``path`` in the JSON held as bytes by ``column``."""
        ...

    def bytes_contain(self, column: str, needle: str) -> str:
        """SQL: whether the bytes of ``column`` contain the ASCII ``needle``."""
        ...

    # -- the engine ------------------------------------------------------

    def engine_options(
        self, url: sa.URL, *, pool_size: int | None, pool_overflow: int | None, timeout: float
    ) -> dict[str, Any]:
        """``create_engine``'s keyword arguments for ``url``."""
        ...

    def attach(self, engine: Engine) -> None:
        """Install the engine's hooks (run once, right after it was made)."""

    def read_options(self) -> Mapping[str, Any]:
        """Execution options of a connection for reads without a transaction."""
        ...

    def point_reads(self, engine: Engine, *, limit: int, timeout: float) -> PointReads:
        """Where the hot point reads (``ledger.store.dbapi_reads``) get a cursor:
        ``limit`` and ``timeout`` bound connections the backend keeps for them."""
        ...

    def write_options(self) -> Mapping[str, Any]:
        """Execution options of the connection write transactions run on."""
        ...

    # Every write takes the one kept writer connection (under its lock).
    single_writer: bool

    def reusable(self, connection: Connection, idle: float) -> bool:
        """Whether a write connection kept idle ``idle`` seconds may be used again."""
        ...

    def committed(self) -> None:
        """A write transaction committed (called after every one)."""

    def commit_failed(self, error: Exception) -> Exception | None:
        """What a failed COMMIT raises instead of ``error``, if anything."""
        ...

    def lock_migrations(self, conn: Connection) -> None:
        """Serialize schema upgrades of several processes starting at once."""

    def revocations(self, url: sa.URL) -> RevocationNotices:
        """How revocations reach the servers of ``url``'s database."""
        ...

    def close(self) -> None:
        """Stop whatever the backend runs (threads, kept connections)."""


_OUTAGES: list[type[Exception]] = []
_BY_ENGINE: weakref.WeakKeyDictionary[Engine, Backend] = weakref.WeakKeyDictionary()


def backend_for(url: sa.URL) -> Backend:
    """The backend of ``url``'s database engine (imported only when used)."""
    name = url.get_backend_name()
    if name not in _PACKAGES:
        raise ValueError(f"unsupported database {name!r}")
    made: Backend = importlib.import_module(_PACKAGES[name]).make_backend(url)
    _OUTAGES.extend(e for e in made.outage_errors if e not in _OUTAGES)
    return made


def register(engine: Engine, backend: Backend) -> None:
    """Make ``backend`` the one ``backend_of`` finds for ``engine``'s connections."""
    _BY_ENGINE[engine] = backend


def backend_of(conn: Connection) -> Backend:
    """The backend of the database ``conn`` belongs to."""
    return _BY_ENGINE[conn.engine]


def driver_outages() -> tuple[type[Exception], ...]:
    """The outage errors of every backend made so far (``translate_errors``)."""
    return tuple(_OUTAGES)
