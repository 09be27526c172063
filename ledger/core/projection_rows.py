"""The rows of the positions projection tables that a ledger's records make.

``ledger.store.positions`` writes them on append and on rebuild; the audit
(``ledger.integrity``) derives them here again, from the verified records alone,
and compares. Records are fed in seq order. A first version (one per
position record, known from its own seq, its cell the record itself) is
handed back at once, so the audit can compare them as a stream; what fixes
make (closed versions, corrected versions, ``record_fixes`` rows), the cells
and the marks are few and kept until the end.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.core.positions import FIX_TYPES, POSITION_TYPES, cell_of, claimant_of, corrected
from ledger.core.records import Record

__all__ = [
    "MARK_BLOCK",
    "ExpectedFix",
    "ExpectedVersion",
    "ProjectionRows",
    "mark_block",
    "running_marks",
]

# Valid-time marks: one per block of this many seqs (migration 0004).
MARK_BLOCK = 1024


def mark_block(seq: int) -> int:
    """The first seq of the block holding ``seq``."""
    return (seq - 1) // MARK_BLOCK * MARK_BLOCK + 1


def running_marks(blocks: Mapping[int, str], start: str = "") -> list[tuple[int, str]]:
    """Per block, in order, the greatest occurred_at of ``start`` and the blocks
    up to it: the value a block's mark is raised to."""
    marks = []
    running = start
    for block in sorted(blocks):
        running = max(running, blocks[block])
        marks.append((block, running))
    return marks


@dataclass(frozen=True, slots=True)
class ExpectedVersion:
    """A ``position_versions`` row; ``cell`` None means the record itself."""

    target_seq: int
    known_from: int
    party: str
    topic: str
    claimant: str
    occurred_at: str
    cell: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ExpectedFix:
    """A ``record_fixes`` row, with the target's (party, topic) to name it by."""

    fix_seq: int
    target_seq: int
    kind: str
    party: str | None
    topic: str | None


@dataclass
class ProjectionRows:
    """Derives the projection rows from records fed in seq order.

    ``record_at(seq)`` returns an earlier record: a fix needs its target,
    and only fixes ask, so the records themselves are not kept.
    """

    record_at: Callable[[int], Record]
    corrected_versions: dict[tuple[int, int], ExpectedVersion] = field(default_factory=dict)
    # (target_seq, known_from) -> (known_to, party, topic, claimant), for
    # every version a fix closed.
    closed: dict[tuple[int, int], tuple[int, str, str, str]] = field(default_factory=dict)
    cells: set[tuple[str, str, str]] = field(default_factory=set)
    fixes: dict[int, ExpectedFix] = field(default_factory=dict)
    _blocks: dict[int, str] = field(default_factory=dict)
    # target -> known_from of its open version
    _open: dict[int, int] = field(default_factory=dict)
    _effective: dict[int, Record] = field(default_factory=dict)
    _retracted: set[int] = field(default_factory=set)

    def add(self, record: Record) -> ExpectedVersion | None:
        """Feed the next record; its first version, if it makes one."""
        if record.type in FIX_TYPES:
            self._fix(record)
            return None
        if record.type not in POSITION_TYPES or record.party is None or record.topic is None:
            return None
        version = self._version(record, known_from=record.seq, cell=None)
        self._open[record.seq] = record.seq
        return version

    def marks(self) -> list[tuple[int, str]]:
        """(block, occurred_at) rows: the running maximum of valid time over blocks."""
        return running_marks(self._blocks)

    def _version(
        self, record: Record, *, known_from: int, cell: dict[str, Any] | None
    ) -> ExpectedVersion:
        assert record.party is not None and record.topic is not None
        claimant = claimant_of(record) or ""
        block = mark_block(known_from)
        self._blocks[block] = max(self._blocks.get(block, ""), record.occurred_at)
        self.cells.add((record.party, record.topic, claimant))
        return ExpectedVersion(
            record.seq, known_from, record.party, record.topic, claimant, record.occurred_at, cell
        )

    def _fix(self, fix: Record) -> None:
        # As ``ledger.store.positions.rebuild`` replays a fix; the append
        # refused any fix whose target is missing, later, a fix or retracted.
        target_seq = fix.data.get("target_seq")
        if not isinstance(target_seq, int) or not 0 < target_seq < fix.seq:
            return
        kind = "retracted" if fix.type == "record.retracted" else "corrected"
        target = self._effective.get(target_seq) or self.record_at(target_seq)
        self.fixes[fix.seq] = ExpectedFix(fix.seq, target_seq, kind, target.party, target.topic)
        if target_seq in self._retracted or target.type not in POSITION_TYPES:
            return
        opened = self._open.pop(target_seq, None)
        if opened is not None:
            assert target.party is not None and target.topic is not None
            claimant = claimant_of(target) or ""
            self.closed[(target_seq, opened)] = (fix.seq, target.party, target.topic, claimant)
        if kind == "retracted":
            self._retracted.add(target_seq)
            return
        changes = fix.data.get("changes")
        record = corrected(target, changes if isinstance(changes, dict) else {})
        self._effective[target_seq] = record
        if record.party is None or record.topic is None:
            return
        version = self._version(record, known_from=fix.seq, cell=cell_of(record).to_dict())
        self.corrected_versions[(target_seq, fix.seq)] = version
        self._open[target_seq] = fix.seq
