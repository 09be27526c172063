"""Server-sent events: every record appended after ``after_seq``, as it is appended.

The stream polls the ledger's head (one indexed row) every half second and
reads records only when the head moved, so an idle subscriber costs almost
nothing; the streams of a server share those reads (``ledger.api.streamhub``).
Each event carries ``id: <seq>``: a client that reconnects (browsers'
``EventSource`` does so by itself) sends ``Last-Event-ID`` and resumes exactly
after the last record it saw.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ledger.api.openapi import PROBLEMS
from ledger.api.streamhub import StreamHub
from ledger.core.errors import InvalidParameter, StorageUnavailable

__all__ = ["EVENT_STREAM", "router", "server_is_exiting", "stream_hub"]

router = APIRouter(prefix="/v1/ledgers/{ledger}", tags=["events"])

EVENT_STREAM = "text/event-stream"
MAX_SEQ = 2**53 - 1
POLL_SECONDS = 0.5
# A comment line this often keeps proxies from closing an idle stream.
HEARTBEAT_SECONDS = 15.0
# How long the browser waits before reconnecting after the stream ended.
RETRY_MS = 2000


def server_is_exiting() -> bool:
    """True once uvicorn has been asked to stop.

    uvicorn waits for open responses before it shuts down, and an event
    stream never finishes by itself, so streams must notice the request to
    stop. uvicorn tells applications nothing; its SIGTERM handler is the bound
    method ``Server.handle_exit``, whose server carries ``should_exit``. Read
    only: nothing of uvicorn is patched.
    """
    handler = signal.getsignal(signal.SIGTERM)
    server = getattr(handler, "__self__", None)
    return bool(getattr(server, "should_exit", False))


# What the header may hold, as documented: a seq (or nothing), spaces or tabs around it.
_LAST_EVENT_ID = re.compile(r"[ \t]*([0-9]{0,15})[ \t]*")


def _start_after(after_seq: int, last_event_id: str) -> int:
    found = _LAST_EVENT_ID.fullmatch(last_event_id)
    if found is None:
        raise InvalidParameter("must be the seq of the last event received", field="Last-Event-ID")
    text = found.group(1)
    if not text:
        return after_seq
    # The header is newer knowledge than the URL the stream was first opened with.
    return max(after_seq, int(text))


def stream_hub(request: Request) -> StreamHub:
    hub: StreamHub = request.app.state.stream_hub
    return hub


class _CountedStream(StreamingResponse):
    """A stream that counts itself out of the hub's open streams when it ends,
    however it ends (finished, the client gone, the server stopping)."""

    def __init__(self, release: Callable[[], None], content: AsyncIterator[bytes]) -> None:
        super().__init__(
            content,
            media_type=EVENT_STREAM,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


async def _events(
    hub: StreamHub, ledger: str, after: int, head: int, lifetime: float
) -> AsyncIterator[bytes]:
    yield f"retry: {RETRY_MS}\n\n".encode()
    deadline = time.monotonic() + lifetime
    last_sent = time.monotonic()
    try:
        while True:
            while after < head:
                page = await hub.page(ledger, after)
                head = max(head, page.head)
                if not page.count:
                    break
                yield page.text
                after += page.count
                last_sent = time.monotonic()
            now = time.monotonic()
            if now >= deadline or server_is_exiting():
                return
            if now - last_sent >= HEARTBEAT_SECONDS:
                yield b": keep-alive\n\n"
                last_sent = now
            await asyncio.sleep(min(POLL_SECONDS, deadline - now))
            head = max(head, await hub.head(ledger, max_age=POLL_SECONDS))
    except StorageUnavailable:
        # End the stream; the client reconnects with Last-Event-ID once the database is back.
        return


@router.get(
    "/events/stream",
    response_class=StreamingResponse,
    summary="Follow the ledger: server-sent events, one per appended record",
    description=(
        "A `text/event-stream` of every record with seq > `after_seq` (or > the "
        "`Last-Event-ID` header, when a reconnecting client sends one), the backlog first, "
        "then each new record as it is appended. Each event is `id: <seq>`, "
        "`event: record`, `data: <the record's canonical bytes>`. The stream ends after "
        "`timeout` seconds, or when the server stops; clients reconnect with "
        "`Last-Event-ID` and miss nothing. A server already serving its limit of "
        "streams (`LEDGER_MAX_STREAMS`) answers 503 with `Retry-After`."
    ),
    responses={
        200: {
            "description": "The event stream",
            # Each event of the stream, as SSE parsers (and OpenAPI 3.2 itemSchema) see it.
            "content": {
                EVENT_STREAM: {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string", "pattern": "^[0-9]+$"},
                            "event": {"type": "string", "enum": ["record"]},
                            "data": {
                                "type": "string",
                                "description": "The record's canonical bytes (RFC 8785)",
                            },
                            "retry": {"type": "integer"},
                        },
                    }
                }
            },
        },
        **PROBLEMS(404, 422),
        503: {
            **PROBLEMS(503)[503],
            "description": "At the limit of open streams (`LEDGER_MAX_STREAMS`), or the "
            "database unavailable; see Retry-After",
        },
    },
)
async def stream_events(
    hub: Annotated[StreamHub, Depends(stream_hub)],
    ledger: Annotated[str, Path(description="Ledger name")],
    after_seq: Annotated[
        int,
        Query(ge=0, le=MAX_SEQ, description="Send records with seq > this; default: all"),
    ] = 0,
    timeout: Annotated[
        float,
        Query(gt=0, le=3600, description="Seconds after which the server ends the stream"),
    ] = 300.0,
    # A str, not str | None: headers have no null, and a documented null invites "null".
    last_event_id: Annotated[
        str,
        Header(
            alias="Last-Event-ID",
            description="Resume after this seq (sent by EventSource)",
            # Documented only: the handler checks it, so the 422 names Last-Event-ID.
            json_schema_extra={"pattern": "^[ \t]*[0-9]{0,15}[ \t]*$"},
        ),
    ] = "",
) -> StreamingResponse:
    after = _start_after(after_seq, last_event_id)
    # 404 (or 503 at the cap of open streams) before the stream starts, not
    # inside it. An after_seq beyond the head is no error (as for GET
    # /events): the stream waits for records past it.
    head = await hub.head(ledger, max_age=0)
    release = hub.admit()
    return _CountedStream(release, _events(hub, ledger, after, head, timeout))
