"""Group commit: concurrent appends to one ledger share one transaction.

Requests join a queue; a drain takes the oldest request and every later one
for the same ledger (up to a weight cap), commits them together (one chain
and tree update, one checkpoint, one fsync), and only then hands each request
its own outcome. So a request is acknowledged only after the commit that
holds it, and a request that fails on its own merits fails alone (the
committer decides that). While one group commits, the next requests pile up
and become the next group, which is what makes groups grow exactly when load
does.

A group is committed in two steps: ``prepare`` runs its statements and
returns the outcomes with a ``commit`` callable (the COMMIT, hence the
fsync); the outcomes are handed out only after ``commit`` returned.

Who drains:

* ``submit`` (threads: the CLI, worker threads): a writer thread, started on
  the first request and again if it ever ended; ``close`` stops it.
* ``submit_async`` (coroutines) with ``inline=True``: the event loop itself,
  in a callback scheduled when the first request of a wave is queued. It
  runs after every request that arrived with it has been parsed and queued,
  so the group is the whole wave; it prepares the group on the loop's thread
  and hands only the COMMIT to a thread of its own, so the loop parses the
  next wave during the fsync. This is for a local database (SQLite): its
  statements are CPU, and a group prepared in a second thread takes several
  times as long as inline, because each of its dozen SQLite calls gives up
  the GIL and then waits for the busy event loop to hand it back.
  The COMMIT is one such call. SQLite cannot begin the next group's
  transaction until that COMMIT is done, so each request that queues
  meanwhile is handed to ``ahead`` (the recorder seals it then, on the head
  the COMMIT will leave; see ``Recorder.seal_ahead``).
* ``submit_async`` with ``statement`` (PostgreSQL): a task on the event
  loop offers each group to ``statement``, which may write it as one
  statement without holding a thread (``ledger.store.postgres.writer``); a
  group it declines, having written nothing, is prepared and committed in
  the commit thread meanwhile. The next group is taken only after that, so
  groups commit in the order they were taken, and a slow or unreachable
  server stalls appends, never the event loop.
* ``submit_async`` otherwise: the writer thread; each group wakes each
  waiting loop once.

Both drains may commit groups of one ledger at once: each group is its own
transaction behind the ledger's head lock, so they only serialize.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["GroupCommitter"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(eq=False, slots=True)
class _Pending(Generic[T, R]):
    """One request, and where its outcome goes: an event loop's future or a thread's."""

    key: str  # requests with the same key may share a group (the ledger name)
    request: T
    weight: int  # events in the request: bounds a group's size
    future: asyncio.Future[R] | Future[R]


def _settle(items: list[tuple[asyncio.Future[R], object]]) -> None:
    """On the event loop: hand each waiting coroutine its outcome."""
    for future, outcome in items:
        if future.done():  # the request was cancelled (client gone); its commit stands
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)  # type: ignore[arg-type]


def _take_group(queue: deque[_Pending[T, R]], max_weight: int) -> list[_Pending[T, R]]:
    """Remove and return the oldest request and every later one for the same key,
    up to ``max_weight`` in all."""
    first = queue[0]
    group: list[_Pending[T, R]] = []
    rest: list[_Pending[T, R]] = []
    weight = 0
    while queue:
        pending = queue.popleft()
        fits = not group or weight + pending.weight <= max_weight
        if pending.key == first.key and fits:
            group.append(pending)
            weight += pending.weight
        else:
            rest.append(pending)
    queue.extend(rest)
    return group


def _reraise_fatal(outcomes: Sequence[object]) -> None:
    """After its requests heard of it: a KeyboardInterrupt or SystemExit goes on up."""
    first = outcomes[0] if outcomes else None
    if isinstance(first, BaseException) and not isinstance(first, Exception):
        raise first


Prepare = Callable[[Sequence[T]], tuple[Sequence[object], Callable[[], None]]]


@dataclass(eq=False, slots=True)
class _LoopLane(Generic[T, R]):
    """Inline mode: one event loop's queued requests (touched on that loop only)."""

    queue: deque[_Pending[T, R]] = field(default_factory=deque)
    scheduled: bool = False  # a drain is due on the loop
    committing: bool = False  # a group's COMMIT is running in the commit thread
    ahead: int = 0  # how many queued requests, from the front, went to ``ahead``
    task: asyncio.Task[None] | None = None  # statement mode: the drain, while it runs


class GroupCommitter(Generic[T, R]):
    def __init__(
        self,
        prepare: Prepare[T],
        *,
        max_weight: int = 5000,
        inline: bool = False,
        ahead: Callable[[T], None] | None = None,
        name: str = "ledger-writer",
        statement: Callable[[Sequence[T]], Awaitable[Sequence[object] | None]] | None = None,
    ) -> None:
        """``prepare`` runs one transaction for a group up to its COMMIT and returns,
        per request in order, its result or the exception that refused it alone,
        with the callable that commits; either raises when the transaction as a
        whole failed (then no request is acknowledged).
        ``inline``: coroutines' groups are prepared on their event loop (see above).
        ``ahead`` (inline only): called on the loop, in queue order, with each
        request that waits while a group of its loop commits: work done then
        is work the loop would otherwise do after the COMMIT, when the
        request's own group is prepared. It must not raise.
        ``statement`` (not inline): coroutines' groups are first offered to it,
        on their event loop; it commits a group and returns its outcomes as
        ``prepare`` would, or returns None having written nothing, and the
        group is then prepared and committed in the commit thread."""
        if inline and statement is not None:
            raise ValueError("a committer drains inline or by statement, not both")
        self._prepare = prepare
        self._statement = statement
        self._max_weight = max_weight
        self._inline = inline
        self._ahead = ahead
        self._name = name
        self._cond = threading.Condition()
        self._queue: deque[_Pending[T, R]] = deque()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._lanes: dict[asyncio.AbstractEventLoop, _LoopLane[T, R]] = {}
        self._committer: ThreadPoolExecutor | None = None

    @property
    def inline(self) -> bool:
        return self._inline

    def submit(self, key: str, request: T, *, weight: int = 1) -> R:
        """Commit ``request`` (with whatever shares its group); block until done."""
        future: Future[R] = Future()
        self._enqueue(_Pending(key, request, weight, future))
        return future.result()

    async def submit_async(self, key: str, request: T, *, weight: int = 1) -> R:
        """``submit`` for a coroutine: it waits without holding a thread."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        pending = _Pending(key, request, weight, future)
        if not self._inline and self._statement is None:
            self._enqueue(pending)
            return await future
        lane = self._lanes.get(loop)
        if lane is None:
            lane = self._lanes[loop] = _LoopLane()
        lane.queue.append(pending)
        if self._statement is not None:
            if lane.task is None:
                # Its first step runs after the callbacks already due: the rest of this wave.
                lane.task = loop.create_task(self._drain_statements(lane))
        elif lane.committing:
            self._run_ahead(lane)
        elif not lane.scheduled:
            # Runs after the callbacks already due: the rest of this wave queues first.
            lane.scheduled = True
            loop.call_soon(self._drain_inline, loop, lane)
        return await future

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued for the writer thread, then stop it (and the
        inline mode's commit thread, once its COMMIT is done)."""
        with self._cond:
            thread = self._thread
            self._closing = True
            self._cond.notify_all()
            committer, self._committer = self._committer, None
        if thread is not None:
            thread.join(timeout)
        if committer is not None:
            committer.shutdown(wait=True)

    # -- the event loop's drain ---------------------------------------------

    def _drain_inline(self, loop: asyncio.AbstractEventLoop, lane: _LoopLane[T, R]) -> None:
        lane.scheduled = False
        while lane.queue and not lane.committing:
            group = _take_group(lane.queue, self._max_weight)
            lane.ahead = 0
            try:
                outcomes, commit = self._prepare([p.request for p in group])
                assert len(outcomes) == len(group), "one outcome per request"
            except BaseException as error:  # nothing was written: nobody is acknowledged
                _settle([(p.future, error) for p in group])  # type: ignore[misc]
                _reraise_fatal([error])
                continue
            lane.committing = True
            done = loop.run_in_executor(self._commit_thread(), commit)
            done.add_done_callback(functools.partial(self._committed, loop, lane, group, outcomes))
        if lane.committing:
            self._run_ahead(lane)

    async def _drain_statements(self, lane: _LoopLane[T, R]) -> None:
        """Statement mode: commit the lane's groups one after another, each by
        ``statement`` or else in the commit thread."""
        assert self._statement is not None
        try:
            while lane.queue:
                group = _take_group(lane.queue, self._max_weight)
                requests = [p.request for p in group]
                outcomes: Sequence[object] | None
                try:
                    outcomes = await self._statement(requests)
                    if outcomes is None:
                        done = self._commit_thread().submit(self._commit_now, requests)
                        outcomes = await asyncio.wrap_future(done)
                    assert len(outcomes) == len(group), "one outcome per request"
                except BaseException as error:  # the whole group failed: nobody is acknowledged
                    outcomes = [error] * len(group)
                _settle([(p.future, o) for p, o in zip(group, outcomes, strict=True)])  # type: ignore[misc]
                _reraise_fatal(outcomes)
        finally:
            lane.task = None

    def _commit_now(self, requests: Sequence[T]) -> Sequence[object]:
        """Prepare and commit ``requests`` at once (in a thread)."""
        outcomes, commit = self._prepare(requests)
        commit()
        return outcomes

    def _run_ahead(self, lane: _LoopLane[T, R]) -> None:
        """Hand ``ahead`` the queued requests it has not seen (a COMMIT is running)."""
        if self._ahead is None:
            return
        while lane.ahead < len(lane.queue):
            self._ahead(lane.queue[lane.ahead].request)
            lane.ahead += 1

    def _committed(
        self,
        loop: asyncio.AbstractEventLoop,
        lane: _LoopLane[T, R],
        group: list[_Pending[T, R]],
        outcomes: Sequence[object],
        done: asyncio.Future[None],
    ) -> None:
        lane.committing = False
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if error is not None:  # the COMMIT failed: nobody is acknowledged
            outcomes = [error] * len(group)
        _settle([(p.future, o) for p, o in zip(group, outcomes, strict=True)])  # type: ignore[misc]
        if lane.queue and not lane.scheduled:
            lane.scheduled = True
            loop.call_soon(self._drain_inline, loop, lane)

    def _commit_thread(self) -> ThreadPoolExecutor:
        with self._cond:
            if self._committer is None:
                self._committer = ThreadPoolExecutor(1, thread_name_prefix=f"{self._name}-commit")
            return self._committer

    # -- the writer thread --------------------------------------------------

    def _enqueue(self, pending: _Pending[T, R]) -> None:
        with self._cond:
            self._queue.append(pending)
            if self._thread is None or not self._thread.is_alive():
                self._closing = False
                self._thread = threading.Thread(target=self._write, name=self._name, daemon=True)
                self._thread.start()
            else:
                self._cond.notify()

    def _write(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    self._thread = None
                    return
                group = _take_group(self._queue, self._max_weight)
            outcomes = self._outcomes(group)
            self._deliver(group, outcomes)
            _reraise_fatal(outcomes)

    def _outcomes(self, group: list[_Pending[T, R]]) -> Sequence[object]:
        """Prepare and commit ``group``: each request's result or error."""
        try:
            outcomes = self._commit_now([p.request for p in group])
            assert len(outcomes) == len(group), "one outcome per request"
        except BaseException as error:  # the whole transaction failed: nobody is acknowledged
            return [error] * len(group)
        return outcomes

    def _deliver(self, group: list[_Pending[T, R]], outcomes: Sequence[object]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[R], object]]] = {}
        for pending, outcome in zip(group, outcomes, strict=True):
            future = pending.future
            if isinstance(future, asyncio.Future):
                by_loop.setdefault(future.get_loop(), []).append((future, outcome))
            elif isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)  # type: ignore[arg-type]
        for loop, items in by_loop.items():
            # One wake-up of each loop per group, not one per request.
            with contextlib.suppress(RuntimeError):  # that loop closed: nobody waits there
                loop.call_soon_threadsafe(_settle, items)
