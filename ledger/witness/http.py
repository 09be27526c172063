"""The witness's HTTP interface (C2SP tlog-witness), a Starlette app.

    POST /add-checkpoint            cosign a checkpoint: 200 and the cosignature line
    GET  /<sha256 hex of origin>/checkpoint
                                    the latest cosigned checkpoint, with the log's
                                    signatures and this witness's cosignature
    GET  /health                    200 once the state answers

Refusals carry the statuses the spec fixes (``_STATUS``, the one place they
are assigned) and a one-line text reason; a 409's body is the size last
cosigned, as ``text/x.tlog.size``. The check-and-store runs in a worker
thread: it holds the state's lock and waits on the disk, and the event
loop goes on reading other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import re

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ledger.core.errors import (
    BodyTooLarge,
    ClientDisconnected,
    InconsistentCheckpoint,
    LedgerError,
    OldSizeMismatch,
    RequestTimeout,
    SubmissionMalformed,
    UnknownLog,
    UntrustedCheckpoint,
)
from ledger.core.witnessing import MAX_REQUEST_BYTES, SIZE_CONTENT_TYPE, size_body
from ledger.witness.cosigning import add_checkpoint
from ledger.witness.directory import WitnessFiles

__all__ = ["BODY_TIMEOUT", "create_witness_app"]

# Seconds a client may take to send its (at most ~67 KiB) request body, by default.
BODY_TIMEOUT = 10.0
_TEXT = "text/plain; charset=utf-8"
_ORIGIN_HASH = re.compile(r"[0-9a-f]{64}")

_STATUS: list[tuple[type[LedgerError], int]] = [
    (SubmissionMalformed, 400),
    (ClientDisconnected, 400),
    (UntrustedCheckpoint, 403),
    (UnknownLog, 404),
    (RequestTimeout, 408),
    (OldSizeMismatch, 409),
    (BodyTooLarge, 413),
    (InconsistentCheckpoint, 422),
]


def _refusal(error: LedgerError) -> Response:
    if isinstance(error, OldSizeMismatch):
        # As a header, not a media type: Starlette would append a charset to text/*.
        headers = {"content-type": SIZE_CONTENT_TYPE}
        return Response(size_body(error.size), status_code=409, headers=headers)
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return PlainTextResponse(f"{error.title}: {error}\n", status_code=status)
    raise error


async def _read_body(request: Request, timeout: float) -> bytes:
    """The body, refused past ``MAX_REQUEST_BYTES`` before more is read, or slower than
    ``timeout`` seconds."""
    too_large = f"the request body is over {MAX_REQUEST_BYTES} bytes"
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise BodyTooLarge(too_large)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_REQUEST_BYTES:
                    raise BodyTooLarge(too_large)
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout(f"the body did not arrive within {timeout:g} s") from None
    except ClientDisconnect:
        raise ClientDisconnected("the client hung up before its body was read") from None
    return b"".join(chunks)


def create_witness_app(files: WitnessFiles, *, body_timeout: float = BODY_TIMEOUT) -> Starlette:
    """The witness's ASGI app over an opened witness directory."""

    async def add_checkpoint_route(request: Request) -> Response:
        body = await _read_body(request, body_timeout)
        cosigned = await anyio.to_thread.run_sync(add_checkpoint, files.state, files.witness, body)
        return PlainTextResponse(cosigned.cosignature, media_type=_TEXT)

    async def checkpoint_route(request: Request) -> Response:
        digest = request.path_params["origin_hash"]
        cosigned = None
        if _ORIGIN_HASH.fullmatch(digest):
            cosigned = await anyio.to_thread.run_sync(files.state.latest_by_hash, digest)
        if cosigned is None:
            raise HTTPException(404, "this witness has cosigned no checkpoint of that log")
        return PlainTextResponse(cosigned.to_text(), media_type=_TEXT)

    async def health_route(request: Request) -> Response:
        name = await anyio.to_thread.run_sync(files.state.name)
        return PlainTextResponse(f"ok {name}\n", media_type=_TEXT)

    async def on_refusal(request: Request, error: Exception) -> Response:
        assert isinstance(error, LedgerError)
        return _refusal(error)

    return Starlette(
        routes=[
            Route("/add-checkpoint", add_checkpoint_route, methods=["POST"]),
            Route("/{origin_hash}/checkpoint", checkpoint_route, methods=["GET"]),
            Route("/health", health_route, methods=["GET"]),
        ],
        exception_handlers={LedgerError: on_refusal},
    )
