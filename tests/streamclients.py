"""Many event-stream readers at once, on raw sockets, and a server's memory.

One asyncio task a reader, each its own TCP connection speaking HTTP/1.1 and
decoding the chunked body itself: hundreds of readers then cost the client
a fraction of the CPU the server spends on them (httpx would cost more than
the server on a 2-core machine).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["StreamResult", "follow", "read_status_kib"]

_ID = re.compile(rb"^id: ([0-9]+)$", re.MULTILINE)


@dataclass(slots=True)
class StreamResult:
    """What one reader saw: the status, its headers and body (for a refusal),
    and the seq of every event it received, in order."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    seqs: list[int] = field(default_factory=list)


async def follow(
    port: int, path: str, *, until_seq: int, timeout: float, opened: asyncio.Event | None = None
) -> StreamResult:
    """GET ``path`` and read events until one with seq >= ``until_seq`` arrived,
    the stream ended, or ``timeout`` passed. A non-200 answer is read whole."""
    result = StreamResult()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(timeout):
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").split("\r\n")
            result.status = int(status_line.split()[1])
            for line in lines:
                name, _, value = line.partition(":")
                if name:
                    result.headers[name.strip().lower()] = value.strip()
            if opened is not None:
                opened.set()
            if result.status != 200:
                length = int(result.headers.get("content-length", "0"))
                result.body = await reader.readexactly(length)
                return result
            pending = b""
            while not result.seqs or result.seqs[-1] < until_seq:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.strip(), 16)
                if size == 0:
                    break  # the server ended the stream
                pending += (await reader.readexactly(size + 2))[:-2]
                complete, separator, pending = pending.rpartition(b"\n\n")
                if separator:
                    result.seqs.extend(int(m) for m in _ID.findall(complete))
    except TimeoutError:
        pass
    finally:
        writer.close()
    return result


def read_status_kib(pid: int, name: str) -> int:
    """A ``/proc/<pid>/status`` figure in KiB (VmRSS, VmHWM, ...)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    raise KeyError(name)
