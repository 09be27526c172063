"""The server-side audit: re-verify everything a ledger's database holds.

The records are walked in seq order through the same ``LogVerifier`` the
offline client uses (SPEC §5 steps 2-4), and every derived row is compared
with what the records give: each record's stored ``record_hash``, every stored
Merkle node (``ledger.store.tree`` keeps levels 4 and up; lower ones are hashed
from the records whenever needed, so there is nothing stored to compare),
every stored checkpoint (a signed note that must be by a registered key, of
an origin some registered key signs for, and name the recomputed root and
head), and the ledger's head row. A registered public key is trusted under
any name its signature lines give: before keys were registered once, a new
host name could re-label the key, and the registry keeps only the first name. Memory stays
``O(log n)`` plus one page of records.

An operator runs this to learn whether someone with database access edited
rows behind the append-only triggers; the first fault is named by its seq.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ledger.core.checkpoint import SIGNATURE_PREFIX
from ledger.core.errors import (
    ChainBroken,
    CheckpointInvalid,
    ProofInvalid,
    VerificationError,
)
from ledger.core.hashing import GENESIS_PREV, empty_root, record_hash
from ledger.core.merkle import NodeId
from ledger.core.signing import KEY_NAME_PATTERN, VerifierKey
from ledger.core.verification import LogVerifier, VerificationReport, check_checkpoint
from ledger.runtime import Runtime
from ledger.service import LedgerService
from ledger.store.auditread import AuditReader, StoredCheckpoint
from ledger.store.tree import is_stored, stored_node_count

__all__ = ["audit_ledger"]

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


def audit_ledger(
    runtime_or_service: Runtime | LedgerService,
    ledger: str,
    *,
    on_records: Callable[[int], None] | None = None,
) -> VerificationReport:
    """Audit one ledger's stored rows; a report, valid or naming the first fault."""
    service = (
        runtime_or_service.service
        if isinstance(runtime_or_service, Runtime)
        else runtime_or_service
    )
    reader = AuditReader(service.recorder.db)
    stored = reader.ledger(ledger)
    registered = service.keys.all_keys()
    trust = _Trust(
        keys=[VerifierKey.from_string(k.verifier_key) for k in registered],
        origins=frozenset(f"{k.origin}/{ledger}" for k in registered)
        | {service.recorder.checkpoint_origin(ledger)},
    )
    pending = _PendingNodes()
    log = LogVerifier(ledger=ledger, on_node=pending.add)
    try:
        _walk(reader, stored.ledger_id, log, pending, trust, on_records)
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
    except VerificationError as e:
        walked = VerificationReport(
            valid=False, ledger=ledger, from_seq=1, to_seq=stored.head_seq, count=log.count
        )
        return walked.failed(e)
    return VerificationReport(
        valid=True,
        ledger=ledger,
        from_seq=1,
        to_seq=log.last_seq,
        count=log.count,
        head_hash=log.head_hash,
        merkle_root=base64.b64encode(log.root()).decode("ascii"),
    )


def _walk(
    reader: AuditReader,
    ledger_id: int,
    log: LogVerifier,
    pending: _PendingNodes,
    trust: _Trust,
    on_records: Callable[[int], None] | None,
) -> None:
    checkpoints = reader.checkpoints(ledger_id)
    upcoming = next(checkpoints, None)
    upcoming = _checkpoints_at(0, upcoming, checkpoints, log, trust)
    for row in reader.records(ledger_id):
        if row.seq == log.next_seq and record_hash(row.canonical) != row.record_hash:
            raise ChainBroken("the stored record_hash is not the hash of the record", seq=row.seq)
        log.add_line(row.canonical)
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


def _compare_nodes(reader: AuditReader, ledger_id: int, pending: _PendingNodes) -> None:
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
