"""The positions projection (format §6) as tables kept inside each append.

Every ``position.stated`` / ``position.withdrawn`` record becomes a version
row; a correction closes the target's current version (``known_to``) and
opens a corrected one, a retraction only closes it. A snapshot at
(``as_of``, ``known_at``) is then, per (party, topic, claimant) cell, one
indexed lookup of the version with the greatest (``occurred_at``, seq) that
was current at ``known_at`` and occurred by ``as_of``: the server never
refolds the ledger per request. ``ledger.core.positions.fold`` stays the
definition; the tests hold the two equal.

Fixes are validated here, under the append's head lock, because whether a
target exists, is itself a fix, or is already retracted depends on the
ledger's state (and on earlier events of the same batch).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.core.errors import InvalidEvent, StorageUnavailable
from ledger.core.jsonvalues import loads_strict
from ledger.core.positions import (
    FIX_TYPES,
    POSITION_TYPES,
    cell_of,
    claimant_of,
    corrected,
)
from ledger.core.projection_rows import MARK_BLOCK, mark_block, running_marks
from ledger.core.records import SERVER_TYPES, Record, SealedDraft
from ledger.store.backend import Backend, backend_of
from ledger.store.database import Database, raw_execute, raw_execute_many
from ledger.store.dbapi_reads import RawReader
from ledger.store.projections import PlannedRows, RowsInto, rebuild_projections
from ledger.store.tables import (
    position_cells,
    position_marks,
    position_versions,
    record_fixes,
    records,
)

__all__ = ["MARK_BLOCK", "CorrectionCheck", "PositionsProjection", "mark_block", "rebuild"]

# Checks that a corrected record is still a valid event of its type.
CorrectionCheck = Callable[[Record], None]

# A version's cell: its own (corrected versions) or, when NULL, built from the
# record it points at, joined in for the few rows a read returns.
_CELL_SOURCE = (
    " LEFT JOIN records r ON v.cell IS NULL AND r.ledger_id = v.ledger_id AND r.seq = v.target_seq"
)
# Versions current at known_at, plus the last version of each record retracted by then.
_SELECT_HISTORY = (
    "SELECT v.target_seq, v.known_to, v.party, v.topic, v.claimant, v.occurred_at, v.cell,"
    " r.canonical FROM position_versions v" + _CELL_SOURCE + " WHERE v.ledger_id = ?"
    " AND v.known_from <= ? AND (v.known_to IS NULL OR v.known_to > ? OR v.known_to IN"
    " (SELECT fix_seq FROM record_fixes WHERE ledger_id = ? AND kind = 'retracted'"
    " AND fix_seq <= ?))"
)
_SELECT_FIXES = (
    "SELECT f.fix_seq, f.target_seq, f.kind, r.canonical FROM record_fixes f"
    " JOIN records r ON r.ledger_id = f.ledger_id AND r.seq = f.fix_seq"
    " WHERE f.ledger_id = ? AND f.fix_seq <= ? ORDER BY f.fix_seq"
)
# One statement: per cell, an index seek for the newest visible version.
_NEWEST_VISIBLE = (
    " FROM position_versions w"
    " WHERE w.ledger_id = c.ledger_id AND w.party = c.party AND w.topic = c.topic"
    " AND w.claimant = c.claimant AND w.occurred_at <= ? AND w.known_from <= ?"
    " AND (w.known_to IS NULL OR w.known_to > ?)"
    " ORDER BY w.occurred_at DESC, w.target_seq DESC LIMIT 1"
)
# SQLite has no LATERAL: the seek yields the version's rowid.
_ROWID_SNAPSHOT = (
    "SELECT c.party, c.topic, c.claimant, v.cell, r.canonical FROM position_cells c"
    " JOIN position_versions v ON v.rowid = (SELECT w.rowid"
    + _NEWEST_VISIBLE
    + ")"
    + _CELL_SOURCE
    + " WHERE c.ledger_id = ?"
)
_LATERAL_SNAPSHOT = (
    "SELECT c.party, c.topic, c.claimant, v.cell, r.canonical FROM position_cells c"
    " CROSS JOIN LATERAL (SELECT w.ledger_id, w.target_seq, w.cell"
    + _NEWEST_VISIBLE
    + ") v"
    + _CELL_SOURCE
    + " WHERE c.ledger_id = ?"
)
# The cells an append touches, inserted unless present: no cell is read, so an
# append's cost does not grow with the number of cells its ledger has. 128
# rows bind 512 values, under any SQLite build's limit.
_UPSERT_CELLS = (
    "INSERT INTO position_cells (ledger_id, party, topic, claimant) VALUES {rows}"
    " ON CONFLICT (ledger_id, party, topic, claimant) DO NOTHING"
)
_CELLS_PER_STATEMENT = 128
# Valid-time marks (migration 0004): a version known at K occurred no later
# than the mark of K's block, so a snapshot's scan starts there.
_SELECT_MARK = (
    "SELECT occurred_at FROM position_marks WHERE ledger_id = ? AND known_from <= ?"
    " ORDER BY known_from DESC LIMIT 1"
)
_SELECT_LAST_MARK = (
    "SELECT occurred_at FROM position_marks WHERE ledger_id = ? ORDER BY known_from DESC LIMIT 1"
)
_UPSERT_MARK = (
    "INSERT INTO position_marks (ledger_id, known_from, occurred_at) VALUES (?, ?, ?)"
    " ON CONFLICT (ledger_id, known_from) DO UPDATE SET occurred_at = excluded.occurred_at"
)
# One block raised in one statement (the usual append): the new mark is the
# greater of its own latest time and the last stored mark, which the
# sub-select reads; one round trip instead of two on PostgreSQL.
_RAISE_ONE_MARK = (
    "INSERT INTO position_marks (ledger_id, known_from, occurred_at)"
    " SELECT ?, ?, CASE WHEN prior.occurred_at IS NOT NULL AND prior.occurred_at > ?"
    " THEN prior.occurred_at ELSE ? END"
    " FROM (SELECT (" + _SELECT_LAST_MARK + ") AS occurred_at) AS prior"
    # WHERE: SQLite reads ON CONFLICT after a bare FROM as a join constraint.
    " WHERE true"
    " ON CONFLICT (ledger_id, known_from) DO UPDATE SET occurred_at = excluded.occurred_at"
)
# The same marks from the versions alone: a running maximum over blocks.
_REBUILD_MARKS = (
    "INSERT INTO position_marks (ledger_id, known_from, occurred_at)"
    " SELECT ledger_id, block, MAX(block_max) OVER (ORDER BY block ROWS UNBOUNDED PRECEDING)"
    " FROM (SELECT ledger_id, ((known_from - 1) / 1024) * 1024 + 1 AS block,"
    " MAX(occurred_at) AS block_max FROM position_versions WHERE ledger_id = ?"
    " GROUP BY ledger_id, block) b"
)


# The last fixed-width time: "no as_of bound".
_END_OF_TIME = "9999-12-31T23:59:59Z"


_VERSION_COLUMNS = (
    "INSERT INTO position_versions (ledger_id, target_seq, known_from, known_to, party,"
    " topic, claimant, occurred_at, cell) "
)


# Per backend, the statement that derives first versions from records.
_FIRST_VERSIONS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _first_versions_sql(backend: Backend) -> str:
    """The first version of every position record is a copy of the record's
    indexed columns with a NULL cell (the record itself), built by the
    database on both write paths (append and rebuild). Only the claimant
    needs the JSON, and only records that mention "claimed_by" at all are
    parsed for it."""
    mentions = backend.bytes_contain("canonical", '"claimed_by"')
    claimant = backend.json_text("canonical", "data", "claimed_by")
    return (
        _VERSION_COLUMNS + "SELECT ledger_id, seq, seq, NULL, party, topic,"
        f" CASE WHEN type = 'position.stated' AND {mentions}"
        f" THEN COALESCE({claimant}, '') ELSE '' END, occurred_at, NULL FROM records"
        " WHERE ledger_id = ? AND seq BETWEEN ? AND ?"
        " AND type IN ('position.stated', 'position.withdrawn')"
        " AND party IS NOT NULL AND topic IS NOT NULL"
    )


def _insert_first_versions(conn: Connection, ledger_id: int, first: int, last: int) -> None:
    """Project the position records with seq in [first, last] (one statement)."""
    backend = backend_of(conn)
    sql = _FIRST_VERSIONS.get(backend)
    if sql is None:
        sql = _first_versions_sql(backend)
        if conn.dialect.paramstyle != "qmark":
            sql = sql.replace("?", "%s")
        _FIRST_VERSIONS[backend] = sql
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, (ledger_id, first, last))
    finally:
        cursor.close()


def _raise_marks(conn: Connection, ledger_id: int, blocks: dict[int, str]) -> None:
    """Carry the running valid-time maximum through the blocks this append touched."""
    if len(blocks) == 1:
        ((block, latest),) = blocks.items()
        raw_execute(conn, _RAISE_ONE_MARK, (ledger_id, block, latest, latest, ledger_id))
        return
    last = raw_execute(conn, _SELECT_LAST_MARK, (ledger_id,))
    for block, running in running_marks(blocks, last[0][0] if last else ""):
        raw_execute(conn, _UPSERT_MARK, (ledger_id, block, running))


def read_cell(stored: str | bytes | None, canonical: bytes | memoryview | None) -> dict[str, Any]:
    """A version's cell: stored for corrected versions, else built from its record."""
    if stored is not None:
        # Cells written before migration 0004 (by the database) hold JSON nulls.
        return {k: v for k, v in orjson.loads(stored).items() if v is not None}
    if canonical is None:
        raise StorageUnavailable("a position version points at a missing record")
    return cell_of(Record.from_dict(orjson.loads(bytes(canonical)))).to_dict()


_INSERT_FIRST_VERSION = _VERSION_COLUMNS + "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


class _VersionWriter:
    """Collects version rows and new cells of one append; writes them in bulk.

    First versions are what ``_insert_first_versions`` derives from the
    records. A database whose statements run in process derives them
    itself, in C (``Backend.derives_rows``). A remote one is sent the rows,
    which Python has at hand (``add`` works out the claimant for the cell
    anyway), rather than reading back the records just written: that
    statement was the longest of a group under many clients of single
    appends (``scripts/bench.sh appends``). The rebuild still derives them
    in SQL, and a test holds the two equal.
    """

    def __init__(self, conn: Connection | None, ledger_id: int) -> None:
        """``conn`` None: the rows are only planned (``PositionsProjection.planned``),
        as sent ones, and never flushed."""
        self.conn = conn
        self.ledger_id = ledger_id
        # Whether the database derives first versions from the records
        # (``Backend.derives_rows``); otherwise it is sent the rows themselves.
        self._derives = conn is not None and backend_of(conn).derives_rows
        # The first-version rows themselves, when they are sent.
        self.first_versions: list[tuple[int, int, int, None, str, str, str, str, None]] = []
        self.versions: list[dict[str, Any]] = []
        # Cells this append touched: ``new_cells`` are those not yet written.
        self._cells: set[tuple[str, str, str]] = set()
        self.new_cells: list[tuple[str, str, str]] = []
        self._first: int | None = None  # seq range of records awaiting their first version
        self._last = 0
        # Per mark block, the latest occurred_at among this append's versions.
        self.blocks: dict[int, str] = {}

    def add_new(self, sealed: SealedDraft) -> None:
        """Project a record as the append writing it sealed it."""
        seq, draft = sealed
        if draft.party is None or draft.topic is None:
            return
        self._add(seq, draft.party, draft.topic, draft.claimant or "", draft.occurred_at, seq, None)

    def add(self, record: Record, *, known_from: int) -> None:
        """Project a stored record (known from its own seq), or a corrected one."""
        if record.party is None or record.topic is None:
            return
        claimant = claimant_of(record) or ""
        self._add(
            record.seq, record.party, record.topic, claimant, record.occurred_at, known_from, record
        )

    def _add(
        self,
        seq: int,
        party: str,
        topic: str,
        claimant: str,
        occurred_at: str,
        known_from: int,
        record: Record | None,
    ) -> None:
        """One version of the record at ``seq``; ``record`` (needed only when it is
        corrected: its cell is stored) is the version's content."""
        block = mark_block(known_from)
        self.blocks[block] = max(self.blocks.get(block, ""), occurred_at)
        if known_from == seq and self._derives:
            if self._first is None:
                self._first = seq
            self._last = seq
        elif known_from == seq:  # the row itself (see the class)
            row = (self.ledger_id, seq, seq, None, party, topic)
            self.first_versions.append((*row, claimant, occurred_at, None))
        else:  # a corrected version: built here, from the corrected record
            assert record is not None, "a corrected version has its record"
            self.versions.append(
                {
                    "ledger_id": self.ledger_id,
                    "target_seq": seq,
                    "known_from": known_from,
                    "known_to": None,
                    "party": party,
                    "topic": topic,
                    "claimant": claimant,
                    "occurred_at": occurred_at,
                    "cell": cell_text(cell_of(record).to_dict()),
                }
            )
        cell = (party, topic, claimant)
        if cell not in self._cells:
            self._cells.add(cell)
            self.new_cells.append(cell)

    def flush(self) -> None:
        conn = self.conn
        assert conn is not None, "a planning writer is never flushed"
        if self._first is not None:
            _insert_first_versions(conn, self.ledger_id, self._first, self._last)
            self._first = None
        if self.first_versions:
            raw_execute_many(
                conn,
                _INSERT_FIRST_VERSION,
                self.first_versions,
                table=position_versions,
            )
            self.first_versions = []
        if self.versions:
            conn.execute(position_versions.insert(), self.versions)
            self.versions = []
        cells, self.new_cells = self.new_cells, []
        for start in range(0, len(cells), _CELLS_PER_STATEMENT):
            chunk = cells[start : start + _CELLS_PER_STATEMENT]
            raw_execute(
                conn,
                _UPSERT_CELLS.format(rows=", ".join(["(?, ?, ?, ?)"] * len(chunk))),
                [value for cell in chunk for value in (self.ledger_id, *cell)],
            )


# Where the planned rows of an append go (``ledger.store.projections.RowsInto``):
# first versions, from (seq, party, topic, claimant, occurred_at) ...
_FIRST_VERSIONS_INTO = RowsInto(
    position_versions,
    ("target_seq", "known_from", "known_to", "party", "topic", "claimant", "occurred_at", "cell"),
    fields=("target_seq", "party", "topic", "claimant", "occurred_at"),
    values=(
        "u.target_seq",
        "u.target_seq",
        "NULL",
        "u.party",
        "u.topic",
        "u.claimant",
        "u.occurred_at",
        "NULL",
    ),
)
# ... the cells they touch, unless present ...
_CELLS_INTO = RowsInto(
    position_cells,
    ("party", "topic", "claimant"),
    conflict="ON CONFLICT (ledger_id, party, topic, claimant) DO NOTHING",
)
# ... and the marks to raise, each to the greater of its running maximum
# within the group and the last stored mark (as _RAISE_ONE_MARK does).
_MARKS_INTO = RowsInto(
    position_marks,
    ("known_from", "occurred_at"),
    values=(
        "u.known_from",
        "CASE WHEN prior.occurred_at IS NOT NULL AND prior.occurred_at > u.occurred_at"
        " THEN prior.occurred_at ELSE u.occurred_at END",
    ),
    joins="(SELECT (SELECT occurred_at FROM position_marks WHERE ledger_id = %(ledger_id)s"
    " ORDER BY known_from DESC LIMIT 1) AS occurred_at) AS prior",
    conflict="ON CONFLICT (ledger_id, known_from) DO UPDATE SET occurred_at = excluded.occurred_at",
)


class PositionsProjection:
    """The positions projection, a ``ledger.store.projections.Projection``."""

    tables: tuple[sa.Table, ...] = (
        position_versions,
        position_cells,
        position_marks,
        record_fixes,
    )
    writes: tuple[RowsInto, ...] = (_FIRST_VERSIONS_INTO, _CELLS_INTO, _MARKS_INTO)

    def __init__(self, *, check_correction: CorrectionCheck | None = None) -> None:
        self.check_correction = check_correction

    # -- maintained inside the append transaction --------------------------

    @staticmethod
    def validates(batch: Sequence[SealedDraft]) -> bool:
        """Only corrections and retractions can be refused here (by their targets)."""
        return any(sealed.draft.type in FIX_TYPES for sealed in batch)

    @staticmethod
    def planned(batch: Sequence[SealedDraft]) -> tuple[PlannedRows, ...] | None:
        """What ``apply`` writes for ``batch``, when that needs no database: no fix
        among it."""
        writer = _VersionWriter(None, 0)
        for sealed in batch:
            kind = sealed.draft.type
            if kind in FIX_TYPES:
                return None
            if kind in POSITION_TYPES:
                writer.add_new(sealed)
        versions = tuple(
            (seq, party, topic, claimant, occurred_at)
            for _, seq, _, _, party, topic, claimant, occurred_at, _ in writer.first_versions
        )
        return (
            PlannedRows(_FIRST_VERSIONS_INTO, versions),
            PlannedRows(_CELLS_INTO, writer.new_cells),
            PlannedRows(_MARKS_INTO, running_marks(writer.blocks)),
        )

    @staticmethod
    def rebuild(
        conn: Connection, ledger_id: int, head: int, progress: Callable[[int], None]
    ) -> None:
        """Every row of ``tables`` for the ledger, from its records (see ``_rebuild``)."""
        _rebuild(conn, ledger_id, head, progress)

    def apply(self, conn: Connection, ledger_id: int, batch: Sequence[SealedDraft]) -> None:
        """Validate fixes and project the records of one append (already inserted).

        Version rows are written in one multi-row insert per run of
        statements; a fix first flushes what precedes it, since it may
        target a record of the same batch.
        """
        many = len(batch) > 1
        writer = _VersionWriter(conn, ledger_id)
        for index, sealed in enumerate(batch):
            kind = sealed.draft.type
            if kind in FIX_TYPES:
                writer.flush()
                self._fix(conn, ledger_id, sealed, f"[{index}]." if many else "", writer)
            elif kind in POSITION_TYPES:
                writer.add_new(sealed)
        writer.flush()
        if writer.blocks:
            _raise_marks(conn, ledger_id, writer.blocks)

    def _fix(
        self,
        conn: Connection,
        ledger_id: int,
        sealed: SealedDraft,
        prefix: str,
        writer: _VersionWriter,
    ) -> None:
        fix_seq, fix = sealed
        fix_data = fix.data
        field = f"{prefix}data.target_seq"
        target_seq = fix_data.get("target_seq")
        if not isinstance(target_seq, int) or target_seq >= fix_seq:
            raise InvalidEvent(
                f"must name an earlier record (this record will be seq {fix_seq})", field=field
            )
        row = conn.execute(
            sa.select(records.c.type, records.c.canonical).where(
                records.c.ledger_id == ledger_id, records.c.seq == target_seq
            )
        ).first()
        if row is None:
            raise InvalidEvent(f"there is no record at seq {target_seq}", field=field)
        if row.type in FIX_TYPES:
            raise InvalidEvent(
                f"seq {target_seq} is a {row.type}; corrections and retractions "
                "cannot themselves be corrected or retracted",
                field=field,
            )
        if row.type in SERVER_TYPES:
            raise InvalidEvent(f"seq {target_seq} is a server record ({row.type})", field=field)
        retracted = conn.execute(
            sa.select(record_fixes.c.fix_seq).where(
                record_fixes.c.ledger_id == ledger_id,
                record_fixes.c.target_seq == target_seq,
                record_fixes.c.kind == "retracted",
            )
        ).first()
        if retracted is not None:
            raise InvalidEvent(
                f"seq {target_seq} was already retracted by seq {retracted.fix_seq}", field=field
            )
        kind = "retracted" if fix.type == "record.retracted" else "corrected"
        effective: Record | None = None
        if kind == "corrected" or row.type in POSITION_TYPES:
            effective = self._effective(
                conn, ledger_id, Record.from_dict(loads_strict(bytes(row.canonical)))
            )
        if kind == "corrected":
            assert effective is not None
            effective = corrected(effective, fix_data.get("changes") or {})
            if self.check_correction is not None:
                try:
                    self.check_correction(effective)
                except InvalidEvent as e:
                    raise InvalidEvent(
                        f"the corrected record would be invalid: {e}",
                        field=f"{prefix}data.changes",
                    ) from e
        conn.execute(
            record_fixes.insert().values(
                ledger_id=ledger_id, fix_seq=fix_seq, target_seq=target_seq, kind=kind
            )
        )
        if row.type in POSITION_TYPES:
            conn.execute(
                position_versions.update()
                .where(
                    position_versions.c.ledger_id == ledger_id,
                    position_versions.c.target_seq == target_seq,
                    position_versions.c.known_to.is_(None),
                )
                .values(known_to=fix_seq)
            )
            if kind == "corrected" and effective is not None:
                writer.add(effective, known_from=fix_seq)
                writer.flush()

    def _effective(self, conn: Connection, ledger_id: int, target: Record) -> Record:
        """The target as corrected by every earlier correction, in seq order."""
        fixes = conn.execute(
            sa.select(records.c.canonical)
            .select_from(
                record_fixes.join(
                    records,
                    sa.and_(
                        records.c.ledger_id == record_fixes.c.ledger_id,
                        records.c.seq == record_fixes.c.fix_seq,
                    ),
                )
            )
            .where(
                record_fixes.c.ledger_id == ledger_id,
                record_fixes.c.target_seq == target.seq,
                record_fixes.c.kind == "corrected",
            )
            .order_by(record_fixes.c.fix_seq)
        ).all()
        for fix_row in fixes:
            fix = json.loads(bytes(fix_row.canonical))
            target = corrected(target, fix["data"].get("changes") or {})
        return target

    # -- reads --------------------------------------------------------------

    @staticmethod
    def snapshot(
        reader: RawReader,
        ledger_id: int,
        *,
        as_of: str | None,
        known_at: int,
        party: str | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """format §6 (state, claims) dicts at (as_of, known_at), from the tables."""
        bound = as_of or _END_OF_TIME
        mark = reader.one(_SELECT_MARK, [ledger_id, known_at])
        if mark is None:
            return {}, {}  # no position was known by known_at
        bound = min(bound, mark[0])
        state: dict[str, dict[str, Any]] = {}
        claims: dict[str, dict[str, dict[str, Any]]] = {}
        query = _LATERAL_SNAPSHOT if reader.lateral_joins else _ROWID_SNAPSHOT
        rows = reader.all(query, [bound, known_at, known_at, ledger_id])
        for row_party, topic, claimant, stored, canonical in sorted(rows, key=lambda r: r[:3]):
            if party is not None and row_party != party:
                continue
            cell = read_cell(stored, canonical)
            if claimant:
                claims.setdefault(row_party, {}).setdefault(topic, {})[claimant] = cell
            else:
                state.setdefault(row_party, {})[topic] = cell
        return state, claims

    @staticmethod
    def history(
        reader: RawReader,
        ledger_id: int,
        *,
        known_at: int,
        party: str | None,
        topic: str | None,
    ) -> list[dict[str, Any]]:
        """Statements in (occurred_at, seq) order as known at ``known_at``.

        Each item names its stance change (``from`` -> ``to``, within its
        party, topic and claimant), its source, and every correction or
        retraction recorded against it by ``known_at``. Retracted statements
        are listed, marked, and skipped by the ``from`` chain.
        """
        rows = reader.all(_SELECT_HISTORY, [ledger_id, known_at, known_at, ledger_id, known_at])
        fixes: dict[int, list[dict[str, Any]]] = {}
        for fix_seq, target_seq, kind, canonical in reader.all(
            _SELECT_FIXES, [ledger_id, known_at]
        ):
            fix = json.loads(bytes(canonical))
            entry: dict[str, Any] = {
                "seq": int(fix_seq),
                "kind": kind,
                "occurred_at": fix["occurred_at"],
                "reason": fix["data"].get("reason"),
            }
            if kind == "corrected":
                entry["changes"] = fix["data"].get("changes")
            fixes.setdefault(int(target_seq), []).append(entry)
        items = []
        previous: dict[tuple[str, str, str], str] = {}
        ordered = sorted(rows, key=lambda r: (r[5], int(r[0])))
        for target_seq, known_to, row_party, row_topic, claimant, _, stored, canonical in ordered:
            if (party is not None and row_party != party) or (
                topic is not None and row_topic != topic
            ):
                continue
            cell = read_cell(stored, canonical)
            retracted = known_to is not None and int(known_to) <= known_at
            key = (row_party, row_topic, claimant)
            item: dict[str, Any] = {
                "seq": int(target_seq),
                "party": row_party,
                "topic": row_topic,
            }
            if claimant:
                item["claimed_by"] = claimant
            item.update(
                occurred_at=cell["since"],
                **{"from": previous.get(key), "to": cell["stance"]},
                summary=cell.get("summary"),
            )
            if "terms" in cell:
                item["terms"] = cell["terms"]
            if "source" in cell:
                item["source"] = cell["source"]
            item["retracted"] = retracted
            item["fixes"] = fixes.get(int(target_seq), [])
            if not retracted:
                previous[key] = cell["stance"]
            items.append(item)
        return items


def cell_text(cell: dict[str, Any]) -> str:
    """A cell as stored: sorted-key JSON, the same bytes on both write paths.

    Not the canonical form (a signature re-canonicalizes what it signs), so
    orjson may write it, many times faster than the RFC 8785 package.
    """
    return orjson.dumps(cell, option=orjson.OPT_SORT_KEYS).decode("utf-8")


def rebuild(
    database: Database,
    ledger: str,
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Recompute every positions projection row of ``ledger`` from its records
    alone (``ledger.store.projections.rebuild_projections``)."""
    return rebuild_projections(database, ledger, [PositionsProjection()], progress=progress)


def _rebuild(conn: Connection, ledger_id: int, head: int, progress: Callable[[int], None]) -> None:
    """``PositionsProjection.rebuild``: first versions are projected by the
    database in one statement (the same one appends use); then the few
    corrections and retractions are replayed in seq order."""
    if head:
        _insert_first_versions(conn, ledger_id, 1, head)
    progress(head // 2)
    fix_rows = raw_execute(
        conn,
        "SELECT f.seq, f.type, f.canonical FROM records f WHERE f.ledger_id = ?"
        " AND f.type IN ('record.corrected', 'record.retracted') ORDER BY f.seq",
        (ledger_id,),
    )
    effective: dict[int, Record] = {}
    retracted: set[int] = set()
    for fix_seq, kind, canonical in fix_rows:
        fix = orjson.loads(bytes(canonical))
        target = fix["data"]["target_seq"]
        fix_kind = "retracted" if kind == "record.retracted" else "corrected"
        raw_execute(
            conn,
            "INSERT INTO record_fixes (ledger_id, fix_seq, target_seq, kind) VALUES (?, ?, ?, ?)",
            (ledger_id, fix_seq, target, fix_kind),
        )
        if target in retracted:
            continue
        if target not in effective:
            found = raw_execute(
                conn,
                "SELECT type, canonical FROM records WHERE ledger_id = ? AND seq = ?",
                (ledger_id, target),
            )
            if not found or found[0][0] not in POSITION_TYPES:
                continue  # a fix of a non-position record: listed, not projected
            effective[target] = Record.from_dict(orjson.loads(bytes(found[0][1])))
        raw_execute(
            conn,
            "UPDATE position_versions SET known_to = ? WHERE ledger_id = ?"
            " AND target_seq = ? AND known_to IS NULL",
            (fix_seq, ledger_id, target),
        )
        if fix_kind == "retracted":
            retracted.add(target)
            continue
        record = corrected(effective[target], fix["data"].get("changes") or {})
        effective[target] = record
        if record.party is None or record.topic is None:
            continue
        raw_execute(
            conn,
            _INSERT_VERSION,
            (
                ledger_id,
                target,
                fix_seq,
                None,
                record.party,
                record.topic,
                claimant_of(record) or "",
                record.occurred_at,
                cell_text(cell_of(record).to_dict()),
            ),
        )
    raw_execute(conn, _REBUILD_MARKS, (ledger_id,))
    raw_execute(
        conn,
        "INSERT INTO position_cells (ledger_id, party, topic, claimant)"
        " SELECT DISTINCT ledger_id, party, topic, claimant FROM position_versions"
        " WHERE ledger_id = ?",
        (ledger_id,),
    )
    progress(head - head // 2)


_INSERT_VERSION = (
    "INSERT INTO position_versions (ledger_id, target_seq, known_from, known_to, party, topic,"
    " claimant, occurred_at, cell) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
