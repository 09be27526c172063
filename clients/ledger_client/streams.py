"""The live stream's records, and bundles written whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import httpx
from httpx_sse import ServerSentEvent

from ledger.core.records import Record
from ledger_client.checks import read_record
from ledger_client.errors import VerificationError

__all__ = ["AtomicFile", "is_event_stream", "streamed_record"]

EVENT_STREAM = "text/event-stream"


def streamed_record(ledger: str, last: int, event: ServerSentEvent) -> Record:
    """The record of a stream event, which must be the one after ``last``."""
    seq = last + 1
    if event.id != str(seq):
        raise VerificationError(
            "record", f"the stream sent event {event.id!r} after {last}", seq=seq
        )
    return read_record(event.data.encode("utf-8"), ledger=ledger, seq=seq)


def is_event_stream(response: httpx.Response) -> bool:
    media_type = str(response.headers.get("content-type", "")).partition(";")[0].strip()
    return media_type == EVENT_STREAM


class AtomicFile:
    """A file written beside ``target`` and renamed onto it once complete and
    synced: a failure part-way leaves ``target`` as it was."""

    def __init__(self, target: Path) -> None:
        self.target = target
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        self._temporary = Path(name)
        self._handle = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self._handle.write(chunk)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self._handle.flush()
                os.fsync(self._handle.fileno())
            self._handle.close()
            if kind is None:
                os.replace(self._temporary, self.target)
        finally:
            self._temporary.unlink(missing_ok=True)
