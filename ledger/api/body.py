"""Reading request bodies under a size cap, before any parsing."""

from __future__ import annotations

import asyncio
import hashlib
import math
import weakref
from dataclasses import dataclass, field
from typing import BinaryIO

from fastapi import Request
from starlette.requests import ClientDisconnect

from ledger.core.errors import (
    BodyTooLarge,
    ClientDisconnected,
    RequestTimeout,
    UnsupportedMediaType,
)

__all__ = ["SpooledBody", "read_json_body", "spool_body"]


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


def _declared_over(declared: str, max_bytes: int) -> bool:
    """Whether a Content-Length value states more than ``max_bytes`` (one with
    more digits than any allowed size is, without turning it into an int)."""
    digits = declared.strip().lstrip("0")
    if not digits.isascii() or not digits.isdigit():
        return False
    return len(digits) > len(str(max_bytes)) or int(digits) > max_bytes


@dataclass(frozen=True, slots=True)
class SpooledBody:
    """A body copied into a file as it arrived."""

    sha256: str
    size: int
    #: Its first bytes (up to ``head_bytes`` of ``spool_body``).
    head: bytes


async def spool_body(
    request: Request, into: BinaryIO, *, max_bytes: int, timeout: float, head_bytes: int = 16
) -> SpooledBody:
    """Copy the raw body into ``into`` as it arrives, hashing it on the way, so
    no more than one received chunk is ever in memory. 413 for a declared
    length over ``max_bytes`` before a byte is read, or as soon as the bytes
    read pass it; 408 after ``timeout`` seconds.

    A rare route's: it takes a timer of its own (``asyncio.timeout``) rather
    than the shared grains of ``read_json_body``.
    """
    declared = request.headers.get("content-length")
    too_large = f"the body exceeds {max_bytes} bytes"
    if declared is not None and _declared_over(declared, max_bytes):
        raise BodyTooLarge(too_large)
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise BodyTooLarge(too_large)
                digest.update(chunk)
                into.write(chunk)
                if len(head) < head_bytes:
                    head += chunk[: head_bytes - len(head)]
    except TimeoutError:
        raise RequestTimeout(f"the body did not arrive within {timeout:g} seconds") from None
    except ClientDisconnect:
        raise ClientDisconnected(f"the client hung up after {size} bytes of the body") from None
    return SpooledBody(sha256=digest.hexdigest(), size=size, head=head)
