"""Source documents (``documents`` and ``document_parts``, migration 0015).

A document's bytes are stored in parts of at most ``PART_BYTES``, so they go
into the database and come out of it a part at a time: no step holds a whole
document in memory. Rows are written once and never changed (the
migration's guards refuse UPDATE and DELETE). A document is stored whole or
not at all, in one transaction that first checks the bytes it writes hash
to the name it stores them under.

``DocumentCitations`` refuses, inside the append transaction, a request
whose records cite a document their ledger does not hold (a validating
plug-in of ``ledger.store.projections``, with no rows of its own).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.core.documents import DOCUMENT_MARK, DocumentInfo, cited_documents
from ledger.core.errors import DocumentInvalid, InvalidEvent, NotFound
from ledger.core.records import SealedDraft
from ledger.core.times import format_recorded_at
from ledger.store.database import Database, raw_execute
from ledger.store.dbapi_reads import RawReader, raw_read
from ledger.store.projections import PlannedRows, RowsInto
from ledger.store.tables import document_parts, documents, ledgers

__all__ = [
    "PART_BYTES",
    "DocumentCitations",
    "document_info",
    "held_documents",
    "insert_document",
    "ledger_documents",
    "read_document",
]

#: The size of every part but a document's last.
PART_BYTES = 1 << 20

_SELECT_ID = "SELECT id FROM ledgers WHERE name = ?"
_SELECT_INFO = (
    "SELECT sha256, size, media_type, parts FROM documents WHERE ledger_id = ? AND sha256 = ?"
)
_SELECT_ALL = (
    "SELECT sha256, size, media_type, parts FROM documents WHERE ledger_id = ? ORDER BY sha256"
)
_SELECT_PART = "SELECT data FROM document_parts WHERE ledger_id = ? AND sha256 = ? AND part = ?"
# Hashes asked about at once by ``held_documents``: a batch cites at most
# one per event, and a statement's parameters are bounded on both engines.
_HELD_CHUNK = 500


class DocumentCitations:
    """Refuses (422, naming the field) a request citing a document its ledger
    does not hold, under the append's head lock, so requests keep the order
    they were sent in. A ``ledger.store.projections.Projection`` with no
    tables: documents are stored by uploads, not derived from records."""

    tables: tuple[sa.Table, ...] = ()
    writes: tuple[RowsInto, ...] = ()

    @staticmethod
    def validates(batch: Sequence[SealedDraft]) -> bool:
        """A batch whose records may cite a document (see ``DOCUMENT_MARK``)."""
        return any(
            (draft.source_json is not None and DOCUMENT_MARK in draft.source_json)
            or (draft.type == "record.corrected" and DOCUMENT_MARK in draft.data_json)
            for _, draft in batch
        )

    def planned(self, batch: Sequence[SealedDraft]) -> tuple[PlannedRows, ...] | None:
        return None if self.validates(batch) else ()

    def apply(self, conn: Connection, ledger_id: int, batch: Sequence[SealedDraft]) -> None:
        cited = cited_documents([draft for _, draft in batch], batch=len(batch) > 1)
        if not cited:
            return
        held = _held(
            lambda sql, params: raw_execute(conn, sql, params),
            ledger_id,
            [sha256 for _, sha256 in cited],
        )
        for field, sha256 in cited:
            if sha256 not in held:
                raise InvalidEvent(
                    f"the ledger holds no document {sha256}: upload it first "
                    "(POST /v1/ledgers/{ledger}/documents)",
                    field=field,
                )

    @staticmethod
    def rebuild(
        conn: Connection, ledger_id: int, head: int, progress: Callable[[int], None]
    ) -> None:
        """Nothing to rebuild: there are no rows."""


def _ledger_id(reader: RawReader, ledger: str) -> int:
    row = reader.one(_SELECT_ID, [ledger])
    if row is None:
        raise NotFound(f"no ledger named {ledger!r}")
    return int(row[0])


def _info(row: tuple[Any, ...]) -> tuple[DocumentInfo, int]:
    sha256, size, media_type, parts = row
    return DocumentInfo(sha256=str(sha256), size=int(size), media_type=str(media_type)), int(parts)


def insert_document(
    database: Database, ledger: str, info: DocumentInfo, parts: Iterable[bytes]
) -> bool:
    """Store the document ``info`` describes, its bytes given in ``parts`` of at
    most ``PART_BYTES`` each; False (nothing written) when ``ledger`` holds it already.

    ``parts`` is read inside the write transaction, one part at a time;
    bytes whose SHA-256 or size differ from ``info`` raise ``ValueError``
    and nothing is stored.
    """
    try:
        return _insert(database, ledger, info, parts)
    except sa.exc.IntegrityError:
        # Another request (or server process) stored the same bytes first.
        return False


def _insert(database: Database, ledger: str, info: DocumentInfo, parts: Iterable[bytes]) -> bool:
    with database.write() as conn:
        ledger_id = conn.execute(sa.select(ledgers.c.id).where(ledgers.c.name == ledger)).scalar()
        if ledger_id is None:
            raise NotFound(f"no ledger named {ledger!r}")
        present = conn.execute(
            sa.select(documents.c.sha256).where(
                documents.c.ledger_id == ledger_id, documents.c.sha256 == info.sha256
            )
        ).first()
        if present is not None:
            return False
        digest = hashlib.sha256()
        size = count = 0
        for data in parts:
            if not data or len(data) > PART_BYTES:
                raise ValueError(f"a part holds 1 to {PART_BYTES} bytes, not {len(data)}")
            digest.update(data)
            size += len(data)
            conn.execute(
                document_parts.insert().values(
                    ledger_id=ledger_id, sha256=info.sha256, part=count, data=data
                )
            )
            count += 1
        if digest.hexdigest() != info.sha256 or size != info.size:
            raise ValueError(
                f"the bytes given ({size} bytes, SHA-256 {digest.hexdigest()}) are not "
                f"the document described ({info.size} bytes, SHA-256 {info.sha256})"
            )
        conn.execute(
            documents.insert().values(
                ledger_id=ledger_id,
                sha256=info.sha256,
                size=info.size,
                media_type=info.media_type,
                parts=count,
                stored_at=format_recorded_at(datetime.now(UTC)),
            )
        )
    return True


def document_info(database: Database, ledger: str, sha256: str) -> DocumentInfo | None:
    """What ``ledger`` holds under ``sha256``, if anything."""
    with raw_read(database) as reader:
        row = reader.one(_SELECT_INFO, [_ledger_id(reader, ledger), sha256])
    return None if row is None else _info(row)[0]


def held_documents(database: Database, ledger: str, hashes: Collection[str]) -> set[str]:
    """Which of ``hashes`` ``ledger`` holds."""
    with raw_read(database) as reader:
        return _held(reader.all, _ledger_id(reader, ledger), hashes)


def _held(
    run: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]],
    ledger_id: int,
    hashes: Collection[str],
) -> set[str]:
    """Which of ``hashes`` the ledger holds, asked ``_HELD_CHUNK`` at a time
    with ``run`` (a ``?``-placeholder statement runner of either engine)."""
    wanted = sorted(set(hashes))
    held: set[str] = set()
    for at in range(0, len(wanted), _HELD_CHUNK):
        chunk = wanted[at : at + _HELD_CHUNK]
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT sha256 FROM documents WHERE ledger_id = ? AND sha256 IN ({marks})"
        held.update(str(row[0]) for row in run(sql, [ledger_id, *chunk]))
    return held


def ledger_documents(database: Database, ledger: str) -> list[DocumentInfo]:
    """Every document ``ledger`` holds, by hash."""
    with raw_read(database) as reader:
        rows = reader.all(_SELECT_ALL, [_ledger_id(reader, ledger)])
    return [_info(row)[0] for row in rows]


def read_document(database: Database, ledger: str, sha256: str) -> Iterator[bytes]:
    """The bytes of a document ``ledger`` holds, a part at a time, each part
    read when the iterator gets to it. ``NotFound`` (before the first part)
    for a document it does not hold; ``DocumentInvalid`` for a missing part."""
    with raw_read(database) as reader:
        ledger_id = _ledger_id(reader, ledger)
        row = reader.one(_SELECT_INFO, [ledger_id, sha256])
    if row is None:
        raise NotFound(f"ledger {ledger!r} holds no document {sha256}")
    _, parts = _info(row)
    return _parts(database, ledger_id, sha256, parts)


def _parts(database: Database, ledger_id: int, sha256: str, parts: int) -> Iterator[bytes]:
    for part in range(parts):
        with raw_read(database) as reader:
            row = reader.one(_SELECT_PART, [ledger_id, sha256, part])
        if row is None:
            raise DocumentInvalid(f"document {sha256} has no part {part} of {parts}")
        yield bytes(row[0])
