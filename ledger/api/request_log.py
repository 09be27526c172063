"""The audit log of requests (``LEDGER_AUDIT_LOG``): one JSON line per append,
export, ledger or key operation, and per refused authentication.

Not uvicorn's access log (``LEDGER_ACCESS_LOG``: a text line per request of
any kind), nor the integrity check of stored ledgers (``ledger.audit``).

Written by an ASGI middleware, so that every outcome is logged, the
failures included, once the status is known (the append lane, which
bypasses the middleware stack, calls ``log_request`` itself). Lines are
JSON with every control and non-ASCII character in a path or name escaped,
so one request is always one line. Headers are never logged: no token
reaches the log.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CLIENT_CLOSED",
    "AuditLogMiddleware",
    "audit_event",
    "configure_audit_log",
    "log_request",
]

# The status of a request whose client hung up before it was answered (as
# nginx logs it): its own outcome, neither a refusal nor a server error.
CLIENT_CLOSED = 499

_LEDGER_PATH = re.compile(r"\A/v1/ledgers/([^/]+)(/.*)?\Z")


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


def _action(method: str, path: str, status: int) -> str | None:
    match = _LEDGER_PATH.match(path)
    rest = match.group(2) if match else None
    if method == "POST" and rest == "/events":
        return "append"
    if method == "GET" and rest == "/export":
        return "export"
    if method == "POST" and path.rstrip("/") == "/v1/ledgers":
        return "ledger.create"
    if path.startswith("/v1/keys") and method != "GET":
        return "key"
    if status == 401:
        return "auth.failed"
    if status == 403:
        return "auth.denied"
    if status == 429:
        return "rate-limited"
    return None


def _outcome(status: int) -> str:
    if status < 400:
        return "ok"
    if status == CLIENT_CLOSED:
        return "disconnected"
    return "refused" if status < 500 else "error"


def log_request(scope: Scope, status: int) -> None:
    """The audit line of one answered HTTP request, if its kind is audited."""
    method, path = scope["method"], scope["path"]
    action = _action(method, path, status)
    if action is None:
        return
    state = scope.get("state") or {}
    match = _LEDGER_PATH.match(path)
    client = scope.get("client")
    audit_event(
        action,
        principal=str(state.get("principal", "unauthenticated")),
        outcome=_outcome(status),
        status=status,
        method=method,
        route=path,
        ledger=match.group(1) if match else None,
        seq=state.get("audit_seq"),
        client=client[0] if client else None,
    )


class AuditLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client sees if the app fails before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            log_request(scope, status)
