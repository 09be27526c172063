"""The sources projection (docs/sources.md): rows kept inside each append, rebuild, reads.

``ledger.core.sources`` derives the rows (``source_citations``, insert-only:
a correction or retraction adds a row for its target); this module holds the
SQL. Fixes are validated by the positions projection, which runs first in the
same transaction: by the time ``apply`` sees a fix, its target exists and is
neither a fix nor retracted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.core.errors import MalformedRecord, NotFound
from ledger.core.jsonvalues import loads_strict
from ledger.core.positions import FIX_TYPES
from ledger.core.records import Record, SealedDraft
from ledger.core.sources import (
    FIRST,
    RETRACTED,
    CitationRow,
    Cited,
    SourceRows,
    SourcesView,
    citations_from_rows,
    cited_of,
    first_row,
    fix_row,
)
from ledger.store.database import Database, raw_execute, raw_execute_many
from ledger.store.dbapi_reads import raw_read
from ledger.store.projections import PlannedRows, RowsInto
from ledger.store.tables import source_citations

__all__ = [
    "SourcesProjection",
    "fill_ledger",
    "read_citations",
    "stored_rows",
]

_COLUMNS = (
    "target_seq, known_from, fix, name, kind, url, reported_at, party, topic, occurred_at, document"
)
_INSERT = (
    f"INSERT INTO source_citations (ledger_id, {_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Before migration 0015 the table has no ``document`` column (migration
# 0012 fills it with these).
_INSERT_UNDOCUMENTED = (
    f"INSERT INTO source_citations (ledger_id, {_COLUMNS.removesuffix(', document')})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_LATEST = (
    f"SELECT {_COLUMNS} FROM source_citations WHERE ledger_id = ? AND target_seq = ?"
    " ORDER BY known_from DESC LIMIT 1"
)
_SELECT_RECORD = "SELECT canonical FROM records WHERE ledger_id = ? AND seq = ?"
_SELECT_PAGE = (
    "SELECT seq, type, canonical FROM records WHERE ledger_id = ? AND seq > ? ORDER BY seq LIMIT ?"
)
# The rows known by the view's tree size of every record that has a row
# matching ``{named}`` (it cites, or once cited, the source asked for), with
# the record's id and type; ``citations_from_rows`` keeps each one's latest.
_SELECT_CITATIONS = (
    "SELECT c.target_seq, c.known_from, c.fix, c.name, c.kind, c.url, c.reported_at,"
    " c.party, c.topic, c.occurred_at, c.document, r.event_id, r.type FROM source_citations c"
    " JOIN records r ON r.ledger_id = c.ledger_id AND r.seq = c.target_seq"
    " WHERE c.ledger_id = ? AND c.known_from <= ? AND c.target_seq IN"
    " (SELECT n.target_seq FROM source_citations n WHERE n.ledger_id = ? AND {named})"
)
_SELECT_STORED = (
    f"SELECT {_COLUMNS} FROM source_citations WHERE ledger_id = ? ORDER BY target_seq, known_from"
)
_PAGE = 1000
_CITATIONS_INTO = RowsInto(
    source_citations,
    (
        "target_seq",
        "known_from",
        "fix",
        "name",
        "kind",
        "url",
        "reported_at",
        "party",
        "topic",
        "occurred_at",
        "document",
    ),
)


# ``name`` and ``url`` are stored as their UTF-8 bytes: JSON lets them hold
# NUL, which PostgreSQL text cannot.
_NAME, _URL = 3, 5


def _encoded(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8")


def _decoded(value: bytes | memoryview | str | None) -> str | None:
    if value is None or isinstance(value, str):  # str: a value written as text by hand
        return value
    return bytes(value).decode("utf-8", errors="replace")


def _db_values(row: CitationRow) -> tuple[Any, ...]:
    """A row's columns after ``ledger_id``, as stored."""
    values = list(row.values())
    values[_NAME], values[_URL] = _encoded(values[_NAME]), _encoded(values[_URL])
    return tuple(values)


def _row_of(stored: Sequence[Any]) -> CitationRow:
    values = list(stored)
    values[_NAME], values[_URL] = _decoded(values[_NAME]), _decoded(values[_URL])
    return CitationRow.of_values(values)


def _row_values(ledger_id: int, rows: Sequence[CitationRow]) -> list[tuple[object, ...]]:
    return [(ledger_id, *_db_values(row)) for row in rows]


def _insert(
    conn: Connection, ledger_id: int, rows: Sequence[CitationRow], *, documents: bool = True
) -> None:
    values = _row_values(ledger_id, rows)
    if not documents:
        if any(value[-1] is not None for value in values):
            raise MalformedRecord("a record cites a document, which this revision cannot store")
        values = [value[:-1] for value in values]
    sql = _INSERT if documents else _INSERT_UNDOCUMENTED
    raw_execute_many(conn, sql, values, table=source_citations)


def _record_at(conn: Connection, ledger_id: int) -> Callable[[int], Record]:
    def record_at(seq: int) -> Record:
        found = raw_execute(conn, _SELECT_RECORD, (ledger_id, seq))
        if not found:
            raise NotFound(f"there is no record at seq {seq}")
        return Record.from_dict(loads_strict(bytes(found[0][0])))

    return record_at


def _new_values(sealed: SealedDraft) -> tuple[Any, ...] | None:
    """``_db_values`` of ``_new_row(sealed)`` built straight from the draft: the
    row every citing record of every append makes, so it skips the row
    objects (``tests/storage/test_sources_projection.py`` holds the two equal)."""
    seq, draft = sealed
    if draft.source_json is None:
        return None
    source = orjson.loads(draft.source_json)
    name = source.get("name") if isinstance(source, dict) else None
    if not isinstance(name, str):
        return None
    kind, url, reported_at = source.get("kind"), source.get("url"), source.get("reported_at")
    document = source.get("document")
    return (
        seq,
        seq,
        FIRST,
        name.encode("utf-8"),
        kind if isinstance(kind, str) else None,
        url.encode("utf-8") if isinstance(url, str) else None,
        reported_at if isinstance(reported_at, str) else None,
        draft.party,
        draft.topic,
        draft.occurred_at,
        document if isinstance(document, str) else None,
    )


def _insert_values(conn: Connection, ledger_id: int, values: Sequence[tuple[Any, ...]]) -> None:
    rows = [(ledger_id, *row) for row in values]
    raw_execute_many(conn, _INSERT, rows, table=source_citations)


def _new_row(sealed: SealedDraft) -> CitationRow | None:
    """The reference for ``_new_values``: the core's row of a new record."""
    seq, draft = sealed
    if draft.source_json is None:
        return None
    return first_row(seq, cited_of(draft.party, draft.topic, draft.occurred_at, draft.source))


class SourcesProjection:
    """Keeps ``source_citations`` inside the append transaction
    (a ``ledger.store.projections.Projection``)."""

    tables: tuple[sa.Table, ...] = (source_citations,)
    writes: tuple[RowsInto, ...] = (_CITATIONS_INTO,)

    @staticmethod
    def validates(batch: Sequence[SealedDraft]) -> bool:
        """Never: the positions projection validates fixes."""
        return False

    @staticmethod
    def planned(batch: Sequence[SealedDraft]) -> tuple[PlannedRows, ...] | None:
        """The rows of a batch without fixes, which need no database; None otherwise."""
        rows = []
        for sealed in batch:
            if sealed.draft.type in FIX_TYPES:
                return None
            values = _new_values(sealed)
            if values is not None:
                rows.append(values)
        return (PlannedRows(_CITATIONS_INTO, rows),)

    @staticmethod
    def rebuild(
        conn: Connection, ledger_id: int, head: int, progress: Callable[[int], None]
    ) -> None:
        """Every row of ``source_citations`` for the ledger, from its records."""
        fill_ledger(conn, ledger_id, progress)

    def apply(self, conn: Connection, ledger_id: int, batch: Sequence[SealedDraft]) -> None:
        """Project the records of one append (already inserted).

        A fix reads its target's latest row (or, if it has none, the target
        record), so what precedes it in the batch is written first.
        """
        pending: list[tuple[Any, ...]] = []
        for sealed in batch:
            values = _new_values(sealed)
            if values is not None:
                pending.append(values)
            if sealed.draft.type not in FIX_TYPES:
                continue
            _insert_values(conn, ledger_id, pending)
            pending = []
            fixed = self._fix_row(conn, ledger_id, sealed)
            if fixed is not None:
                pending.append(_db_values(fixed))
        _insert_values(conn, ledger_id, pending)

    @staticmethod
    def _fix_row(conn: Connection, ledger_id: int, sealed: SealedDraft) -> CitationRow | None:
        fix_seq, fix = sealed
        data = fix.data
        target_seq = data.get("target_seq")
        if not isinstance(target_seq, int):
            return None
        latest = raw_execute(conn, _SELECT_LATEST, (ledger_id, target_seq))
        effective: Cited
        if latest:
            stored = _row_of(latest[0])
            if stored.fix == RETRACTED:
                return None
            effective = stored.cited
        else:
            found = raw_execute(conn, _SELECT_RECORD, (ledger_id, target_seq))
            if not found:
                return None
            target = Record.from_dict(loads_strict(bytes(found[0][0])))
            if target.type in FIX_TYPES:
                return None
            effective = cited_of(target.party, target.topic, target.occurred_at, target.source)
        return fix_row(fix_seq, fix.type, target_seq, effective, data.get("changes"))


def fill_ledger(
    conn: Connection,
    ledger_id: int,
    progress: Callable[[int], None] | None = None,
    *,
    documents: bool = True,
) -> int:
    """Write every ``source_citations`` row of a ledger from its records, into an
    empty projection (migration 0012, a rebuild); return the records read.
    ``documents=False``: the table is of a revision before 0015, without the
    ``document`` column (no record could cite a document then)."""
    rows = SourceRows(record_at=_record_at(conn, ledger_id))
    after = 0
    count = 0
    while True:
        page = raw_execute(conn, _SELECT_PAGE, (ledger_id, after, _PAGE))
        if not page:
            return count
        made: list[CitationRow] = []
        for seq, kind, stored in page:
            after = int(seq)
            canonical = bytes(stored)
            # Only a fix or a record naming a source makes a row: the rest go unparsed.
            if kind not in FIX_TYPES and b'"source":' not in canonical:
                continue
            try:
                record = Record.from_dict(orjson.loads(canonical))
            except (MalformedRecord, orjson.JSONDecodeError):
                continue  # no record: the audit names it by the chain it breaks
            made.extend(rows.add(record))
        count += len(page)
        _insert(conn, ledger_id, made, documents=documents)
        if progress is not None:
            progress(len(page))


def read_citations(
    database: Database, ledger_id: int, tree_size: int, name: str | None = None
) -> SourcesView:
    """The sources view at ``tree_size`` (the head): every source, or only ``name``."""
    if name is None:
        sql, params = _SELECT_CITATIONS.format(named="n.name IS NOT NULL"), []
    else:
        sql, params = _SELECT_CITATIONS.format(named="n.name = ?"), [_encoded(name)]
    with raw_read(database) as reader:
        found = reader.all(sql, [ledger_id, tree_size, ledger_id, *params])
    meta = {int(row[0]): (str(row[11]), str(row[12])) for row in found}
    view = citations_from_rows((_row_of(row[:11]) for row in found), meta)
    return view if name is None else {name: view[name]} if name in view else {}


def stored_rows(database: Database, ledger_id: int) -> list[CitationRow]:
    """Every stored row of a ledger, in (target_seq, known_from) order (the audit)."""
    with database.read() as conn:
        return [_row_of(row) for row in raw_execute(conn, _SELECT_STORED, (ledger_id,))]
