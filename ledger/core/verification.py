"""format §5 verification of an export bundle or a live ledger, in constant memory.

The pieces both paths share, so the bundle verifier, the server client and
the server-side audit can never disagree:

- ``MerkleAccumulator``: the RFC 9162 root of a growing tree from a stack of
  perfect-subtree roots (``O(log n)`` memory; a binary counter, as in
  ``merkle.append_leaves``);
- ``LogVerifier``: ``ChainVerifier`` plus the accumulator over one run of
  canonical lines, with the blame rule below;
- ``check_checkpoint``: a signed note from a trusted key whose origin, size,
  root and ``chain`` line are the ones the caller expects;
- ``check_consistency``: format §5, rollback and fork detection.

Blame rule. A broken link between records k and k+1 (``prev`` of k+1 is not
``H(record k)``) is reported at seq k: record k is the last one whose hash
could have changed, so an edited field shows up at the record edited. A
deleted, swapped or inserted record is reported at the first seq out of
place, a short file at the first missing seq, and the last record (which no
successor links to) by the head hash it fails to match.

Order of bundle checks. The tar streams ``manifest.json``, ``manifest.sig``,
``records.jsonl``, ``checkpoint``, ``public_key.pem``; only the two small
members around the records are buffered. The manifest signature is checked
before any record: every later check compares against the manifest, so an
untrusted manifest must fail first. Records are then streamed (per-line
checks, chain, leaf hashes, ``records_sha256``) and reported at the first bad
seq; whole-file checks (``records_sha256``, count) come after the stream, so
a tampered record is named by its seq rather than by a file digest.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tarfile
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import IO, Any, NoReturn

from ledger.core.authors import (
    AUTHOR_TYPES,
    AuthorMark,
    AuthorRegistry,
    AuthorRuleBroken,
    signed_bytes,
)
from ledger.core.bundle import (
    FORMAT,
    FORMAT_ATTESTED,
    FORMAT_DOCUMENTED,
    MAX_DOCUMENTED_MANIFEST_BYTES,
    MEMBERS,
    SIGNATURE_SIZE,
    TIMESTAMP_MEMBERS,
    WITNESSED_MEMBERS,
    Manifest,
    document_member,
    proof_from_text,
)
from ledger.core.chain import ChainVerifier
from ledger.core.checkpoint import MAX_NOTE_BYTES, SignedCheckpoint
from ledger.core.checkpoint import verify as verify_note
from ledger.core.cosignature import CosignedBy, CosignerKey, require_quorum
from ledger.core.documents import DOCUMENT_MARK, record_documents
from ledger.core.errors import (
    AuthorSignatureInvalid,
    BundleInvalid,
    ChainBroken,
    CheckpointInvalid,
    DocumentInvalid,
    MalformedRecord,
    PrevMismatch,
    ProofInvalid,
    RotationInvalid,
    TimestampInvalid,
    VerificationError,
)
from ledger.core.hashing import GENESIS_PREV, HASH_SIZE, empty_root, leaf_hash, node_hash
from ledger.core.merkle import NodeId, fold_cover, verify_consistency, verify_inclusion
from ledger.core.positions import (
    FIX_TYPES,
    POSITION_TYPES,
    fold,
    snapshot_document,
    verify_snapshot_signature,
)
from ledger.core.record_lines import ROTATION_TYPE, RunSummary, check_run
from ledger.core.records import Record
from ledger.core.signing import VerifierKey, follow_rotation
from ledger.core.timestamps import (
    MAX_REPLY_BYTES,
    TimestampCheck,
    TsaTrust,
    check_timestamped_checkpoint,
)

__all__ = [
    "ROTATION_TYPE",
    "AuthorTrail",
    "KeyTrail",
    "LogVerifier",
    "MerkleAccumulator",
    "Rotation",
    "SnapshotClaim",
    "UnnamedKey",
    "VerificationReport",
    "check_checkpoint",
    "check_consistency",
    "check_snapshot",
    "key_label",
    "trusted_for_note",
    "verify_bundle",
    "worker_count",
]

# A record is at most one request body; anything longer is not a record and
# must not be buffered whole (the constant-memory promise).
MAX_LINE_BYTES = 16 * 1024 * 1024
MAX_PEM_BYTES = 16 * 1024
_CHUNK = 1 << 20
# Progress callbacks fire at most this often: a callback per record would
# cost more than the hashing it reports.
_PROGRESS_EVERY = 10_000
# Below this many records starting worker processes costs more than they save.
_POOL_MIN_RECORDS = 50_000
# Each worker holds an interpreter and the core (~30 MB), and past four the
# reading process, which links every run, cannot keep more of them busy.
_MAX_WORKERS = 4
# Blocks (of _CHUNK bytes) handed to an executor and not yet appended: enough
# that no worker waits for its next block, few enough to hold memory at a few MiB.
_BLOCKS_IN_FLIGHT = 8

RecordSink = Callable[[Record], None]
ProgressSink = Callable[[int], None]
NodeSink = Callable[[NodeId, bytes], None]


@dataclass(frozen=True, slots=True)
class UnnamedKey:
    """A trusted Ed25519 public key whose name comes from what it signed (a PEM file).

    Trust is the key bytes; the name only completes the format §3 key id, which
    must then equal the one the bundle or note states.
    """

    public_key: bytes

    def named(self, name: str) -> VerifierKey:
        return VerifierKey(name, self.public_key)


TrustedKey = VerifierKey | UnnamedKey


@dataclass(frozen=True, slots=True, kw_only=True)
class VerificationReport:
    """The outcome of one verification: what was proved, or the first failure."""

    valid: bool
    ledger: str | None
    from_seq: int | None = None
    to_seq: int | None = None
    count: int = 0
    head_hash: str | None = None
    merkle_root: str | None = None
    key_id: str | None = None
    key_name: str | None = None
    failure_seq: int | None = None
    reason: str | None = None
    # What a valid run proved, in the order it was checked; only checks made.
    checks: tuple[str, ...] = ()
    # What the run did besides checking (a first state file written, say).
    notes: tuple[str, ...] = ()
    # The witnessed checkpoint the run checked the records against, and the
    # trusted witnesses that cosigned it (docs/witnesses.md).
    witnessed_size: int | None = None
    cosigners: tuple[CosignedBy, ...] = ()
    # The RFC 3161 timestamp checked (format §8), when there was one.
    timestamp: TimestampCheck | None = None

    def failed(self, error: VerificationError, *, prefix: str = "") -> VerificationReport:
        """This report, turned into the first failure ``error`` names (nothing is proved)."""
        return replace(
            self,
            valid=False,
            head_hash=None,
            merkle_root=None,
            failure_seq=error.seq,
            reason=prefix + error.reason,
            checks=(),
            notes=(),
            witnessed_size=None,
            cosigners=(),
            timestamp=None,
        )

    def checked(self, *checks: str) -> VerificationReport:
        return replace(self, checks=(*self.checks, *checks))

    def noted(self, note: str) -> VerificationReport:
        return replace(self, notes=(*self.notes, note))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"valid": self.valid, "ledger": self.ledger, "count": self.count}
        for name in (
            "from_seq",
            "to_seq",
            "head_hash",
            "merkle_root",
            "key_id",
            "key_name",
            "failure_seq",
            "reason",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.valid:
            out["checks"] = list(self.checks)
        if self.notes:
            out["notes"] = list(self.notes)
        if self.witnessed_size is not None:
            out["witnessed"] = {
                "tree_size": self.witnessed_size,
                "cosigned_by": [c.to_dict() for c in self.cosigners],
            }
        if self.valid and self.timestamp is not None:
            out["timestamp"] = self.timestamp.to_dict()
        # ``checked`` and ``seq`` are the names earlier versions of the client printed.
        out["checked"] = self.count
        if self.failure_seq is not None:
            out["seq"] = self.failure_seq
        return out


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


# -- the shared accumulators ------------------------------------------------------


class MerkleAccumulator:
    """RFC 9162 root of leaves appended in order, from ``popcount(size)`` subtree roots."""

    def __init__(self, *, on_node: NodeSink | None = None) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self._on_node = on_node
        self.size = 0

    def add(self, leaf: bytes) -> None:
        level, index, digest = 0, self.size, leaf
        on_node = self._on_node
        if on_node is not None:
            on_node((0, index), digest)
        stack = self._stack
        while stack and stack[-1][0] == level:
            digest = node_hash(stack.pop()[1], digest)
            level, index = level + 1, index >> 1
            if on_node is not None:
                on_node((level, index), digest)
        stack.append((level, digest))
        self.size += 1

    def add_subtree(self, level: int, digest: bytes) -> None:
        """Append the root of ``2^level`` leaves; ``size`` must be a multiple of that.

        Only for an accumulator without ``on_node``: the subtree's inner nodes
        are not known here.
        """
        if self._on_node is not None or self.size % (1 << level):
            raise ValueError(f"a subtree of level {level} cannot follow {self.size} leaves")
        self.size += 1 << level
        stack = self._stack
        while stack and stack[-1][0] == level:
            digest = node_hash(stack.pop()[1], digest)
            level += 1
        stack.append((level, digest))

    def root(self) -> bytes:
        if not self._stack:
            return empty_root()
        # The stack is the tree's perfect cover, left to right.
        return fold_cover([digest for _, digest in self._stack])


class LogVerifier:
    """format §5 over one contiguous run of canonical lines.

    ``root_sizes`` names tree sizes whose roots to remember on the way (a
    snapshot's ``known_at``, a remembered checkpoint); the full tree is only
    recomputed when the run starts at seq 1. ``keys`` follows the key
    rotations among the records, each once its record is linked.
    """

    def __init__(
        self,
        *,
        ledger: str,
        from_seq: int = 1,
        first_prev: str = GENESIS_PREV,
        root_sizes: Collection[int] = (),
        on_node: NodeSink | None = None,
        on_record: RecordSink | None = None,
        keys: KeyTrail | None = None,
        unsigned_format: str | None = None,
        undocumented_format: str | None = None,
    ) -> None:
        self.ledger = ledger
        self.from_seq = from_seq
        self.keys = keys
        self._chain = ChainVerifier(ledger=ledger, from_seq=from_seq, first_prev=first_prev)
        self._tree = MerkleAccumulator(on_node=on_node) if from_seq == 1 else None
        self._root_sizes = frozenset(root_sizes)
        self._on_record = on_record
        self._on_node = on_node
        self.roots: dict[int, bytes] = {}
        if self._tree is not None and 0 in self._root_sizes:
            self.roots[0] = empty_root()
        self.last_leaf: bytes | None = None
        self.authors = AuthorTrail(complete=from_seq == 1, refused_in=unsigned_format)
        self.documents = DocumentTrail(refused_in=undocumented_format)

    @property
    def next_seq(self) -> int:
        return self._chain.next_seq

    @property
    def last_seq(self) -> int:
        return self._chain.next_seq - 1

    @property
    def count(self) -> int:
        return self._chain.next_seq - self.from_seq

    @property
    def head_hash(self) -> str:
        return self._chain.head_hash

    def add_line(self, line: bytes) -> Record:
        try:
            record = self._chain.add_line(line)
        except PrevMismatch as e:
            self._blame(e)
        self._add_leaf(leaf_hash(line))
        if self.keys is not None:
            self.keys.see(record)
        self.authors.see(record)
        if DOCUMENT_MARK in line:
            self.documents.see(record)
        if self._on_record is not None:
            self._on_record(record)
        return record

    def check_line(self, line: bytes) -> None:
        """``add_line`` without handing the record back (nor building it, if nobody asks)."""
        if self._on_record is not None or self.wants_records(line):
            self.add_line(line)
            return
        try:
            self._chain.check_line(line)
        except PrevMismatch as e:
            self._blame(e)
        self._add_leaf(leaf_hash(line))

    @property
    def takes_runs(self) -> bool:
        """Whether ``add_run`` can append runs (not when ``on_record`` wants each record)."""
        return self._on_record is None

    def wants_records(self, line: bytes) -> bool:
        """Whether the record of ``line`` must be built: it may be a rotation to
        follow, a signed record, a change to the author registry or cite a
        source document."""
        return (
            AuthorTrail.wants(line)
            or DOCUMENT_MARK in line
            or (self.keys is not None and self.keys.wants(line))
        )

    @property
    def wants_subtrees(self) -> bool:
        """Whether ``add_run`` can use a run's subtrees (else it folds the leaves)."""
        return self._tree is not None and self._on_node is None

    def add_run(self, run: RunSummary) -> bool:
        """Append a run ``record_lines.check_run`` passed.

        ``False``, with nothing appended, when the run does not link to the
        records before it, or when ``on_record`` or ``keys`` wants the records
        themselves: the caller then feeds its lines one by one instead.
        """
        if (
            not self.takes_runs
            or (run.rotations and self.keys is not None)
            or run.registrations
            or run.documents
        ):
            return False
        if not self._chain.link_run(run):
            return False
        leaves = run.leaves
        self.last_leaf = leaves[-HASH_SIZE:]
        tree = self._tree
        if tree is None:
            return True
        start, end = tree.size, tree.size + run.lines
        if run.subtrees and not any(start < size <= end for size in self._root_sizes):
            for level, digest in run.subtrees:
                tree.add_subtree(level, digest)
            return True
        for offset in range(0, len(leaves), HASH_SIZE):
            tree.add(leaves[offset : offset + HASH_SIZE])
            if tree.size in self._root_sizes:
                self.roots[tree.size] = tree.root()
        return True

    def _add_leaf(self, leaf: bytes) -> None:
        self.last_leaf = leaf
        tree = self._tree
        if tree is not None:
            tree.add(leaf)
            if tree.size in self._root_sizes:
                self.roots[tree.size] = tree.root()

    def _blame(self, error: PrevMismatch) -> NoReturn:
        if error.seq is None or error.seq <= self.from_seq:
            raise error
        raise ChainBroken(
            f"record {error.seq - 1} does not hash to the prev of record {error.seq}: "
            f"record {error.seq - 1} was altered (or the prev of {error.seq})",
            seq=error.seq - 1,
        ) from None

    def root(self) -> bytes:
        """The recomputed root of the tree ending at ``last_seq`` (runs from seq 1 only)."""
        if self._tree is None:
            raise ValueError("a run that starts after seq 1 cannot recompute the root")
        return self._tree.root()

    def require_end(self, *, to_seq: int, head_hash: str, source: str) -> None:
        """The run ended exactly at ``to_seq`` with the head hash ``source`` states."""
        if self.last_seq < to_seq:
            raise ChainBroken(
                f"the records end after seq {self.last_seq}, but {source} covers up to {to_seq}",
                seq=self.next_seq,
            )
        if self.last_seq > to_seq:
            raise ChainBroken(f"records run past seq {to_seq} of {source}", seq=to_seq + 1)
        if self.head_hash != head_hash:
            raise ChainBroken(
                f"the hash of record {to_seq} is not the head hash of {source}: "
                f"record {to_seq} was altered (or the chain rewritten up to it)",
                seq=to_seq,
            )


# -- author signatures (format §1.4) -----------------------------------------------

# In a canonical line, the ``author`` member and the author.* types both
# begin with these bytes; a line without them is neither.
_AUTHOR_MARK = b'"author'


class AuthorTrail:
    """The author registry the records build, and every signed record checked against it.

    A run that starts after seq 1 cannot know the registrations before it:
    its signed records are counted as unchecked rather than refused.
    """

    def __init__(self, *, complete: bool, refused_in: str | None = None) -> None:
        self.complete = complete
        # When signed records are not allowed (a bundle of format version 1
        # or 2, format §10), that format's name.
        self.refused_in = refused_in
        self.registry = AuthorRegistry()
        self.unchecked = 0
        self.by_author: dict[str, int] = {}

    @staticmethod
    def wants(line: bytes) -> bool:
        return _AUTHOR_MARK in line

    def see(self, record: Record) -> None:
        """Check ``record``'s signature, if any, then apply it to the registry."""
        if record.author is None:
            if record.type not in AUTHOR_TYPES:
                return
        elif self.refused_in is not None:
            raise BundleInvalid(
                f"the record carries an author signature, which a {self.refused_in} bundle "
                "cannot hold (only version 3 can)",
                seq=record.seq,
            )
        elif not self.complete:
            self.unchecked += 1
            return
        try:
            if record.author is not None:
                mark = AuthorMark.from_value(record.author)
                self.registry.check(mark, signed_bytes(record.to_dict()))
                self.by_author[mark.name] = self.by_author.get(mark.name, 0) + 1
            if self.complete:
                self.registry.see(record.seq, record.type, record.data)
        except AuthorRuleBroken as e:
            raise AuthorSignatureInvalid(e.reason, seq=record.seq) from None

    def describe(self, count: int) -> str:
        """The report's line: what was checked of the authorship of ``count`` records
        (records checked in runs never reach ``see``: they are the unsigned ones)."""
        signed = sum(self.by_author.values())
        unsigned = count - signed - self.unchecked
        text = (
            f"author signatures: {signed} signed {_records(signed)} checked against the "
            "keys the log registered before them"
        )
        if self.by_author:
            counts = ", ".join(f"{name}: {n}" for name, n in sorted(self.by_author.items()))
            text += f" ({counts})"
        text += f"; {unsigned} {_records(unsigned)} unsigned"
        if self.unchecked:
            text += (
                f"; {self.unchecked} signed records NOT checked: the records start after "
                "seq 1, so the registrations before them are unknown"
            )
        return text


def _records(count: int) -> str:
    return "record" if count == 1 else "records"


# -- source documents (format §1.3, §4.2) -------------------------------------------


class DocumentTrail:
    """The source documents the records cite, each with the first record citing it."""

    def __init__(self, *, refused_in: str | None = None) -> None:
        # When citations are not allowed (a bundle of format version 1 to 3,
        # format §10), that format's name.
        self.refused_in = refused_in
        self.cited: dict[str, int] = {}

    def see(self, record: Record) -> None:
        for sha256 in record_documents(record):
            if self.refused_in is not None:
                raise BundleInvalid(
                    f"the record cites a source document, which a {self.refused_in} bundle "
                    "cannot hold (only version 4 can)",
                    seq=record.seq,
                )
            self.cited.setdefault(sha256, record.seq)


# -- key rotations (format §3) -----------------------------------------------------

# The type member as a canonical line spells it. A line without these bytes
# is no key.rotated record (inside a string the quotes would be escaped), so
# a line checked on its own needs no record built without them.
_ROTATION_MARK = b'"type":"key.rotated"'


def key_label(key: VerifierKey) -> str:
    """``name+key id``: how reports name a key."""
    return f"{key.name}+{key.key_id_hex}"


@dataclass(frozen=True, slots=True)
class Rotation:
    """A rotation a verifier followed: ``old`` (trusted) endorsed ``new`` at ``seq``."""

    seq: int
    old: VerifierKey
    new: VerifierKey

    def describe(self) -> str:
        return (
            f"key rotation to {key_label(self.new)} endorsed by {key_label(self.old)} "
            f"(seq {self.seq})"
        )


class KeyTrail:
    """The keys a verifier trusts: the one it was given, and every key a trusted
    key endorsed in a ``key.rotated`` record among the verified records.

    A rotation from a key this verifier does not trust is passed over (it can
    neither check nor use it); one from a trusted key whose endorsement is not
    that key's signature is tampering, reported at its seq.
    """

    def __init__(self, given: TrustedKey) -> None:
        self.given = given
        self.rotations: list[Rotation] = []

    @property
    def followed(self) -> list[VerifierKey]:
        return [rotation.new for rotation in self.rotations]

    def trusts(self, key: VerifierKey) -> bool:
        given = self.given
        if isinstance(given, UnnamedKey):
            if key.public_key == given.public_key:
                return True
        elif key == given:
            return True
        return key in self.followed

    def wants(self, line: bytes) -> bool:
        """Whether ``line`` may be a rotation to follow."""
        return _ROTATION_MARK in line

    def see(self, record: Record) -> None:
        """Follow ``record`` if it is a rotation from a trusted key; raise if it is forged."""
        if record.type != ROTATION_TYPE:
            return
        data = record.data
        old_text = data.get("old_key")
        try:
            old = VerifierKey.from_string(old_text) if isinstance(old_text, str) else None
        except ValueError:
            old = None
        if old is None or not self.trusts(old):
            return
        new_text = data.get("new_key")
        endorsement = data.get("endorsement")
        try:
            if not isinstance(new_text, str) or not isinstance(endorsement, str):
                raise VerificationError("new_key or endorsement is not a string")
            signature = base64.b64decode(endorsement, validate=True)
            new = follow_rotation(old, new_text, signature)
        except (VerificationError, ValueError):
            raise RotationInvalid(
                f"key.rotated names a new key whose endorsement is not the signature of "
                f"the trusted key {key_label(old)}",
                seq=record.seq,
            ) from None
        if not self.trusts(new):
            self.rotations.append(Rotation(seq=record.seq, old=old, new=new))

    def find(self, name: str, key_id: str) -> VerifierKey | None:
        """The trusted key of this name and hex key id, if there is one."""
        given = self.given
        candidates = [given if isinstance(given, VerifierKey) else given.named(name)]
        for candidate in [*candidates, *self.followed]:
            if candidate.name == name and candidate.key_id_hex == key_id:
                return candidate
        return None

    def for_note(self, note: SignedCheckpoint) -> list[VerifierKey]:
        return [*trusted_for_note(note, self.given), *self.followed]

    def path_to(self, key: VerifierKey) -> list[Rotation]:
        """The rotations, oldest first, through which ``key`` came to be trusted."""
        by_new = {rotation.new: rotation for rotation in self.rotations}
        path: list[Rotation] = []
        while key in by_new:
            path.append(by_new[key])
            key = by_new[key].old
        return path[::-1]


# -- checkpoints and consistency (format §3, §5) ------------------------


def trusted_for_note(
    note: SignedCheckpoint, key: TrustedKey | KeyTrail | Sequence[VerifierKey]
) -> list[VerifierKey]:
    """The named keys to check ``note`` with: an unnamed key takes each line's name."""
    if isinstance(key, KeyTrail):
        return key.for_note(note)
    if isinstance(key, VerifierKey):
        return [key]
    if not isinstance(key, UnnamedKey):
        return list(key)
    return [key.named(sig.name) for sig in note.signatures if _is_key_name(sig.name)]


def _is_key_name(name: str) -> bool:
    try:
        VerifierKey(name, b"\0" * 32)
    except ValueError:
        return False
    return True


def check_checkpoint(
    text: str | bytes,
    key: TrustedKey | KeyTrail | Sequence[VerifierKey],
    *,
    ledger: str,
    origin: str | None = None,
    tree_size: int | None = None,
    root: bytes | None = None,
    head_hash: str | None = None,
) -> SignedCheckpoint:
    """Verify a note's trusted signature and that it speaks of what the caller expects.

    Its origin must end in ``/<ledger>`` (format §3), so a checkpoint of another
    ledger signed by the same key is refused; ``None`` skips a comparison.
    """
    note = SignedCheckpoint.from_text(text)
    verify_note(text, trusted_for_note(note, key))
    checkpoint = note.checkpoint
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointInvalid(
            f"the checkpoint's origin {checkpoint.origin!r} is not {origin!r}: "
            "a checkpoint of another ledger or server"
        )
    if not checkpoint.origin.endswith(f"/{ledger}"):
        raise CheckpointInvalid(
            f"the checkpoint's origin {checkpoint.origin!r} is not of ledger {ledger!r}"
        )
    if tree_size is not None and checkpoint.tree_size != tree_size:
        raise CheckpointInvalid(
            f"the checkpoint's tree size {checkpoint.tree_size} is not {tree_size}"
        )
    if root is not None and checkpoint.root != root:
        raise CheckpointInvalid("the checkpoint's root is not the Merkle root of the records")
    if head_hash is not None and checkpoint.head_hash != head_hash:
        raise CheckpointInvalid(
            "the checkpoint's chain line is not the head hash of the records",
            seq=checkpoint.tree_size or None,
        )
    return note


def check_consistency(
    old: SignedCheckpoint, new: SignedCheckpoint, proof: Sequence[bytes] | None
) -> None:
    """format §5: ``new`` extends ``old``; ``proof`` is needed when it grew.

    Raises ``ProofInvalid`` whose reason says ``rollback`` (the log shrank)
    or ``fork`` (the two trees disagree).
    """
    before, after = old.checkpoint, new.checkpoint
    if before.origin != after.origin:
        raise CheckpointInvalid(
            f"the remembered checkpoint is of {before.origin!r}, not {after.origin!r}"
        )
    if after.tree_size < before.tree_size:
        raise ProofInvalid(
            f"rollback: the server's tree size {after.tree_size} is smaller than the "
            f"remembered {before.tree_size}"
        )
    if before.tree_size == after.tree_size or before.tree_size == 0:
        if before.tree_size == after.tree_size and before.root != after.root:
            raise ProofInvalid(
                f"fork: two checkpoints of tree size {after.tree_size} with different roots"
            )
        return
    try:
        verify_consistency(before.tree_size, after.tree_size, proof or [], before.root, after.root)
    except ProofInvalid as e:
        raise ProofInvalid(
            f"fork: tree size {after.tree_size} is not an extension of the remembered "
            f"{before.tree_size} ({e.reason})"
        ) from None


# -- bundles (format §4, §5) ---------------------------------------------


class _BundleReader:
    """Walks the tar members in format §4 order, refusing anything else."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self._tar = tar
        self._members = iter(self._tar)
        self._position = 0
        self._peeked: tarfile.TarInfo | None = None

    def next_member(self) -> IO[bytes]:
        expected = MEMBERS[self._position]
        member = self._next()
        if member is None:
            raise BundleInvalid(f"the bundle ends before member {expected}")
        if member.name != expected:
            raise BundleInvalid(f"member {self._position + 1} is {member.name!r}, not {expected}")
        if not member.isreg():
            raise BundleInvalid(f"member {expected} is not a regular file")
        stream = self._tar.extractfile(member)
        assert stream is not None, "a regular member has content"
        self._position += 1
        return stream

    def small_member(self, limit: int) -> bytes:
        name = MEMBERS[self._position]
        stream = self.next_member()
        raw = _read(stream, limit + 1)
        if len(raw) > limit:
            raise BundleInvalid(f"member {name} is larger than {limit} bytes")
        return raw

    def optional_member(self, name: str, limit: int) -> bytes | None:
        """Member ``name`` if it comes next (None, and nothing read, if not)."""
        member = self._peek()
        if member is None or member.name != name:
            return None
        self._peeked = None
        if not member.isreg():
            raise BundleInvalid(f"member {name} is not a regular file")
        stream = self._tar.extractfile(member)
        assert stream is not None, "a regular member has content"
        raw = _read(stream, limit + 1)
        if len(raw) > limit:
            raise BundleInvalid(f"member {name} is larger than {limit} bytes")
        return raw

    def document(self, name: str) -> tuple[IO[bytes], int]:
        """The next member, which must be the regular file ``name``: its content and
        size (a source document of format §4.2, or a member of an optional group)."""
        member = self._next()
        if member is None or member.name != name:
            found = "the end of the bundle" if member is None else repr(member.name)
            raise BundleInvalid(f"expected member {name}, found {found}")
        stream = self._tar.extractfile(member) if member.isreg() else None
        if stream is None:
            raise BundleInvalid(f"member {name} is not a regular file")
        return stream, member.size

    def require_end(self, *, attested: bool, documented: bool = False) -> None:
        extra = self._next()
        if extra is None:
            return
        if documented:
            raise BundleInvalid(
                f"unexpected member {extra.name!r}: a {FORMAT_DOCUMENTED} bundle ends with "
                "the documents its manifest lists, in its order, or without them when it "
                "says they are left out"
            )
        if not attested:
            raise BundleInvalid(
                f"unexpected member {extra.name!r} after {MEMBERS[-1]}: a {FORMAT} bundle "
                f"ends there ({FORMAT_ATTESTED} carries witnessed and timestamp members)"
            )
        raise BundleInvalid(
            f"unexpected member {extra.name!r} after {MEMBERS[-1]} and the optional "
            f"{' and '.join(WITNESSED_MEMBERS)}, then {', '.join(TIMESTAMP_MEMBERS)}"
        )

    def optional_group(self, names: Sequence[str], limit: int) -> list[bytes] | None:
        """The contents of ``names``, in order, if the next member is the first of
        them; None (nothing read) if it is not, or at the end of the bundle. A
        group broken off is refused."""
        first = self._peek()
        if first is None or first.name != names[0]:
            return None
        contents: list[bytes] = []
        for name in names:
            stream, _ = self.document(name)
            raw = _read(stream, limit + 1)
            if len(raw) > limit:
                raise BundleInvalid(f"member {name} is larger than {limit} bytes")
            contents.append(raw)
        return contents

    def _peek(self) -> tarfile.TarInfo | None:
        if self._peeked is None:
            self._peeked = self._next()
        return self._peeked

    def _next(self) -> tarfile.TarInfo | None:
        if self._peeked is not None:
            member, self._peeked = self._peeked, None
            return member
        try:
            return next(self._members, None)
        except tarfile.TarError as e:
            raise BundleInvalid(f"the tar layout is broken: {e}") from None


def _read(stream: IO[bytes], size: int) -> bytes:
    try:
        return stream.read(size)
    except tarfile.TarError as e:
        raise BundleInvalid(f"the tar layout is broken: {e}") from None


def verify_bundle(
    fileobj: IO[bytes],
    key: TrustedKey,
    *,
    ledger: str | None = None,
    root_sizes: Collection[int] = (),
    on_record: RecordSink | None = None,
    on_records: ProgressSink | None = None,
    executor: Executor | None = None,
    witnesses: Sequence[CosignerKey] = (),
    quorum: int | None = None,
    tsa_trust: TsaTrust | None = None,
) -> tuple[VerificationReport, LogVerifier | None]:
    """Check a bundle read once from ``fileobj`` against a trusted key.

    Returns the report and the records' verifier (its ``roots`` hold the roots
    of ``root_sizes``); never raises ``VerificationError``. ``OSError`` from
    reading ``fileobj`` propagates: that is an input error, not tampering.
    ``ledger`` is the ledger the caller expects, when it knows.

    With an ``executor`` (a ``ProcessPoolExecutor`` of ``worker_count()``
    workers, say), blocks of lines of a large bundle are checked in its
    workers while this process reads, hashes and links them; the verdict and
    the first failure are the same either way. It is not used when
    ``on_record`` wants every record, which only this process parses.

    With ``witnesses``, the bundle must carry a witnessed checkpoint (format
    §4.1) that at least ``quorum`` of them (default: all) cosigned.

    The timestamp members (format §8) are checked when present, their
    certificate chain only with ``tsa_trust``; with ``tsa_trust`` a bundle
    without them is invalid.
    """
    check = _BundleCheck(
        key=key,
        ledger=ledger,
        root_sizes=root_sizes,
        on_record=on_record,
        executor=executor,
        witnesses=tuple(witnesses),
        quorum=len(witnesses) if quorum is None else quorum,
        tsa_trust=tsa_trust,
    )
    try:
        # "r|": a forward-only stream, so no member is ever buffered to seek in.
        with tarfile.open(fileobj=fileobj, mode="r|", bufsize=_CHUNK) as tar:
            check.run(_BundleReader(tar), on_records)
    except tarfile.TarError as e:
        return check.report(BundleInvalid(f"not a tar file: {e}")), check.log
    except VerificationError as e:
        return check.report(e), check.log
    return check.report(None), check.log


class _BundleCheck:
    """format §5 in tar order; keeps what it learnt for the report.

    A manifest signed by the given key is checked before any record. One
    signed by another key can only be trusted through the rotations the
    records hold, so its signature is checked once they are walked; until
    then nothing the manifest says is taken as proved.
    """

    def __init__(
        self,
        *,
        key: TrustedKey,
        ledger: str | None,
        root_sizes: Collection[int],
        on_record: RecordSink | None,
        executor: Executor | None,
        witnesses: tuple[CosignerKey, ...] = (),
        quorum: int = 0,
        tsa_trust: TsaTrust | None = None,
    ) -> None:
        self.keys = KeyTrail(key)
        self.ledger = ledger
        self.root_sizes = root_sizes
        self.on_record = on_record
        self.executor = executor
        self.manifest: Manifest | None = None
        self.trusted: VerifierKey | None = None
        self.log: LogVerifier | None = None
        self.witnesses = witnesses
        self.quorum = quorum
        self.witnessed: SignedCheckpoint | None = None
        self.cosigners: tuple[CosignedBy, ...] = ()
        self.tsa_trust = tsa_trust
        self.timestamp: TimestampCheck | None = None
        # Documents the manifest lists, and how many of them were rehashed.
        self.documents = 0
        self.documents_checked = 0

    def run(self, reader: _BundleReader, on_records: ProgressSink | None) -> None:
        raw_manifest = reader.small_member(MAX_DOCUMENTED_MANIFEST_BYTES)
        manifest = self.manifest = Manifest.from_bytes(raw_manifest)
        signature = reader.small_member(SIGNATURE_SIZE)
        if len(signature) != SIGNATURE_SIZE:
            raise BundleInvalid(f"manifest.sig is {len(signature)} bytes, not {SIGNATURE_SIZE}")
        if not manifest.origin.endswith(f"/{manifest.ledger}"):
            raise BundleInvalid(f"the manifest origin does not end in /{manifest.ledger}")
        given = self.keys.find(manifest.key_name, manifest.key_id)
        if given is not None:
            self.trusted = _check_manifest_signature(manifest, signature, given)
        if self.ledger is not None and manifest.ledger != self.ledger:
            raise BundleInvalid(f"the bundle is of ledger {manifest.ledger!r}, not {self.ledger!r}")
        log = self.log = LogVerifier(
            ledger=manifest.ledger,
            from_seq=manifest.from_seq,
            first_prev=manifest.first_prev,
            root_sizes=self.root_sizes,
            on_record=self.on_record,
            keys=self.keys,
            unsigned_format=None if manifest.authored else manifest.format,
            undocumented_format=None if manifest.documented else manifest.format,
        )
        executor = self.executor if self.on_record is None else None
        digest = _stream_records(reader.next_member(), log, manifest, on_records, executor)
        if self.trusted is None:
            self.trusted = _check_manifest_signature(
                manifest, signature, self._endorsed_signer(manifest)
            )
        log.require_end(to_seq=manifest.to_seq, head_hash=manifest.head_hash, source="the manifest")
        if digest != manifest.records_sha256:
            raise BundleInvalid("records.jsonl does not match the manifest's records_sha256")
        _check_merkle(log, manifest)
        checkpoint = check_checkpoint(
            reader.small_member(MAX_NOTE_BYTES),
            self.keys,
            ledger=manifest.ledger,
            origin=manifest.origin,
            tree_size=manifest.tree_size,
            root=manifest.merkle_root,
            head_hash=manifest.head_hash,
        )
        reader.small_member(MAX_PEM_BYTES)  # a convenience only: trust is the given key
        if manifest.attested:
            self._check_witnessed(reader, manifest, checkpoint)
            self.timestamp = _check_bundle_timestamp(reader, self.keys, manifest, self.tsa_trust)
        else:
            self._require_no_evidence(manifest)
        if manifest.documented:
            self._check_documents(reader, manifest, log.documents)
        reader.require_end(attested=manifest.attested, documented=manifest.documented)

    def _check_documents(
        self, reader: _BundleReader, manifest: Manifest, trail: DocumentTrail
    ) -> None:
        """format §4.2: the manifest lists exactly the documents the records cite,
        and each member carried is the bytes its hash names."""
        listed = {info.sha256 for info in manifest.documents}
        for sha256, seq in trail.cited.items():
            if sha256 not in listed:
                raise DocumentInvalid(
                    f"cites document {sha256}, which the manifest does not list", seq=seq
                )
        for info in manifest.documents:
            if info.sha256 not in trail.cited:
                raise DocumentInvalid(
                    f"the manifest lists document {info.sha256}, which no record of the "
                    "bundle cites"
                )
        self.documents = len(listed)
        if not manifest.documents_included:
            return
        for info in manifest.documents:
            name = document_member(info.sha256)
            stream, size = reader.document(name)
            seq = trail.cited[info.sha256]
            if size != info.size:
                raise DocumentInvalid(
                    f"member {name} holds {size} bytes; the manifest says {info.size}", seq=seq
                )
            digest = hashlib.sha256()
            while chunk := _read(stream, _CHUNK):
                digest.update(chunk)
            if digest.hexdigest() != info.sha256:
                raise DocumentInvalid(
                    f"member {name} is not the document the record cites: its bytes hash to "
                    f"{digest.hexdigest()}",
                    seq=seq,
                )
        self.documents_checked = len(listed)

    def _require_no_evidence(self, manifest: Manifest) -> None:
        """A version 1 bundle carries no witnessed or timestamp members (format §10)."""
        if self.witnesses:
            raise CheckpointInvalid(
                f"the bundle is {manifest.format}, which carries no witnessed checkpoint; "
                f"{self.quorum or len(self.witnesses)} witness cosignatures were required"
            )
        if self.tsa_trust is not None:
            raise TimestampInvalid(
                f"the bundle is {manifest.format}, which carries no timestamp; one was asked for"
            )

    def _check_witnessed(
        self, reader: _BundleReader, manifest: Manifest, checkpoint: SignedCheckpoint
    ) -> None:
        """format §4.1: the witnessed checkpoint, by the trusted key, extended by the
        bundle's checkpoint; with trusted witnesses, cosigned by a quorum of them."""
        note_name, proof_name = WITNESSED_MEMBERS
        raw = reader.optional_member(note_name, MAX_NOTE_BYTES)
        if raw is None:
            if self.witnesses:
                raise CheckpointInvalid(
                    f"the bundle carries no witnessed checkpoint; {self.quorum} witness "
                    "cosignatures were required"
                )
            return
        proof_raw = reader.optional_member(proof_name, MAX_NOTE_BYTES)
        if proof_raw is None:
            raise BundleInvalid(f"member {note_name} is not followed by {proof_name}")
        try:
            witnessed = check_checkpoint(
                raw, self.keys, ledger=manifest.ledger, origin=manifest.origin
            )
            if witnessed.checkpoint.tree_size > manifest.tree_size:
                raise CheckpointInvalid(
                    f"its tree size {witnessed.checkpoint.tree_size} is beyond the bundle's "
                    f"{manifest.tree_size}"
                )
            check_consistency(witnessed, checkpoint, proof_from_text(proof_raw))
            if self.witnesses:
                self.cosigners = require_quorum(
                    witnessed.checkpoint.body(),
                    witnessed.signatures,
                    self.witnesses,
                    self.quorum,
                )
        except VerificationError as e:
            raise type(e)(f"the witnessed checkpoint: {e.reason}") from None
        self.witnessed = witnessed

    def _endorsed_signer(self, manifest: Manifest) -> VerifierKey:
        found = self.keys.find(manifest.key_name, manifest.key_id)
        if found is not None:
            return found
        given = self.keys.given
        trusted = given if isinstance(given, VerifierKey) else given.named(manifest.key_name)
        raise BundleInvalid(
            f"the manifest names key {manifest.key_name}+{manifest.key_id}, not the trusted "
            f"key {key_label(trusted)} nor a key it endorsed in a key.rotated record of "
            f"records {manifest.from_seq}-{manifest.to_seq} (an export from seq 1 holds "
            "every rotation)"
        )

    def report(self, error: VerificationError | None) -> VerificationReport:
        manifest, log, trusted = self.manifest, self.log, self.trusted
        proved = manifest is not None and error is None
        report = VerificationReport(
            valid=error is None,
            ledger=manifest.ledger if manifest else self.ledger,
            from_seq=manifest.from_seq if manifest else None,
            to_seq=manifest.to_seq if manifest else None,
            count=log.count if log else 0,
            head_hash=manifest.head_hash if manifest and proved else None,
            merkle_root=_b64(manifest.merkle_root) if manifest and proved else None,
            key_id=trusted.key_id_hex if trusted else None,
            key_name=trusted.name if trusted else None,
            failure_seq=error.seq if error else None,
            reason=error.reason if error else None,
        )
        if error is not None or manifest is None or trusted is None:
            return report
        signer = key_label(trusted)
        if manifest.from_seq == 1:
            merkle = "Merkle root recomputed"
        else:
            merkle = f"head inclusion proof into the root of {manifest.tree_size} records"
        report = report.checked(
            *(rotation.describe() for rotation in self.keys.path_to(trusted)),
            f"manifest signature by {signer}",
            "hash chain",
            *([log.authors.describe(log.count)] if log is not None else []),
            "records_sha256",
            merkle,
            f"checkpoint signature by {signer}",
        )
        if self.witnessed is not None:
            size = self.witnessed.checkpoint.tree_size
            report = replace(
                report.checked(
                    f"witnessed checkpoint (tree size {size}) signed by the log's key and "
                    "extended by the bundle's checkpoint",
                    *witness_checks(self.cosigners, self.quorum),
                ),
                witnessed_size=size,
                cosigners=self.cosigners,
            )
        if self.timestamp is not None:
            report = replace(report.checked(self.timestamp.describe()), timestamp=self.timestamp)
        if manifest.documented:
            report = report.checked(_documents_line(self.documents, self.documents_checked))
        return report


def _documents_line(listed: int, checked: int) -> str:
    """The report's line on source documents (format §4.2)."""
    line = f"source documents: the {listed} the records cite are listed in the manifest"
    if checked:
        return f"{line}; each one's bytes hash to its name and have its size"
    return f"{line}; left out of the bundle, so their bytes were NOT checked"


def witness_checks(cosigners: Sequence[CosignedBy], quorum: int) -> tuple[str, ...]:
    """The report's lines for a quorum met: one per witness that cosigned."""
    if not cosigners:
        return ()
    return (
        f"{len(cosigners)} witness cosignatures (quorum {quorum})",
        *(
            f"cosignature by witness {c.name}+{c.key_id} at {_posix_time(c.timestamp)}"
            for c in cosigners
        ),
    )


def _posix_time(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_bundle_timestamp(
    reader: _BundleReader, keys: KeyTrail, manifest: Manifest, trust: TsaTrust | None
) -> TimestampCheck | None:
    """format §8: the optional timestamp members, checked against the verified tree."""
    members = reader.optional_group(TIMESTAMP_MEMBERS, max(MAX_NOTE_BYTES, MAX_REPLY_BYTES))
    if members is None:
        if trust is not None:
            raise TimestampInvalid(
                "the bundle carries no timestamp (members timestamp.checkpoint, "
                "timestamp.consistency, timestamp.tsr), and one was asked for"
            )
        return None
    note_text, consistency, reply = members
    try:
        note = check_checkpoint(note_text, keys, ledger=manifest.ledger, origin=manifest.origin)
    except CheckpointInvalid as error:
        raise TimestampInvalid(f"timestamp.checkpoint: {error.reason}") from None
    try:
        proof = proof_from_text(consistency, TIMESTAMP_MEMBERS[1])
    except BundleInvalid as error:
        raise TimestampInvalid(error.reason) from None
    return check_timestamped_checkpoint(
        note.checkpoint,
        reply,
        trust,
        tree_size=manifest.tree_size,
        root=manifest.merkle_root,
        proof=proof,
    )


def _check_manifest_signature(
    manifest: Manifest, signature: bytes, trusted: VerifierKey
) -> VerifierKey:
    try:
        trusted.verify(signature, manifest.to_bytes())
    except VerificationError:
        raise BundleInvalid("manifest.sig is not the trusted key's signature") from None
    return trusted


def _stream_records(
    stream: IO[bytes],
    log: LogVerifier,
    manifest: Manifest,
    on_records: ProgressSink | None,
    executor: Executor | None,
) -> str:
    """Feed every line to ``log``; return the hex SHA-256 of the whole member."""
    digest = hashlib.sha256()
    pending = b""
    last_report = 0
    runs = _Runs(log, manifest, executor)
    try:
        while chunk := _read(stream, _CHUNK):
            digest.update(chunk)
            data = pending + chunk
            cut = data.rfind(b"\n")
            pending = data[cut + 1 :]
            if len(pending) > MAX_LINE_BYTES:
                runs.finish()
                raise MalformedRecord("a line is longer than any record", seq=log.next_seq)
            if cut >= 0:
                runs.add(data[:cut])
            if on_records is not None and log.count - last_report >= _PROGRESS_EVERY:
                last_report = log.count
                on_records(log.count)
        runs.finish()
    finally:
        runs.cancel()
    if pending:
        seq = log.next_seq
        if seq > manifest.to_seq:
            raise BundleInvalid(
                f"records.jsonl holds records past to_seq {manifest.to_seq}", seq=seq
            )
        log.add_line(pending)
        raise MalformedRecord("the last line has no newline: records.jsonl was cut", seq=seq)
    if on_records is not None:
        on_records(log.count)
    return digest.hexdigest()


class _Runs:
    """Feeds blocks of lines to a ``LogVerifier`` as runs ``check_run`` passed.

    With an executor, a worker checks a block while the next ones are read,
    and the blocks are appended in order. Any block that does not pass whole
    (a line ``parse_line`` is unsure of, a broken link, a worker that failed)
    is fed to the log line by line from the state the blocks before it left,
    so the first failure is found and reported exactly as line by line.
    """

    def __init__(self, log: LogVerifier, manifest: Manifest, executor: Executor | None) -> None:
        self._log = log
        self._to_seq = manifest.to_seq
        # Workers start on the first block handed to them, which a small bundle
        # would not repay.
        self._executor = executor if manifest.count >= _POOL_MIN_RECORDS else None
        self._in_flight: deque[tuple[bytes, Future[RunSummary | None]]] = deque()
        # The seq the next block starts at, if every block in flight passes.
        self._next_seq = log.next_seq

    def add(self, block: bytes) -> None:
        count = block.count(b"\n") + 1
        log = self._log
        if not log.takes_runs or self._next_seq + count - 1 > self._to_seq:
            self.finish()
            self._line_by_line(block)
            self._next_seq = log.next_seq
            return
        executor = self._executor
        if executor is not None:
            try:
                future = executor.submit(
                    check_run,
                    block,
                    ledger=log.ledger,
                    first_seq=self._next_seq,
                    merkle=log.wants_subtrees,
                )
            except Exception:  # a broken or shut down pool: carry on without it
                self._executor = None
                self.finish()
            else:
                self._in_flight.append((block, future))
                self._next_seq += count
                while len(self._in_flight) > _BLOCKS_IN_FLIGHT:
                    self._append_oldest()
                return
        # Checked as a run, a block costs about half of its lines checked one by one.
        run = check_run(block, ledger=log.ledger, first_seq=log.next_seq, merkle=log.wants_subtrees)
        if run is None or not log.add_run(run):
            self._line_by_line(block)
        self._next_seq = log.next_seq

    def finish(self) -> None:
        """Append every block in flight."""
        while self._in_flight:
            self._append_oldest()

    def cancel(self) -> None:
        """Drop the blocks in flight (after a failure: their verdicts no longer matter)."""
        while self._in_flight:
            self._in_flight.popleft()[1].cancel()

    def _append_oldest(self) -> None:
        block, future = self._in_flight.popleft()
        try:
            run = future.result()
        except Exception:  # a worker that failed proves nothing either way
            run = None
        if run is None or not self._log.add_run(run):
            self._line_by_line(block)

    def _line_by_line(self, block: bytes) -> None:
        log = self._log
        for line in block.split(b"\n"):
            if log.next_seq > self._to_seq:
                raise BundleInvalid(
                    f"records.jsonl holds records past to_seq {self._to_seq}",
                    seq=self._to_seq + 1,
                )
            log.check_line(line)


def worker_count() -> int:
    """How many worker processes pay off in the executor given to ``verify_bundle`` (0: none)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        cpus = os.cpu_count() or 1
    return min(cpus, _MAX_WORKERS) if cpus > 1 else 0


def _check_merkle(log: LogVerifier, manifest: Manifest) -> None:
    if manifest.from_seq == 1:
        if manifest.head_inclusion_proof:
            raise BundleInvalid("head_inclusion_proof must be empty when from_seq is 1")
        if log.root() != manifest.merkle_root:
            raise ProofInvalid("the Merkle root of the records is not the manifest's merkle_root")
        return
    assert log.last_leaf is not None, "a bundle holds at least one record"
    try:
        verify_inclusion(
            manifest.to_seq - 1,
            manifest.tree_size,
            log.last_leaf,
            manifest.head_inclusion_proof,
            manifest.merkle_root,
        )
    except ProofInvalid as e:
        raise ProofInvalid(
            f"the head record's inclusion proof does not yield merkle_root: {e.reason}",
            seq=manifest.to_seq,
        ) from None


# -- signed snapshots (format §6) ---------------------------------------------------

SNAPSHOT_SIGNATURE_MEMBERS = frozenset({"state_hash", "key_id", "signature"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotClaim:
    """What a signed snapshot asserts, read leniently enough to report what is wrong."""

    document: dict[str, Any]
    known_at: int
    as_of: str | None

    @classmethod
    def from_document(cls, document: object) -> SnapshotClaim:
        if not isinstance(document, dict):
            raise VerificationError("the snapshot is not a JSON object")
        known_at = document.get("known_at")
        if not isinstance(known_at, int) or isinstance(known_at, bool) or known_at < 0:
            raise VerificationError("the snapshot's known_at is not a seq")
        as_of = document.get("as_of")
        if as_of is not None and not isinstance(as_of, str):
            raise VerificationError("the snapshot's as_of is not a time")
        return cls(document=document, known_at=known_at, as_of=as_of)

    def wants(self, record: Record) -> bool:
        """Whether the format §6 fold of this snapshot can depend on ``record``."""
        return record.seq <= self.known_at and record.type in FOLDED_TYPES


FOLDED_TYPES = POSITION_TYPES | FIX_TYPES


def check_snapshot(
    claim: SnapshotClaim,
    records: Iterable[Record],
    *,
    ledger: str,
    root: bytes,
    key: VerifierKey,
) -> None:
    """Recompute the format §6 document from verified records; raise on any difference.

    ``records`` must hold every record of ``FOLDED_TYPES`` up to ``known_at``
    (others are ignored by the fold), and ``root`` the tree root at ``known_at``.
    """
    document = claim.document
    verify_snapshot_signature(document, key)
    expected = snapshot_document(
        ledger=ledger,
        as_of=claim.as_of,
        known_at=claim.known_at,
        merkle_root=root,
        positions=fold(records, as_of=claim.as_of, known_at=claim.known_at),
    )
    unsigned = {k: v for k, v in document.items() if k not in SNAPSHOT_SIGNATURE_MEMBERS}
    extra = sorted(unsigned.keys() - expected.keys())
    if extra:
        raise VerificationError(f"the snapshot holds unexpected members {extra}")
    for member in ("ledger", "as_of", "known_at", "tree_size", "merkle_root"):
        if unsigned.get(member) != expected.get(member):
            raise VerificationError(f"the snapshot's {member} is not the one the records give")
    for member in ("state", "claims"):
        difference = _first_difference(unsigned.get(member), expected[member], ())
        if difference is not None:
            path, seq = difference
            raise VerificationError(
                f"the snapshot's {member} differs from the records at {'/'.join(path) or '(top)'}",
                seq=seq,
            )


def _first_difference(
    claimed: Any, expected: Any, path: tuple[str, ...]
) -> tuple[tuple[str, ...], int | None] | None:
    """The first path where two nested maps differ, and the seq of the cell there."""
    if claimed == expected:
        return None
    is_cell = isinstance(expected, dict) and "stance" in expected
    if isinstance(claimed, dict) and isinstance(expected, dict) and not is_cell:
        for name in sorted(claimed.keys() | expected.keys()):
            found = _first_difference(claimed.get(name), expected.get(name), (*path, name))
            if found is not None:
                return found
        return None
    for cell in (expected, claimed):
        if isinstance(cell, dict) and isinstance(cell.get("seq"), int):
            return path, cell["seq"]
    return path, None
