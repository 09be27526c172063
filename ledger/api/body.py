"""Reading request bodies under a size cap, before any parsing."""

from __future__ import annotations

import asyncio

from fastapi import Request

from ledger.core.errors import BodyTooLarge, RequestTimeout, UnsupportedMediaType

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


async def read_json_body(request: Request, *, max_bytes: int, timeout: float = 30.0) -> bytes:
    """The raw body, refused with 413 as soon as it passes ``max_bytes``.

    A client that trickles its body holds a connection and a worker; after
    ``timeout`` seconds it gets 408 instead.
    """
    try:
        async with asyncio.timeout(timeout):
            return await _read(request, max_bytes=max_bytes)
    except TimeoutError:
        raise RequestTimeout(f"the body did not arrive within {timeout:g} seconds") from None


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
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(too_large)
        chunks.append(chunk)
    return b"".join(chunks)
