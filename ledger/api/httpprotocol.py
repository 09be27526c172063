"""The HTTP/1.1 connection protocol ``ledger serve`` gives uvicorn.

uvicorn's httptools protocol, through uvicorn's own extension point (a
protocol class passed as ``http=``), with two limits uvicorn lacks:

* a deadline for the request head. uvicorn arms a timer only after a
  response (``timeout_keep_alive``), so a connection that sends nothing, or
  part of a head and then a byte now and then, is held for ever, with its
  descriptor and memory. Here a head must be complete ``header_timeout``
  seconds after the connection was made, or after the first byte of a later
  request on it; otherwise the connection is closed, with a 408 problem if
  part of a head had come.
* a cap on connections. uvicorn's ``limit_concurrency`` answers 503 only once
  a head is complete and still keeps every connection open; here a
  connection beyond ``max_connections`` is answered 503 and closed as soon as
  it is accepted, so descriptors never run out (when they do, asyncio stops
  accepting for a second, for everybody).

Request bodies have their own deadline, in the app (``ledger.api.body``).
"""

from __future__ import annotations

import asyncio
import http
import logging
import resource
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ledger.api.problems import PROBLEM_MEDIA_TYPE, problem_bytes
from ledger.core.errors import LedgerError, RequestTimeout, ServerBusy

__all__ = ["GuardedHttpProtocol", "connection_cap", "guarded_protocol"]

logger = logging.getLogger("ledger.api")

# Descriptors kept for what is not a client connection: the listening socket,
# the database pool and files, logs, the intake worker's pipes.
RESERVED_DESCRIPTORS = 128


def _answer(error: LedgerError) -> bytes:
    status, body = problem_bytes(error)
    retry_after = getattr(error, "retry_after", None)
    retry = [f"retry-after: {retry_after}\r\n".encode()] if retry_after is not None else []
    return b"".join(
        [
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode(),
            f"content-type: {PROBLEM_MEDIA_TYPE}\r\n".encode(),
            f"content-length: {len(body)}\r\n".encode(),
            b"x-content-type-options: nosniff\r\n",
            *retry,
            b"connection: close\r\n\r\n",
            body,
        ]
    )


_HEAD_TIMEOUT = _answer(RequestTimeout("the request head did not arrive in time"))
_BUSY = _answer(
    ServerBusy("the server holds as many connections as it may; retry later", retry_after=1)
)


class GuardedHttpProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with a request-head deadline and a connection cap
    (class attributes: ``guarded_protocol`` makes a subclass with the settings)."""

    header_timeout: ClassVar[float] = 5.0
    max_connections: ClassVar[int] = 2048

    _head_deadline: asyncio.TimerHandle | None = None
    _head_started = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            # Before the request is read: nothing of the app runs for it.
            transport.write(_BUSY)
            transport.close()
            return
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_started = True
        # The first head's deadline runs from the connection; a later one's
        # from its first byte (the keep-alive timeout covers the wait for it).
        if self._head_deadline is None:
            self._arm_head_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_head_deadline()
        self._head_started = False
        super().on_headers_complete()

    def _arm_head_deadline(self) -> None:
        self._head_deadline = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A late pipelined head behind a request still being answered:
            # that answer is finished, then the connection closed.
            self.cycle.keep_alive = False
            return
        if self._head_started:
            self.transport.write(_HEAD_TIMEOUT)
        self.transport.close()


def guarded_protocol(*, header_timeout: float, max_connections: int) -> type[GuardedHttpProtocol]:
    """A ``GuardedHttpProtocol`` class with these limits, for ``uvicorn.run(http=...)``."""
    return type(
        "GuardedHttpProtocol",
        (GuardedHttpProtocol,),
        {"header_timeout": header_timeout, "max_connections": max_connections},
    )


def connection_cap(max_connections: int) -> int:
    """The connections this process can hold: ``max_connections`` when its
    descriptor limit allows (raising the soft limit towards the hard one if
    need be), otherwise as many as the limit leaves, with a warning."""
    wanted = max_connections + RESERVED_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if raised > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return max_connections
    cap = max(1, soft - RESERVED_DESCRIPTORS)
    logger.warning(
        "LEDGER_MAX_CONNECTIONS=%d needs %d file descriptors, the limit is %d "
        "(ulimit -n): serving at most %d connections",
        max_connections,
        wanted,
        soft,
        cap,
    )
    return cap
