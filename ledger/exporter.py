"""format §4 export bundles, produced as a stream of tar bytes.

The tar members come in the format's order: ``manifest.json``, ``manifest.sig``,
``records.jsonl``, ``checkpoint``, ``public_key.pem``, then, when the ledger
has a witnessed checkpoint, ``witnessed`` and ``witnessed.proof`` (format
§4.1), then, when a checkpoint at or below the bundle's tree size was
timestamped, the three members of format §8; a bundle with either is
format version 2 (``ledger-export/2``, format §10). When the records cite
source documents, the manifest lists them and their bytes follow as
``documents/<sha256>`` members (format §4.2, version 4), read from the
store a part at a time and hashed again on the way out. The manifest comes
first yet carries ``records_sha256``, and the ``records.jsonl`` header needs
its size, so the records are read twice: a hashing pass before anything is
written, then a writing pass. Neither pass holds more than one page of
records, so memory stays flat whatever the range. Records are immutable and
the range is fixed before the first pass, so both passes read the same
bytes; the second re-hashes them anyway (about a tenth of the export's
time), so a bundle never contradicts its own signed manifest.

Two passes over the database are also quicker than one pass spooled to a
temporary file and copied out, which would need disk for a copy of every
export in flight (``scripts/bench.sh export`` times an export against a
plain ``SELECT`` of the same rows).

Tar headers are built here (``TarInfo.tobuf``) rather than by ``tarfile``
writing to a file, so an HTTP response can stream them. Every header is
deterministic: mode 0644, owner 0/0 with empty names, mtime = ``created_at``.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from ledger.core import checkpoint as notes
from ledger.core.bundle import (
    FORMAT,
    FORMAT_ATTESTED,
    FORMAT_AUTHORED,
    FORMAT_DOCUMENTED,
    MEMBERS,
    TIMESTAMP_MEMBERS,
    WITNESSED_MEMBERS,
    Manifest,
    document_member,
    proof_text,
)
from ledger.core.documents import DOCUMENT_MARK, DocumentInfo, documents_cited
from ledger.core.errors import InvalidParameter, NotFound, VerificationError
from ledger.core.hashing import record_hash
from ledger.core.times import format_recorded_at
from ledger.service import LedgerService
from ledger.store.cosignatures import WitnessedReader
from ledger.store.ledger_reads import newest_signer
from ledger.store.timestamps import newest_timestamp

__all__ = [
    "PreparedBundle",
    "bundle_chunks",
    "bundle_filename",
    "prepare_bundle",
    "resolve_range",
    "write_bundle",
]

RecordsCallback = Callable[[int], None]

_BLOCK = 512
# Two zero blocks end a tar archive (POSIX.1-2001 ustar).
_END_OF_ARCHIVE = b"\0" * (2 * _BLOCK)
# Records per database page: one short read each (see Recorder.iter_records).
_PAGE = 2000
# Bytes gathered before a chunk is handed on: fewer, larger writes and
# thread-pool hops for a streaming response, still a bounded buffer.
_CHUNK_BYTES = 256 * 1024
_MODE = 0o644


@dataclass(frozen=True, slots=True, kw_only=True)
class _RecordsDigest:
    sha256: str
    size: int
    first_prev: str
    head_hash: str
    # Whether a record carries an author signature: the bundle is then version 3.
    signed: bool = False
    # The source documents the records cite (format §1.3): version 4 if any.
    documents: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedBundle:
    """Everything but the records: the signed manifest and the small members."""

    manifest: Manifest
    signature: bytes
    checkpoint: bytes
    public_key_pem: bytes
    records_size: int
    # format §4.1: the witnessed note and the consistency proof from it, or None.
    witnessed: tuple[bytes, bytes] | None = None
    #: The contents of TIMESTAMP_MEMBERS (format §8), when a checkpoint at or
    #: below the bundle's tree size was timestamped.
    timestamp: tuple[bytes, bytes, bytes] | None = None

    @property
    def mtime(self) -> int:
        moment = datetime.strptime(self.manifest.created_at, "%Y-%m-%dT%H:%M:%S.%fZ")
        return int(moment.replace(tzinfo=UTC).timestamp())


def bundle_filename(manifest: Manifest) -> str:
    """``<ledger>-<from_seq>-<to_seq>.tar``: what a download is saved as."""
    return f"{manifest.ledger}-{manifest.from_seq}-{manifest.to_seq}.tar"


def resolve_range(
    service: LedgerService, ledger: str, *, from_seq: int | None, to_seq: int | None
) -> tuple[int, int]:
    """The validated ``(from_seq, to_seq)``; defaults are 1 and the head."""
    head = service.get_ledger(ledger).size  # NotFound for an unknown ledger
    if head == 0:
        raise InvalidParameter(f"ledger {ledger!r} holds no records to export", field="to_seq")
    first = 1 if from_seq is None else from_seq
    last = head if to_seq is None else to_seq
    if first < 1:
        raise InvalidParameter("must be >= 1", field="from_seq")
    if last < 1:
        raise InvalidParameter("must be >= 1", field="to_seq")
    if last > head:
        raise InvalidParameter(f"exceeds the ledger's size {head}", field="to_seq")
    if first > last:
        raise InvalidParameter(f"must not exceed to_seq ({last})", field="from_seq")
    return first, last


def _pages(
    service: LedgerService, ledger: str, from_seq: int, to_seq: int
) -> Iterator[list[bytes]]:
    """Canonical bytes of ``from_seq..to_seq``, one page (one short read) at a time.

    Keyset pages by seq: no cursor stays open between pages, so on
    PostgreSQL nothing buffers the whole range and a slow HTTP client pins
    no snapshot; pages, not single records, so the per-page cost dominates.
    """
    after = from_seq - 1
    while after < to_seq:
        page, _ = service.read_page(ledger, after_seq=after, limit=min(_PAGE, to_seq - after))
        if not page:
            return
        yield page
        after += len(page)


def _lines(page: list[bytes]) -> bytes:
    """A page as ``records.jsonl`` bytes: one hash update per page, not per record."""
    return b"\n".join(page) + b"\n"


def _scan(
    service: LedgerService,
    ledger: str,
    from_seq: int,
    to_seq: int,
    on_records: RecordsCallback | None,
) -> _RecordsDigest:
    """The hashing pass: ``records_sha256``, the member size and the chain ends."""
    digest = hashlib.sha256()
    size = count = 0
    first: bytes | None = None
    last = b""
    signed = False
    documents: set[str] = set()
    for page in _pages(service, ledger, from_seq, to_seq):
        if first is None:
            first = page[0]
        last = page[-1]
        lines = _lines(page)
        if not signed and _AUTHOR_MEMBER in lines:
            signed = any(_is_signed(record) for record in page)
        if DOCUMENT_MARK in lines:
            documents.update(_cited(page))
        digest.update(lines)
        size += len(lines)
        count += len(page)
        if on_records is not None:
            on_records(len(page))
    if first is None or count != to_seq - from_seq + 1:
        raise VerificationError(
            f"read {count} records of ledger {ledger!r} where {from_seq}..{to_seq} was expected"
        )
    prev = json.loads(first)["prev"]
    return _RecordsDigest(
        sha256=digest.hexdigest(),
        size=size,
        first_prev=prev,
        head_hash=record_hash(last),
        signed=signed,
        documents=frozenset(documents),
    )


# A signed record's canonical bytes hold these (format §1.4); most records do
# not, and are not parsed to find out.
_AUTHOR_MEMBER = b'"author":{'


def _is_signed(record: bytes) -> bool:
    return _AUTHOR_MEMBER in record and "author" in json.loads(record)


def _cited(page: list[bytes]) -> Iterator[str]:
    for record in page:
        if DOCUMENT_MARK in record:
            value = json.loads(record)
            yield from documents_cited(value["type"], value.get("source"), value.get("data"))


def prepare_bundle(
    service: LedgerService,
    ledger: str,
    *,
    from_seq: int | None = None,
    to_seq: int | None = None,
    on_records: RecordsCallback | None = None,
    witnessed: WitnessedReader | None = None,
    with_documents: bool = True,
) -> PreparedBundle:
    """Validate the range, hash the records and sign the manifest.

    Every error a caller should see (``NotFound``, ``InvalidParameter``) is
    raised here, before any byte of the bundle exists. With ``witnessed``,
    the newest checkpoint at or below the bundle's size that has the quorum
    goes in too. ``with_documents=False`` lists the documents the records
    cite but leaves their bytes out, as the manifest then says.
    """
    first, last = resolve_range(service, ledger, from_seq=from_seq, to_seq=to_seq)
    records = _scan(service, ledger, first, last, on_records)
    head = service.inclusion(ledger, seq=last, tree_size=last)
    # Signed now by every active key: a bundle ending before a rotation still
    # verifies with the newest key alone, which also signs the manifest.
    note = service.checkpoint(ledger, size=last, fresh=True)
    signed_tree = notes.SignedCheckpoint.from_text(note).checkpoint
    # A bundle must not bind records to a checkpoint of another tree.
    if signed_tree.root != head.root or signed_tree.head_hash != records.head_hash:
        raise VerificationError(
            f"the checkpoint of size {last} disagrees with the stored records", seq=last
        )
    signer = newest_signer(service.recorder)
    witnessed_members = _witnessed(service, ledger, last, witnessed)
    timestamp_members = _timestamp_members(service, ledger, last)
    attested = witnessed_members is not None or timestamp_members is not None
    documents = tuple(_document(service, ledger, sha256) for sha256 in sorted(records.documents))
    if documents:
        version = FORMAT_DOCUMENTED
    else:
        version = FORMAT_AUTHORED if records.signed else FORMAT_ATTESTED if attested else FORMAT
    manifest = Manifest(
        ledger=ledger,
        origin=service.recorder.checkpoint_origin(ledger),
        from_seq=first,
        to_seq=last,
        records_sha256=records.sha256,
        first_prev=records.first_prev,
        head_hash=records.head_hash,
        merkle_root=head.root,
        key_id=signer.verifier.key_id_hex,
        key_name=signer.name,
        created_at=format_recorded_at(datetime.now(UTC)),
        # From seq 1 a verifier recomputes the whole tree; the proof adds nothing.
        head_inclusion_proof=tuple(head.proof) if first > 1 else (),
        format=version,
        documents=documents,
        documents_included=with_documents,
    )
    return PreparedBundle(
        manifest=manifest,
        signature=signer.sign(manifest.to_bytes()),
        checkpoint=note.encode("utf-8"),
        public_key_pem=signer.verifier.public_pem(),
        records_size=records.size,
        witnessed=witnessed_members,
        timestamp=timestamp_members,
    )


def _document(service: LedgerService, ledger: str, sha256: str) -> DocumentInfo:
    """A document the records cite, which the ledger must hold."""
    try:
        return service.document(ledger, sha256)
    except (NotFound, InvalidParameter):
        raise VerificationError(
            f"the records cite document {sha256}, which the ledger lacks"
        ) from None


def _timestamp_members(
    service: LedgerService, ledger: str, tree_size: int
) -> tuple[bytes, bytes, bytes] | None:
    """format §8: the newest timestamped checkpoint at or below ``tree_size``, the
    consistency proof from it to ``tree_size``, and the authority's reply."""
    found = newest_timestamp(service.recorder.db, ledger, at_most=tree_size)
    if found is None:
        return None
    note = service.checkpoint(ledger, size=found.tree_size)
    proof: list[bytes] = []
    if found.tree_size < tree_size:
        proof = service.consistency(ledger, size1=found.tree_size, size2=tree_size).proof
    return (
        note.encode("utf-8"),
        proof_text(proof),
        found.response,
    )


def _witnessed(
    service: LedgerService, ledger: str, size: int, reader: WitnessedReader | None
) -> tuple[bytes, bytes] | None:
    """``witnessed`` and ``witnessed.proof`` for a bundle of tree size ``size``."""
    found = reader.newest(ledger, at_most=size) if reader is not None else None
    if found is None:
        return None
    proof: list[bytes] = []
    if 0 < found.tree_size < size:
        proof = service.consistency(ledger, size1=found.tree_size, size2=size).proof
    return found.text().encode("utf-8"), proof_text(proof)


def _header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = _MODE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    # PAX only adds an extended header when a field overflows ustar (a
    # records.jsonl of 8 GiB or more); otherwise the bytes are plain ustar.
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def _padding(size: int) -> bytes:
    return b"\0" * (-size % _BLOCK)


def _member(name: str, content: bytes, mtime: int) -> bytes:
    return _header(name, len(content), mtime) + content + _padding(len(content))


def _records_member(
    service: LedgerService,
    prepared: PreparedBundle,
    on_records: RecordsCallback | None,
) -> Iterator[bytes]:
    """The writing pass: re-read, re-hash and emit ``records.jsonl`` and its padding."""
    manifest = prepared.manifest
    digest = hashlib.sha256()
    size = 0
    buffer: list[bytes] = []
    buffered = 0
    for page in _pages(service, manifest.ledger, manifest.from_seq, manifest.to_seq):
        lines = _lines(page)
        size += len(lines)
        # Stop before the tar header's size is exceeded, not after.
        if size > prepared.records_size:
            break
        digest.update(lines)
        buffer.append(lines)
        buffered += len(lines)
        if buffered >= _CHUNK_BYTES:
            yield b"".join(buffer)
            buffer.clear()
            buffered = 0
        if on_records is not None:
            on_records(len(page))
    if size != prepared.records_size or digest.hexdigest() != manifest.records_sha256:
        raise VerificationError(
            f"the records of {manifest.ledger!r} changed between the two export passes"
        )
    buffer.append(_padding(size))
    yield b"".join(buffer)


def _tar_stream(
    service: LedgerService, prepared: PreparedBundle, on_records: RecordsCallback | None
) -> Iterator[bytes]:
    mtime = prepared.mtime
    manifest_bytes = prepared.manifest.to_bytes()
    names = iter(MEMBERS)
    yield _member(next(names), manifest_bytes, mtime)
    yield _member(next(names), prepared.signature, mtime)
    yield _header(next(names), prepared.records_size, mtime)
    yield from _records_member(service, prepared, on_records)
    yield _member(next(names), prepared.checkpoint, mtime)
    yield _member(next(names), prepared.public_key_pem, mtime)
    if prepared.witnessed is not None:
        for name, content in zip(WITNESSED_MEMBERS, prepared.witnessed, strict=True):
            yield _member(name, content, mtime)
    if prepared.timestamp is not None:
        yield b"".join(
            _member(name, content, mtime)
            for name, content in zip(TIMESTAMP_MEMBERS, prepared.timestamp, strict=True)
        )
    if prepared.manifest.documents_included:
        for info in prepared.manifest.documents:
            yield from _document_member(service, prepared.manifest.ledger, info, mtime)
    yield _END_OF_ARCHIVE


def _document_member(
    service: LedgerService, ledger: str, info: DocumentInfo, mtime: int
) -> Iterator[bytes]:
    """``documents/<sha256>`` (format §4.2), a stored part at a time, hashed on the
    way: stored bytes that are not the document end the stream rather than
    stand in a bundle under its name."""
    yield _header(document_member(info.sha256), info.size, mtime)
    digest = hashlib.sha256()
    size = 0
    for part in service.document_bytes(ledger, info.sha256):
        size += len(part)
        if size > info.size:
            break
        digest.update(part)
        yield part
    if size != info.size or digest.hexdigest() != info.sha256:
        raise VerificationError(f"the stored document {info.sha256} is not the one its name says")
    yield _padding(size)


def bundle_chunks(
    service: LedgerService,
    ledger: str,
    *,
    from_seq: int | None = None,
    to_seq: int | None = None,
    on_records: RecordsCallback | None = None,
    witnessed: WitnessedReader | None = None,
    with_documents: bool = True,
) -> tuple[Manifest, Iterator[bytes]]:
    """The manifest, and the tar bytes as an iterator of chunks.

    All validation happens before this returns, so an HTTP handler can turn
    errors into problem responses and only then start streaming.
    ``on_records`` counts records hashed in the first pass and again as they
    are written in the second: ``2 * manifest.count`` in total.
    """
    prepared = prepare_bundle(
        service,
        ledger,
        from_seq=from_seq,
        to_seq=to_seq,
        on_records=on_records,
        witnessed=witnessed,
        with_documents=with_documents,
    )
    return prepared.manifest, _tar_stream(service, prepared, on_records)


def write_bundle(
    service: LedgerService,
    ledger: str,
    out: BinaryIO,
    *,
    from_seq: int | None = None,
    to_seq: int | None = None,
    on_records: Callable[[int], None] | None = None,
    witnessed: WitnessedReader | None = None,
    with_documents: bool = True,
) -> Manifest:
    """Write the format §4 bundle of ``from_seq..to_seq`` (default: all) to ``out``."""
    manifest, chunks = bundle_chunks(
        service,
        ledger,
        from_seq=from_seq,
        to_seq=to_seq,
        on_records=on_records,
        witnessed=witnessed,
        with_documents=with_documents,
    )
    for chunk in chunks:
        out.write(chunk)
    return manifest
