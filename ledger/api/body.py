"""Reading request bodies under a size cap, before any parsing."""

from __future__ import annotations

import asyncio
import math
import weakref
from dataclasses import dataclass, field

from fastapi import Request
from starlette.requests import ClientDisconnect

from ledger.core.errors import (
    BodyTooLarge,
    ClientDisconnected,
    RequestTimeout,
    UnsupportedMediaType,
)

__all__ = ["read_json_body"]


def _check_media_type(content_type: str | None) -> None:
    if not content_type:
        raise UnsupportedMediaType("send the body as Content-Type: application/json")
    media_type, _, params = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise UnsupportedMediaType(
            f"Content-Type {media_type!r} is not accepted; send application/json"
        )
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise UnsupportedMediaType("JSON must be sent as UTF-8")


# Deadlines fall on whole multiples of this many seconds of the loop's clock,
# so a stuck read ends between ``timeout`` and ``timeout + _GRAIN`` seconds.
_GRAIN = 1.0


@dataclass(eq=False, slots=True)
class _Read:
    """One body read under a deadline."""

    task: asyncio.Task[object]
    slot: int  # the deadline, in grains of the loop's clock
    cancelling: int  # the task's cancel requests before the read began
    expired: bool = False


@dataclass(eq=False, slots=True)
class _Deadlines:
    """One event loop's body reads, by the grain their deadline falls in.

    ``asyncio.timeout`` starts and cancels a timer for every request, which
    under load cost a few percent of a single-event append. Here one timer
    per grain serves every read whose deadline falls in it.
    """

    due: dict[int, dict[asyncio.Task[object], _Read]] = field(default_factory=dict)

    def add(
        self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[object], timeout: float
    ) -> _Read:
        slot = math.ceil((loop.time() + timeout) / _GRAIN)
        reads = self.due.get(slot)
        if reads is None:
            reads = self.due[slot] = {}
            loop.call_at(slot * _GRAIN, self._expire, slot)
        read = reads[task] = _Read(task, slot, task.cancelling())
        return read

    def discard(self, read: _Read) -> None:
        reads = self.due.get(read.slot)
        if reads is not None:
            reads.pop(read.task, None)

    def _expire(self, slot: int) -> None:
        for read in self.due.pop(slot, {}).values():
            read.expired = True
            read.task.cancel()


_deadlines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Deadlines] = (
    weakref.WeakKeyDictionary()
)


async def read_json_body(request: Request, *, max_bytes: int, timeout: float = 30.0) -> bytes:
    """The raw body, refused with 413 as soon as it passes ``max_bytes``.

    A client that trickles its body holds a connection and a worker; after
    ``timeout`` seconds (at most a second more) it gets 408 instead.
    """
    task = asyncio.current_task()
    if task is None:  # as asyncio.timeout: a deadline cancels the task reading
        raise RuntimeError("read_json_body must run inside a task")
    loop = task.get_loop()
    deadlines = _deadlines.get(loop)
    if deadlines is None:
        deadlines = _deadlines[loop] = _Deadlines()
    read = deadlines.add(loop, task, timeout)
    try:
        return await _read(request, max_bytes=max_bytes)
    except asyncio.CancelledError:
        # Ours only if nobody else asked too (a client gone, a shutdown):
        # theirs goes on up, as asyncio.timeout lets it.
        if read.expired and task.uncancel() <= read.cancelling:
            raise RequestTimeout(f"the body did not arrive within {timeout:g} seconds") from None
        raise
    finally:
        deadlines.discard(read)


async def _read(request: Request, *, max_bytes: int) -> bytes:
    _check_media_type(request.headers.get("content-type"))
    declared = request.headers.get("content-length")
    too_large = f"the body exceeds {max_bytes} bytes"
    if (
        declared is not None
        and declared.isascii()
        and declared.isdigit()
        and int(declared) > max_bytes
    ):
        raise BodyTooLarge(too_large)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise BodyTooLarge(too_large)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientDisconnected(f"the client hung up after {size} bytes of the body") from None
    return b"".join(chunks)
