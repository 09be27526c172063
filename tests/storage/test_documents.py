"""Source documents in the database, on every backend (docs/documents.md):
stored in parts, whole or not at all, under the hash of their bytes, and
never changed."""

from __future__ import annotations

import hashlib
import io
import json
import os

import pytest
import sqlalchemy as sa

from ledger.core.documents import DocumentInfo
from ledger.core.errors import DocumentInvalid, NotFound
from ledger.core.verification import verify_bundle
from ledger.exporter import write_bundle
from ledger.integrity import check_ledger
from ledger.runtime import Runtime
from ledger.service import LedgerService
from ledger.store.database import Database
from ledger.store.documents import (
    PART_BYTES,
    document_info,
    held_documents,
    insert_document,
    ledger_documents,
    read_document,
)
from tests.conftest import position

LEDGER = "archive"


def parts(data: bytes) -> list[bytes]:
    return [data[at : at + PART_BYTES] for at in range(0, len(data), PART_BYTES)]


def describe(data: bytes, media_type: str = "application/pdf") -> DocumentInfo:
    return DocumentInfo(
        sha256=hashlib.sha256(data).hexdigest(), size=len(data), media_type=media_type
    )


@pytest.fixture
def archive(service: LedgerService, database: Database) -> Database:
    service.create_ledger(LEDGER)
    service.create_ledger("other")
    return database


def test_a_document_of_several_parts_comes_back_byte_for_byte(archive: Database) -> None:
    data = b"%PDF-" + os.urandom(2 * PART_BYTES + 12_345)
    info = describe(data)
    assert insert_document(archive, LEDGER, info, parts(data)) is True
    assert document_info(archive, LEDGER, info.sha256) == info
    read = list(read_document(archive, LEDGER, info.sha256))
    assert [len(part) for part in read] == [PART_BYTES, PART_BYTES, 12_350]
    assert b"".join(read) == data
    assert ledger_documents(archive, LEDGER) == [info]
    # Held per ledger: the other ledger does not hold it.
    assert document_info(archive, "other", info.sha256) is None
    with pytest.raises(NotFound):
        read_document(archive, "other", info.sha256)


def test_the_same_bytes_again_store_nothing(archive: Database) -> None:
    data = b"plain text"
    info = describe(data, "text/plain")
    assert insert_document(archive, LEDGER, info, parts(data)) is True
    assert insert_document(archive, LEDGER, info, parts(data)) is False
    assert ledger_documents(archive, LEDGER) == [info]
    with archive.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM document_parts")).scalar() == 1


@pytest.mark.parametrize("damage", ["bytes", "size"])
def test_bytes_that_are_not_the_document_described_store_nothing(
    archive: Database, damage: str
) -> None:
    data = b"the article as it was"
    info = describe(data, "text/html")
    if damage == "bytes":
        given = parts(b"the article as it is!")
    else:
        info = DocumentInfo(sha256=info.sha256, size=info.size + 1, media_type=info.media_type)
        given = parts(data)
    with pytest.raises(ValueError, match="not the document described"):
        insert_document(archive, LEDGER, info, given)
    assert document_info(archive, LEDGER, info.sha256) is None
    with archive.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM document_parts")).scalar() == 0


def test_an_unknown_ledger_holds_nothing(archive: Database) -> None:
    data = b"x"
    with pytest.raises(NotFound):
        insert_document(archive, "nope", describe(data), parts(data))
    with pytest.raises(NotFound):
        held_documents(archive, "nope", [describe(data).sha256])


def test_held_documents_answers_for_many_hashes_at_once(archive: Database) -> None:
    stored = [f"document {n}".encode() for n in range(3)]
    for data in stored:
        insert_document(archive, LEDGER, describe(data, "text/plain"), parts(data))
    asked = [describe(data).sha256 for data in stored[:2]]
    asked += [hashlib.sha256(str(n).encode()).hexdigest() for n in range(1200)]
    assert held_documents(archive, LEDGER, asked) == set(asked[:2])
    assert held_documents(archive, LEDGER, []) == set()


@pytest.mark.parametrize("table", ["documents", "document_parts"])
def test_rows_are_written_once_and_never_changed(archive: Database, table: str) -> None:
    data = b"evidence"
    info = describe(data, "text/plain")
    insert_document(archive, LEDGER, info, parts(data))
    column = "size" if table == "documents" else "data"
    value = "1" if table == "documents" else "data"
    with pytest.raises(sa.exc.DatabaseError), archive.write() as conn:
        conn.execute(sa.text(f"UPDATE {table} SET {column} = {value}"))
    with pytest.raises(sa.exc.DatabaseError), archive.write() as conn:
        conn.execute(sa.text(f"DELETE FROM {table}"))
    assert b"".join(read_document(archive, LEDGER, info.sha256)) == data


def test_a_missing_part_is_named_when_the_reader_gets_to_it(archive: Database) -> None:
    data = b"%PDF-" + os.urandom(PART_BYTES)
    info = describe(data)
    insert_document(archive, LEDGER, info, parts(data))
    with archive.write() as conn:
        # The guards allow no DELETE: rename the part away instead, as a
        # restore gone wrong might leave it (dropping the guard first).
        if archive.engine.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE document_parts DISABLE TRIGGER USER"))
            conn.execute(sa.text("UPDATE document_parts SET part = 7 WHERE part = 1"))
            conn.execute(sa.text("ALTER TABLE document_parts ENABLE TRIGGER USER"))
        else:
            conn.execute(sa.text("DROP TRIGGER document_parts_no_update"))
            conn.execute(sa.text("UPDATE document_parts SET part = 7 WHERE part = 1"))
    reading = read_document(archive, LEDGER, info.sha256)
    assert len(next(reading)) == PART_BYTES
    with pytest.raises(DocumentInvalid, match="no part 1 of 2"):
        next(reading)


def test_an_export_carries_the_cited_documents_as_stored_and_verifies(
    runtime: Runtime, archive: Database
) -> None:
    data = b"%PDF-" + os.urandom(PART_BYTES + 99)
    info = describe(data)
    insert_document(archive, LEDGER, info, parts(data))
    source = {"name": "Reuters", "kind": "media", "document": info.sha256}
    event = {**position(), "source": source}
    runtime.service.append(LEDGER, json.dumps(event).encode(), actor="tester")
    out = io.BytesIO()
    manifest = write_bundle(runtime.service, LEDGER, out)
    assert manifest.documents == (info,)
    out.seek(0)
    report, _ = verify_bundle(out, runtime.keyring.primary().verifier)
    assert report.valid, report.reason
    assert check_ledger(runtime, LEDGER).valid


def test_the_integrity_check_names_a_stored_document_that_changed(
    runtime: Runtime, archive: Database
) -> None:
    data = b"the page as archived"
    info = describe(data, "text/html")
    insert_document(archive, LEDGER, info, parts(data))
    source = {"name": "Reuters", "kind": "media", "document": info.sha256}
    runtime.service.append(LEDGER, json.dumps(position(source=source)).encode(), actor="t")
    assert check_ledger(runtime, LEDGER).valid
    with archive.write() as conn:
        if archive.engine.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE document_parts DISABLE TRIGGER USER"))
        else:
            conn.execute(sa.text("DROP TRIGGER document_parts_no_update"))
        conn.execute(sa.text("UPDATE document_parts SET data = :d"), {"d": b"the page as edited!"})
        if archive.engine.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE document_parts ENABLE TRIGGER USER"))
    report = check_ledger(runtime, LEDGER)
    assert not report.valid
    assert info.sha256 in str(report.reason)
