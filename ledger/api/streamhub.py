"""What the event streams of one server read, read once for all of them.

Each stream follows a ledger's head and sends the records after its position.
Read by each stream alone, 200 streams would make 400 head reads a second and
read every new page 200 times, each on a thread of its own with its own
database connection and a copy of the page, and the server's memory would
grow with the streams (``scripts/bench.sh readers`` measures it). Here
streams ask the hub instead:

* the head of a ledger is read at most once per ``max_age`` for all streams;
* a page of records (its event-stream text encoded once, the bytes then
  shared by every stream that sends it) is read once however many streams
  want it at the same time, and the last few pages stay at hand for streams
  a little behind;
* at most ``read_threads`` threads read for streams at a time, so streams
  never hold more than that many database connections, nor starve other
  requests of threads.

The hub also counts open streams against ``max_streams``: one more is refused
at once with ``ServerBusy`` (503 with Retry-After), rather than left waiting
without an answer.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio.to_thread

from ledger.core.errors import ServerBusy
from ledger.service import LedgerService

__all__ = ["Page", "StreamHub"]

T = TypeVar("T")

# Records a page holds at most: a stream catching up on a long backlog reads these many at once.
PAGE_RECORDS = 500
# Pages kept after they were read (at most ~0.5 MB each), for streams a little behind.
PAGES_KEPT = 8
# Seconds a refused stream is told to wait: streams end by themselves (their
# ``timeout``), so a place frees up without any telling when.
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True, slots=True)
class Page:
    """The records after seq ``after``, as server-sent events."""

    after: int
    count: int
    # The ledger's head when the page was read: at least after + count.
    head: int
    text: bytes


def _read_page(service: LedgerService, ledger: str, after: int) -> Page:
    lines, head = service.read_page(ledger, after_seq=after, limit=PAGE_RECORDS)
    text = bytearray()
    for seq, line in enumerate(lines, start=after + 1):
        # Canonical JSON (RFC 8785) has no line breaks: one data line a record.
        text += b"id: %d\nevent: record\ndata: %s\n\n" % (seq, line)
    return Page(after=after, count=len(lines), head=max(head, after + len(lines)), text=bytes(text))


def _read_head(service: LedgerService, ledger: str) -> int:
    return service.get_ledger(ledger).size


def _retrieve(task: asyncio.Task[object]) -> None:
    # Every stream awaiting a read may have gone: its error is then nobody's.
    if not task.cancelled():
        task.exception()


class StreamHub:
    """Shared reads, and the count of open streams, for one event loop's streams."""

    def __init__(self, service: LedgerService, *, max_streams: int, read_threads: int) -> None:
        self._service = service
        self._max_streams = max_streams
        self._open = 0
        self._limiter = anyio.CapacityLimiter(read_threads)
        self._heads: dict[str, tuple[float, asyncio.Task[int]]] = {}
        self._pages: OrderedDict[tuple[str, int], asyncio.Task[Page]] = OrderedDict()

    @property
    def open_streams(self) -> int:
        return self._open

    def admit(self) -> Callable[[], None]:
        """Count one more open stream, or raise ``ServerBusy`` at the cap; the
        returned function (idempotent) counts it out."""
        if self._open >= self._max_streams:
            raise ServerBusy(
                f"the server already serves {self._max_streams} event streams, its limit "
                "(LEDGER_MAX_STREAMS); retry later",
                retry_after=RETRY_AFTER_SECONDS,
            )
        self._open += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._open -= 1

        return release

    async def head(self, ledger: str, *, max_age: float) -> int:
        """The ledger's head, from a read started at most ``max_age`` seconds ago
        (or one under way), else from a new read."""
        now = time.monotonic()
        entry = self._heads.get(ledger)
        if entry is None or (entry[1].done() and now - entry[0] > max_age):
            entry = (now, self._start(_read_head, ledger))
            self._heads[ledger] = entry
        task = entry[1]
        try:
            return await asyncio.shield(task)
        except BaseException:
            # A failed read is not kept (nor is a name of no ledger, which
            # would otherwise stay for good); a cancelled stream leaves its
            # read to the others.
            if task.done() and self._heads.get(ledger) is entry:
                del self._heads[ledger]
            raise

    async def page(self, ledger: str, after: int) -> Page:
        """The records after seq ``after``: up to ``PAGE_RECORDS``, at least one
        when the ledger's head is past ``after``. A kept page may end before
        the head; the stream then asks for the page after it."""
        key = (ledger, after)
        task = self._pages.get(key)
        if task is None or (task.done() and (_failed(task) or task.result().count == 0)):
            task = self._start(_read_page, ledger, after)
            self._pages[key] = task
            while len(self._pages) > PAGES_KEPT:
                self._pages.popitem(last=False)  # whoever awaits it still holds it
        else:
            self._pages.move_to_end(key)
        return await asyncio.shield(task)

    def _start(self, read: Callable[..., T], *args: object) -> asyncio.Task[T]:
        # A task of its own: a stream that goes away mid-read (the client
        # left) must not cancel the read the other streams wait for.
        task = asyncio.create_task(
            anyio.to_thread.run_sync(read, self._service, *args, limiter=self._limiter)
        )
        task.add_done_callback(_retrieve)
        return task


def _failed(task: asyncio.Task[T]) -> bool:
    return task.cancelled() or task.exception() is not None
