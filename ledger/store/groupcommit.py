"""Group commit: concurrent appends to one ledger share one transaction.

Every append request joins a queue. Whichever waiting thread finds no
leader becomes the leader: it takes the queued requests for one ledger and
commits them together (one chain and tree update, one checkpoint, one fsync),
then wakes everyone. Followers wait for their own request's outcome, so a
request is acknowledged only after the commit that holds it, and a request
that fails on its own merits fails alone (the committer decides that).

Leaders are ordinary request threads (no background thread to start, stop
or lose): while one commits, the next requests pile up and become the next
group, which is what makes groups grow exactly when load does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["GroupCommitter", "Pending"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(eq=False, slots=True)
class Pending(Generic[T, R]):
    """One request: what to commit, and (once done) its result or error."""

    key: str  # requests with the same key may share a group (the ledger name)
    request: T
    weight: int  # events in the request: bounds a group's size
    result: R | None = None
    error: BaseException | None = None
    done: bool = field(default=False)


class GroupCommitter(Generic[T, R]):
    def __init__(
        self,
        commit: Callable[[Sequence[T]], Sequence[object]],
        *,
        max_weight: int = 5000,
    ) -> None:
        """``commit`` runs one transaction for a group and returns, per request in
        order, its result or the exception that refused it alone; it raises when
        the transaction as a whole failed (then no request is acknowledged)."""
        self._commit = commit
        self._max_weight = max_weight
        self._cond = threading.Condition()
        self._queue: list[Pending[T, R]] = []
        self._leading = False

    def submit(self, key: str, request: T, *, weight: int = 1) -> R:
        mine: Pending[T, R] = Pending(key, request, weight)
        with self._cond:
            self._queue.append(mine)
        while True:
            with self._cond:
                while not mine.done and self._leading:
                    self._cond.wait()
                if mine.done:
                    break
                self._leading = True
                group = self._take_group()
            try:
                self._run(group)
            finally:
                with self._cond:
                    self._leading = False
                    self._cond.notify_all()
        if mine.error is not None:
            raise mine.error
        assert mine.result is not None
        return mine.result

    def _take_group(self) -> list[Pending[T, R]]:
        """The oldest request and every later one for the same key, up to the weight cap."""
        first = self._queue[0]
        group: list[Pending[T, R]] = []
        rest: list[Pending[T, R]] = []
        weight = 0
        for pending in self._queue:
            fits = not group or weight + pending.weight <= self._max_weight
            if pending.key == first.key and fits:
                group.append(pending)
                weight += pending.weight
            else:
                rest.append(pending)
        self._queue = rest
        return group

    def _run(self, group: list[Pending[T, R]]) -> None:
        # Outcomes are published only after the commit returned: a follower
        # never sees a result its transaction might still lose.
        try:
            outcomes = self._commit([p.request for p in group])
        except BaseException as error:  # the whole transaction failed: nobody is acknowledged
            with self._cond:
                for pending in group:
                    pending.error, pending.done = error, True
            if not isinstance(error, Exception):
                raise
            return
        assert len(outcomes) == len(group), "one outcome per request"
        with self._cond:
            for pending, outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    pending.error = outcome
                else:
                    pending.result = outcome  # type: ignore[assignment]
                pending.done = True
