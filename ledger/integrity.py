"""The integrity check of stored ledgers (``ledger verify``): re-verify
everything a ledger's database holds.

The records are walked in seq order through the same ``LogVerifier`` the
offline client uses (format §5), and every derived row is compared
with what the records give: each record's stored ``record_hash``, every stored
Merkle node (``ledger.store.tree`` keeps levels 4 and up; lower ones are hashed
from the records whenever needed, so there is nothing stored to compare),
every stored checkpoint (a signed note that must be by a registered key, of
an origin some registered key signs for, and name the recomputed root and
head), the ledger's head row, every row of the positions projection
(``ledger.core.projection_rows`` derives them again): ``/snapshot`` signs
what those tables say, so an edited row there is a forgery the server would
sign; every row of the sources projection (``ledger.core.sources``), so
that ``/sources`` says who reported what as the records do; and every stored
RFC 3161 timestamp (format §8): its reply parses, covers the body of the
checkpoint of its tree size, and attests the time its row says (its
certificate chain too when ``LEDGER_TSA_CERTS`` is set). A registered
public key is trusted under any name its signature lines give: before keys
were registered once, a new host name could re-label the key, and the
registry keeps only the first name. Memory stays ``O(log n)``
plus one page of records, plus what fixes make, the cells and the marks
(few: versions, one per position record, are compared as a stream), plus
one sources row per record citing a source. Every signed record's author
signature is checked against the registry the records before it build
(format §1.4), and the stored registry rows against the records. Every stored witness
cosignature must verify, with the key of the witness its row names, against
the body of the stored checkpoint of its size (checked above). Every stored
source document must hash to its name and have its size, read back a part
at a time, and every document a record cites must be held.

An operator runs this to learn whether someone with database access edited
rows behind the append-only triggers; the first fault is named by its seq,
or, in a projection, by its table, ledger, party, topic (or source) and column.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ledger.core import checkpoint as notes
from ledger.core.authors import AUTHOR_TYPES
from ledger.core.checkpoint import SIGNATURE_PREFIX, SignedCheckpoint
from ledger.core.cosignature import Cosignature, CosignerKey
from ledger.core.documents import record_documents
from ledger.core.errors import (
    ChainBroken,
    CheckpointInvalid,
    DocumentInvalid,
    ProjectionMismatch,
    ProofInvalid,
    TimestampInvalid,
    VerificationError,
)
from ledger.core.hashing import GENESIS_PREV, empty_root, record_hash
from ledger.core.jsonvalues import loads_strict
from ledger.core.merkle import NodeId
from ledger.core.projection_rows import MARK_BLOCK, ExpectedVersion, ProjectionRows
from ledger.core.records import Record
from ledger.core.signing import KEY_NAME_PATTERN, VerifierKey
from ledger.core.sources import CitationRow, SourceRows
from ledger.core.timestamps import TsaTrust, verify_reply
from ledger.core.verification import LogVerifier, VerificationReport, check_checkpoint
from ledger.runtime import Runtime
from ledger.service import LedgerService
from ledger.store.authors import registry_rows
from ledger.store.authors import stored_rows as author_rows
from ledger.store.cosignatures import CosignatureRow, CosignatureStore
from ledger.store.documents import ledger_documents, read_document
from ledger.store.integrity_reads import IntegrityReader, StoredCheckpoint, StoredVersion
from ledger.store.sources import stored_rows
from ledger.store.timestamps import timestamps_up_to
from ledger.store.tree import is_stored, stored_node_count

__all__ = ["check_ledger"]

# Nodes are compared in batches: one query per this many new nodes.
_NODE_BATCH = 4000
_PROGRESS_EVERY = 10_000


@dataclass
class _PendingNodes:
    """Recomputed nodes waiting to be compared with the stored ones."""

    computed: dict[NodeId, bytes] = field(default_factory=dict)

    def add(self, node: NodeId, digest: bytes) -> None:
        if is_stored(node):
            self.computed[node] = digest


@dataclass(frozen=True, slots=True)
class _Trust:
    """The registered keys, and the checkpoint origins they were registered for."""

    keys: list[VerifierKey]
    origins: frozenset[str]

    def keys_for(self, note: str) -> list[VerifierKey]:
        """The registered keys, plus each registered public key under the names
        of ``note``'s signature lines that no registered key goes by."""
        names = {key.name for key in self.keys}
        extra = {
            line[len(SIGNATURE_PREFIX) :].split(" ", 1)[0]
            for line in note.split("\n\n", 1)[-1].splitlines()
            if line.startswith(SIGNATURE_PREFIX)
        } - names
        aliases = [
            VerifierKey(name, key.public_key)
            for name in sorted(extra)
            if KEY_NAME_PATTERN.match(name)
            for key in self.keys
        ]
        return self.keys + aliases


def check_ledger(
    runtime_or_service: Runtime | LedgerService,
    ledger: str,
    *,
    on_records: Callable[[int], None] | None = None,
    tsa_trust: TsaTrust | None = None,
) -> VerificationReport:
    """Audit one ledger's stored rows; a report, valid or naming the first fault.

    Timestamps are checked up to the root ``tsa_trust`` names; given a
    ``Runtime``, that is by default the chain its settings configure.
    """
    service = (
        runtime_or_service.service
        if isinstance(runtime_or_service, Runtime)
        else runtime_or_service
    )
    if tsa_trust is None and isinstance(runtime_or_service, Runtime):
        tsa_trust = _configured_tsa_trust(runtime_or_service)
    reader = IntegrityReader(service.recorder.db)
    stored = reader.ledger(ledger)
    registered = service.keys.all_keys()
    trust = _Trust(
        keys=[VerifierKey.from_string(k.verifier_key) for k in registered],
        origins=frozenset(f"{k.origin}/{ledger}" for k in registered)
        | {service.recorder.checkpoint_origin(ledger)},
    )
    pending = _PendingNodes()
    log = LogVerifier(ledger=ledger, on_node=pending.add)
    projection = _Checks(
        _ProjectionCheck(reader, ledger, stored.ledger_id),
        _SourcesCheck(reader, ledger, stored.ledger_id),
        _AuthorsCheck(reader, ledger, stored.ledger_id),
        documents := _DocumentsCheck(reader, ledger),
    )
    try:
        _walk(reader, stored.ledger_id, log, pending, trust, on_records, projection)
        if (stored.head_seq, stored.head_hash) != (log.last_seq, log.head_hash):
            raise ChainBroken(
                "the ledger's head row is not the last record", seq=log.last_seq or None
            )
        expected_nodes = stored_node_count(log.last_seq)
        held = reader.node_count(stored.ledger_id)
        if held != expected_nodes:
            raise ProofInvalid(
                f"the store holds {held} tree nodes; {log.last_seq} records make {expected_nodes}"
            )
        projection.finish()
        _check_cosignatures(CosignatureStore(database=service.recorder.db).rows(ledger))
        timestamps = _check_timestamps(service, ledger, log.last_seq, tsa_trust)
    except VerificationError as e:
        walked = VerificationReport(
            valid=False, ledger=ledger, from_seq=1, to_seq=stored.head_seq, count=log.count
        )
        return walked.failed(e)
    report = VerificationReport(
        valid=True,
        ledger=ledger,
        from_seq=1,
        to_seq=log.last_seq,
        count=log.count,
        head_hash=log.head_hash,
        merkle_root=base64.b64encode(log.root()).decode("ascii"),
    )
    report = report.checked(log.authors.describe(log.count), documents.describe())
    if timestamps:
        chain = "certificate chains" if tsa_trust is not None else "not their chains"
        report = report.checked(f"{timestamps} checkpoint timestamps ({chain})")
    return report


def _configured_tsa_trust(runtime: Runtime) -> TsaTrust | None:
    if runtime.timestamper is not None:
        return runtime.timestamper.trust
    path = runtime.settings.tsa_certs
    if path is None:
        return None
    try:
        return TsaTrust.from_pem(path.read_bytes())
    except (OSError, ValueError) as error:
        raise TimestampInvalid(f"LEDGER_TSA_CERTS {path}: {error}") from None


def _check_timestamps(
    service: LedgerService, ledger: str, head: int, trust: TsaTrust | None
) -> int:
    """Check every stored timestamp against the checkpoint body of its tree size
    (the records, tree and checkpoints are verified by now); how many there are."""
    rows = timestamps_up_to(service.recorder.db, ledger)
    for row in rows:
        size = row.tree_size
        if size > head:
            raise TimestampInvalid(
                f"a timestamp of tree size {size} is stored, but the records end at {head}"
            )
        note = service.checkpoint(ledger, size=size)
        body = notes.SignedCheckpoint.from_text(note).checkpoint.body()
        try:
            attestation = verify_reply(row.response, body, trust)
        except TimestampInvalid as e:
            raise TimestampInvalid(
                f"the stored timestamp of tree size {size}: {e.reason}", seq=size
            ) from None
        if attestation.attested_at != row.attested_at:
            raise TimestampInvalid(
                f"the stored timestamp of tree size {size} says attested_at "
                f"{row.attested_at}; its token says {attestation.attested_at}",
                seq=size,
            )
    return len(rows)


def _walk(
    reader: IntegrityReader,
    ledger_id: int,
    log: LogVerifier,
    pending: _PendingNodes,
    trust: _Trust,
    on_records: Callable[[int], None] | None,
    projection: _Checks,
) -> None:
    checkpoints = reader.checkpoints(ledger_id)
    upcoming = next(checkpoints, None)
    upcoming = _checkpoints_at(0, upcoming, checkpoints, log, trust)
    for row in reader.records(ledger_id):
        if row.seq == log.next_seq and record_hash(row.canonical) != row.record_hash:
            raise ChainBroken("the stored record_hash is not the hash of the record", seq=row.seq)
        projection.add(log.add_line(row.canonical))
        upcoming = _checkpoints_at(log.last_seq, upcoming, checkpoints, log, trust)
        if len(pending.computed) >= _NODE_BATCH:
            _compare_nodes(reader, ledger_id, pending)
        if on_records is not None and log.count % _PROGRESS_EVERY == 0:
            on_records(log.count)
    _compare_nodes(reader, ledger_id, pending)
    if upcoming is not None:
        raise CheckpointInvalid(
            f"a checkpoint of tree size {upcoming.tree_size} is stored, "
            f"but the records end at {log.last_seq}"
        )
    if on_records is not None:
        on_records(log.count)


def _checkpoints_at(
    size: int,
    upcoming: StoredCheckpoint | None,
    rest: Iterator[StoredCheckpoint],
    log: LogVerifier,
    trust: _Trust,
) -> StoredCheckpoint | None:
    """Check every stored checkpoint of tree size ``size``; return the next one."""
    while upcoming is not None and upcoming.tree_size <= size:
        if upcoming.tree_size < size:
            raise CheckpointInvalid(
                f"a checkpoint of tree size {upcoming.tree_size} is out of order",
            )
        root = log.root() if size else empty_root()
        head = log.head_hash if size else GENESIS_PREV
        try:
            note = check_checkpoint(
                upcoming.note,
                trust.keys_for(upcoming.note),
                ledger=log.ledger,
                tree_size=size,
                root=root,
                head_hash=head,
            )
            if note.checkpoint.origin not in trust.origins:
                raise CheckpointInvalid(
                    f"the checkpoint's origin {note.checkpoint.origin!r} is not one this "
                    "server's keys sign for"
                )
        except VerificationError as e:
            raise CheckpointInvalid(
                f"the stored checkpoint of tree size {size}: {e.reason}", seq=size or None
            ) from None
        if (upcoming.root, upcoming.head_hash) != (note.checkpoint.root, note.checkpoint.head_hash):
            raise CheckpointInvalid(
                f"the checkpoint row of tree size {size} disagrees with its signed note",
                seq=size or None,
            )
        upcoming = next(rest, None)
    return upcoming


def _check_cosignatures(rows: list[tuple[CosignatureRow, str | None]]) -> None:
    for row, note in rows:
        where = f"the cosignature of tree size {row.tree_size} by witness {row.witness}"
        if note is None:
            raise CheckpointInvalid(f"{where} is of a checkpoint that is not stored")
        try:
            key = CosignerKey.from_string(row.witness)
        except ValueError as e:
            raise CheckpointInvalid(f"{where}: the witness key is malformed ({e})") from None
        try:
            cosignature = Cosignature.from_line(row.line)
            key.verify(cosignature, SignedCheckpoint.from_text(note).checkpoint.body())
        except VerificationError as e:
            raise CheckpointInvalid(f"{where}: {e.reason}") from None
        if cosignature.timestamp != row.signed_at:
            raise CheckpointInvalid(f"{where}: signed_at is not the cosignature's timestamp")


def _compare_nodes(reader: IntegrityReader, ledger_id: int, pending: _PendingNodes) -> None:
    if not pending.computed:
        return
    stored = reader.nodes(ledger_id, pending.computed)
    for node in sorted(pending.computed, key=lambda n: (n[1] << n[0], n[0])):
        level, index = node
        first_seq = (index << level) + 1
        if stored.get(node) != pending.computed[node]:
            what = "missing" if node not in stored else "not the hash the records give"
            raise ProofInvalid(
                f"stored tree node (level {level}, index {index}) covering seq {first_seq}-"
                f"{(index + 1) << level} is {what}",
                seq=first_seq,
            )
    pending.computed.clear()


def _named(ledger: str, party: str | None, topic: str | None, claimant: str = "") -> str:
    where = f"ledger {ledger}"
    if party is not None:
        where += f", party {party}"
    if topic is not None:
        where += f", topic {topic}"
    return where + (f", claim by {claimant}" if claimant else "")


def _stored_cell(text: str | None) -> dict[str, Any] | str | None:
    """A stored cell as the snapshot reads it (``read_cell``), or its text if not JSON."""
    if text is None:
        return None
    try:
        cell = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    return {k: v for k, v in cell.items() if v is not None} if isinstance(cell, dict) else text


def _json(value: object) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _stored_record(reader: IntegrityReader, ledger_id: int) -> Callable[[int], Record]:
    """The stored record at a seq, for a fix whose target a projection's rows need."""

    def record_at(seq: int) -> Record:
        canonical = reader.record(ledger_id, seq)
        if canonical is None:  # pragma: no cover - the walk has read it already
            raise ProjectionMismatch(f"a fix names seq {seq}, which is not stored")
        return Record.from_dict(loads_strict(canonical))

    return record_at


class _ProjectionCheck:
    """Compares the stored projection rows with those the walked records make.

    First versions arrive in seq order, as the stored rows are read (by
    target_seq, known_from), so the two are merged as streams; the rest is
    compared by ``finish``.
    """

    def __init__(self, reader: IntegrityReader, ledger: str, ledger_id: int) -> None:
        self.reader = reader
        self.ledger = ledger
        self.ledger_id = ledger_id
        self.rows = ProjectionRows(record_at=_stored_record(reader, ledger_id))
        self._stored = reader.versions(ledger_id)
        self._peek = next(self._stored, None)
        # Stored versions that are not first versions, and every closed one.
        self._later: dict[tuple[int, int], StoredVersion] = {}
        self._known_to: dict[tuple[int, int], StoredVersion] = {}

    def add(self, record: Record) -> None:
        expected = self.rows.add(record)
        if expected is None:
            return
        key = (expected.target_seq, expected.known_from)
        while self._peek is not None and (self._peek.target_seq, self._peek.known_from) < key:
            self._other(self._next())
        if self._peek is None or (self._peek.target_seq, self._peek.known_from) != key:
            raise self._missing(expected)
        self._compare(expected, self._next())

    def _next(self) -> StoredVersion:
        row = self._peek
        assert row is not None
        self._peek = next(self._stored, None)
        if row.known_to is not None:
            self._known_to[(row.target_seq, row.known_from)] = row
        return row

    def _other(self, row: StoredVersion) -> None:
        if row.known_from == row.target_seq:
            raise self._extra(row)
        self._later[(row.target_seq, row.known_from)] = row

    def _version(self, version: ExpectedVersion | StoredVersion) -> str:
        where = _named(self.ledger, version.party, version.topic, version.claimant)
        return (
            f"position_versions of {where}: the version of seq {version.target_seq} "
            f"known from {version.known_from}"
        )

    def _missing(self, expected: ExpectedVersion) -> ProjectionMismatch:
        return ProjectionMismatch(f"{self._version(expected)} is missing")

    def _extra(self, row: StoredVersion) -> ProjectionMismatch:
        return ProjectionMismatch(f"{self._version(row)} is not made by the records")

    def _compare(self, expected: ExpectedVersion, row: StoredVersion) -> None:
        made_row = (expected.party, expected.topic, expected.claimant, expected.occurred_at)
        if (row.party, row.topic, row.claimant, row.occurred_at, row.cell) == (*made_row, None):
            return  # the usual first version, equal
        for column in ("party", "topic", "claimant", "occurred_at"):
            held, made = getattr(row, column), getattr(expected, column)
            if held != made:
                raise ProjectionMismatch(
                    f"{self._version(expected)} has {column} {held!r}; the records give {made!r}"
                )
        # As JSON, not as Python values: True == 1 and 1.0 == 1, but the snapshot
        # would serve them differently.
        held_cell = _stored_cell(row.cell)
        if _json(held_cell) != _json(expected.cell):
            made = "the record itself (NULL)" if expected.cell is None else repr(expected.cell)
            raise ProjectionMismatch(
                f"{self._version(expected)} has cell {row.cell!r}; the records give {made}"
            )

    def finish(self) -> None:
        while self._peek is not None:
            self._other(self._next())
        made = self.rows.corrected_versions
        for key in sorted(self._later.keys() | made.keys()):
            if key not in self._later:
                raise self._missing(made[key])
            if key not in made:
                raise self._extra(self._later[key])
            self._compare(made[key], self._later[key])
        self._closures()
        self._cells()
        self._marks()
        self._fixes()

    def _closures(self) -> None:
        closed = self.rows.closed
        for key in sorted(self._known_to.keys() | closed.keys()):
            row = self._known_to.get(key)
            held = None if row is None else row.known_to
            made = closed[key][0] if key in closed else None
            if held == made:
                continue
            if key in closed:
                _, party, topic, claimant = closed[key]
            else:
                assert row is not None
                party, topic, claimant = row.party, row.topic, row.claimant
            where = _named(self.ledger, party, topic, claimant)
            raise ProjectionMismatch(
                f"position_versions of {where}: the version of seq {key[0]} known from "
                f"{key[1]} has known_to {'NULL' if held is None else held}; the records give "
                + ("NULL (still current)" if made is None else str(made))
            )

    def _cells(self) -> None:
        held = self.reader.cells(self.ledger_id)
        made = self.rows.cells
        for party, topic, claimant in sorted(held ^ made):
            what = (
                "is missing" if (party, topic, claimant) in made else "is not made by the records"
            )
            where = _named(self.ledger, party, topic, claimant)
            raise ProjectionMismatch(f"position_cells of {where}: the cell {what}")

    def _marks(self) -> None:
        held = self.reader.marks(self.ledger_id)
        made = dict(self.rows.marks())
        for block in sorted(held.keys() | made.keys()):
            if held.get(block) == made.get(block):
                continue
            mark = (
                f"position_marks of ledger {self.ledger}: the mark of block {block} "
                f"(seq {block}-{block + MARK_BLOCK - 1})"
            )
            if block not in held:
                raise ProjectionMismatch(f"{mark} is missing")
            if block not in made:
                raise ProjectionMismatch(f"{mark} is not made by the records")
            raise ProjectionMismatch(
                f"{mark} has occurred_at {held[block]!r}; the records give {made[block]!r}"
            )

    def _fixes(self) -> None:
        held = self.reader.fixes(self.ledger_id)
        made = self.rows.fixes
        for fix_seq in sorted(held.keys() | made.keys()):
            expected = made.get(fix_seq)
            row = held.get(fix_seq)
            if expected is None:
                assert row is not None
                raise ProjectionMismatch(
                    f"record_fixes of ledger {self.ledger}: the row at seq {fix_seq} "
                    f"(of seq {row.target_seq}) is not made by the records"
                )
            fix = (
                f"record_fixes of {_named(self.ledger, expected.party, expected.topic)}: "
                f"the {expected.kind} fix at seq {fix_seq} of seq {expected.target_seq}"
            )
            if row is None:
                raise ProjectionMismatch(f"{fix} is missing")
            for column in ("target_seq", "kind"):
                if getattr(row, column) != getattr(expected, column):
                    raise ProjectionMismatch(
                        f"{fix} has {column} {getattr(row, column)!r}; the records give "
                        f"{getattr(expected, column)!r}"
                    )


class _AuthorsCheck:
    """Compares the stored ``author_keys`` rows (format §1.4) with those the walked
    records make; the signatures themselves are checked by the ``LogVerifier``."""

    def __init__(self, reader: IntegrityReader, ledger: str, ledger_id: int) -> None:
        self.reader = reader
        self.ledger = ledger
        self.ledger_id = ledger_id
        self.registrations: list[Record] = []

    def add(self, record: Record) -> None:
        if record.type in AUTHOR_TYPES:
            self.registrations.append(record)

    def finish(self) -> None:
        made = registry_rows(self.registrations)
        held = author_rows(self.reader.db, self.ledger_id)
        if held != made:
            first = next(
                (i for i, (a, b) in enumerate(zip(held, made, strict=False)) if a != b),
                min(len(held), len(made)),
            )
            stored = held[first] if first < len(held) else None
            derived = made[first] if first < len(made) else None
            raise ProjectionMismatch(
                f"author_keys of ledger {self.ledger}: row {first + 1} is {stored!r}; "
                f"the records give {derived!r}"
            )


class _DocumentsCheck:
    """Every stored source document hashes to its name and has its size, and
    every document a walked record cites is held (docs/documents.md)."""

    def __init__(self, reader: IntegrityReader, ledger: str) -> None:
        self.reader = reader
        self.ledger = ledger
        # The first record citing each document.
        self.cited: dict[str, int] = {}
        self.held = 0

    def add(self, record: Record) -> None:
        for sha256 in record_documents(record):
            self.cited.setdefault(sha256, record.seq)

    def finish(self) -> None:
        held = ledger_documents(self.reader.db, self.ledger)
        for info in held:
            digest = hashlib.sha256()
            size = 0
            for part in read_document(self.reader.db, self.ledger, info.sha256):
                digest.update(part)
                size += len(part)
            if (digest.hexdigest(), size) != (info.sha256, info.size):
                raise DocumentInvalid(
                    f"the stored document {info.sha256} ({info.size} bytes) reads back as "
                    f"{size} bytes with SHA-256 {digest.hexdigest()}"
                )
        names = {info.sha256 for info in held}
        for sha256, seq in sorted(self.cited.items(), key=lambda item: item[1]):
            if sha256 not in names:
                raise DocumentInvalid(f"cites document {sha256}, which is not held", seq=seq)
        self.held = len(held)

    def describe(self) -> str:
        return (
            f"{self.held} source documents rehashed; the {len(self.cited)} the records "
            "cite are held"
        )


class _Checks:
    """The projection checks, fed the walked records together."""

    def __init__(
        self, *checks: _ProjectionCheck | _SourcesCheck | _AuthorsCheck | _DocumentsCheck
    ) -> None:
        self.checks = checks

    def add(self, record: Record) -> None:
        for check in self.checks:
            check.add(record)

    def finish(self) -> None:
        for check in self.checks:
            check.finish()


_CITATION_COLUMNS = (
    "fix",
    "name",
    "kind",
    "url",
    "reported_at",
    "party",
    "topic",
    "occurred_at",
    "document",
)


def _citation_column(row: CitationRow, column: str) -> object:
    return row.fix if column == "fix" else getattr(row.cited, column)


class _SourcesCheck:
    """Compares the stored ``source_citations`` rows with those the walked records
    make. They are few (one per citing record and one per fix), kept until ``finish``."""

    def __init__(self, reader: IntegrityReader, ledger: str, ledger_id: int) -> None:
        self.reader = reader
        self.ledger = ledger
        self.ledger_id = ledger_id
        self.rows = SourceRows(record_at=_stored_record(reader, ledger_id))
        self.made: dict[tuple[int, int], CitationRow] = {}

    def add(self, record: Record) -> None:
        for row in self.rows.add(record):
            self.made[(row.target_seq, row.known_from)] = row

    def _row(self, row: CitationRow) -> str:
        where = f"ledger {self.ledger}"
        if row.cited.name is not None:
            where += f", source {row.cited.name!r}"
        return (
            f"source_citations of {where}: the row of seq {row.target_seq} "
            f"known from {row.known_from}"
        )

    def finish(self) -> None:
        stored_of = stored_rows(self.reader.db, self.ledger_id)
        held = {(r.target_seq, r.known_from): r for r in stored_of}
        for key in sorted(held.keys() | self.made.keys()):
            made = self.made.get(key)
            row = held.get(key)
            if made is None:
                assert row is not None
                raise ProjectionMismatch(f"{self._row(row)} is not made by the records")
            if row is None:
                raise ProjectionMismatch(f"{self._row(made)} is missing")
            for column in _CITATION_COLUMNS:
                stored, derived = _citation_column(row, column), _citation_column(made, column)
                if stored != derived:
                    raise ProjectionMismatch(
                        f"{self._row(made)} has {column} {stored!r}; the records give {derived!r}"
                    )
