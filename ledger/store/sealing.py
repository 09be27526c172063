"""What the recorder holds while it seals append groups: the head a group
chains on, a group's staged records, requests sealed ahead, and the state
shared between the event loop and the threads that commit."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from ledger.core.merkle import NodeId
from ledger.core.records import RecordFrame, SealedDraft
from ledger.store.appends import AppendRequest, Sealed

__all__ = ["GroupState", "Head", "RecordRow", "SealedAhead", "SharedState"]


@dataclass(frozen=True, slots=True)
class Head:
    ledger_id: int
    seq: int
    hash: str
    last_recorded_at: str


@dataclass(slots=True)
class GroupState:
    """What one group transaction has staged so far."""

    head: Head
    recorded_at: str  # the group's clock reading (records never go below the head's)
    rows: list[RecordRow] = field(default_factory=list)  # not yet inserted
    sealed: list[SealedDraft] = field(default_factory=list)  # not yet projected
    leaves: list[bytes] = field(default_factory=list)  # every new leaf, in order
    keyed: list[tuple[AppendRequest, int]] = field(default_factory=list)  # and its outcome's index

    @classmethod
    def behind(cls, head: Head, now: str) -> GroupState:
        """A group sealed behind ``head`` at clock reading ``now``: its records'
        ``recorded_at`` never goes below the head's, whatever the clock says."""
        return cls(head=head, recorded_at=max(now, head.last_recorded_at))


@dataclass(slots=True)
class SealedAhead:
    """Requests sealed while the group before them commits (``Recorder.seal_ahead``),
    on the head that commit will leave."""

    base: Head  # the head the committing group leaves
    state: GroupState | None = None  # staged on ``base`` (from the first request on)
    requests: list[AppendRequest] = field(default_factory=list)
    staged: list[list[Sealed] | Exception] = field(default_factory=list)
    used: set[str] = field(default_factory=set)  # ids the sealed requests take
    chosen: set[str] = field(default_factory=set)  # client-chosen ids among all of them
    closed: bool = False  # a request needs the database first: the rest wait for it

    def holds(self, head: Head, group: Sequence[AppendRequest], used: set[str]) -> bool:
        """Whether what was sealed is what ``group``'s transaction would seal, as far
        as the head and ids tell (the caller checks the Idempotency-Keys)."""
        n = len(self.requests)
        return (
            self.state is not None
            and head == self.base
            and len(group) >= n
            and all(a is b for a, b in zip(self.requests, group, strict=False))
            and used.isdisjoint(self.chosen)
        )


class SharedState:
    """What the recorder knows between groups, shared by the event loop and the
    threads that commit (the writer thread, the commit thread); no other
    state of the recorder changes after it was made.

    * ``heads[ledger]``: the head this process last committed. A head found
      here was committed; a missing or stale one only sends a group the
      usual way, where the transaction checks the head under its lock. Set
      by ``committed`` after a COMMIT returned (in the commit or writer
      thread, or on the loop after ``write_group``); removed by the loop
      (``forget_head``) while a write it started is unconfirmed.
    * ``frontiers[ledger id]``: (seq, hash, perfect-cover nodes) of the tree
      at a head this process committed; set with ``heads`` (first), so
      between groups a ledger's entry is at its head in ``heads``. Readers
      use it only when (seq, hash) match the head they locked or sealed on.
      Each of these is written as one dict store, read as one dict lookup:
      no lock, a reader sees the old value or the new one whole.
    * ``ahead[ledger]``: requests sealed ahead (``Recorder.seal_ahead``),
      only under ``ahead_lock``: the loop opens and fills it while a group
      commits, the next group's transaction takes it (``take_ahead``), and
      a failure to seal ahead drops it.
    * ``frame``: the last ``RecordFrame`` sealed with, by (ledger, actor,
      recorded_at); one tuple replaced whole, by whichever thread seals.
    """

    __slots__ = ("ahead", "ahead_lock", "frame", "frontiers", "heads")

    def __init__(self) -> None:
        self.heads: dict[str, Head] = {}
        self.frontiers: dict[int, tuple[int, str, dict[NodeId, bytes]]] = {}
        self.ahead: dict[str, SealedAhead] = {}
        self.ahead_lock = threading.Lock()
        # A group's requests share a moment and mostly an actor, so the frame
        # (three strings encoded) is made once and reused.
        self.frame: tuple[tuple[str, str, str], RecordFrame] | None = None

    def frontier_at(self, head: Head) -> dict[NodeId, bytes] | None:
        """The frontier of the tree at ``head``, if this process committed it."""
        cached = self.frontiers.get(head.ledger_id)
        if cached is not None and cached[0] == head.seq and cached[1] == head.hash:
            return cached[2]
        return None

    def committed(self, ledger: str, after: Head, frontier: dict[NodeId, bytes]) -> None:
        """``after`` was committed, leaving the tree ``frontier`` gives."""
        self.frontiers[after.ledger_id] = (after.seq, after.hash, frontier)
        self.heads[ledger] = after

    def forget_head(self, ledger: str) -> None:
        """A write that may move ``ledger``'s head is under way."""
        del self.heads[ledger]

    def take_ahead(self, ledger: str) -> SealedAhead | None:
        with self.ahead_lock:
            return self.ahead.pop(ledger, None)

    def open_ahead(self, ledger: str, base: Head) -> None:
        """Seal the requests that queue from now on behind ``base``."""
        with self.ahead_lock:
            self.ahead[ledger] = SealedAhead(base=base)


# A records row, in the table's column order; the canonical bytes come last.
RecordRow = tuple[int, int, str, str, str | None, str | None, str, str, str, bytes]
