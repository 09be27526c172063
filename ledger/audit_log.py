"""The audit log (``LEDGER_AUDIT_LOG``): one JSON line per append, export,
ledger, key or token operation and per refused authentication, written by
the HTTP API (``ledger.api.request_log``) and the command line alike.

Lines are JSON with every control and non-ASCII character escaped, so one
event is always one line. Not uvicorn's access log (``LEDGER_ACCESS_LOG``),
nor the integrity check of stored ledgers (``ledger.integrity``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson

__all__ = ["audit_event", "configure_audit_log"]


class _Sink:
    """Where audit lines go: one ``write(2)`` per line, on a file opened with
    ``O_APPEND`` (so lines of several processes never interleave) or on
    standard error. Written directly rather than through ``logging``, whose
    record, handler and flush per line cost a noticeable share of an append
    (``scripts/bench.sh appends`` measures the log's cost)."""

    def __init__(self) -> None:
        self._fd = 2
        self._owned = False
        self._lock = threading.Lock()

    def open(self, path: Path | None) -> None:
        fd = 2 if path is None else os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        with self._lock:
            old, owned = self._fd, self._owned
            self._fd, self._owned = fd, path is not None
        if owned:
            os.close(old)

    def write(self, line: bytes) -> None:
        with self._lock:  # a line is never written to a descriptor being closed
            os.write(self._fd, line)


_sink = _Sink()


def configure_audit_log(path: Path | None) -> None:
    """Send audit lines to ``path`` (default: standard error)."""
    _sink.open(path)


def _now() -> str:
    # strftime per line cost as much as the rest of the line; seconds repeat.
    now = time.time()
    seconds = int(now)
    if seconds != _second[0]:
        _second[:] = [seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))]
    return f"{_second[1]}.{int((now - seconds) * 1_000_000):06d}Z"


_second: list[Any] = [-1, ""]


def audit_event(action: str, *, principal: str, outcome: str, **fields: Any) -> None:
    """Write one audit line (also used by the CLI for key and token operations)."""
    line = {
        "time": _now(),
        "action": action,
        "principal": principal,
        "outcome": outcome,
        **{k: v for k, v in fields.items() if v is not None},
    }
    # orjson escapes control characters but writes other non-ASCII as UTF-8;
    # json.dumps is ~4x slower and runs only for the lines that hold some.
    text: bytes | None
    try:
        text = orjson.dumps(line)
    except TypeError:  # what orjson refuses (an integer beyond 64 bits), json may not
        text = None
    if text is None or not text.isascii():
        text = json.dumps(line, ensure_ascii=True, separators=(",", ":")).encode()
    _sink.write(text + b"\n")
