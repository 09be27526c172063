"""The audit log: one JSON line per append, export, ledger or key operation,
and per refused authentication.

Written by an ASGI middleware, so that every outcome is logged, the
failures included, once the status is known. Lines are ``json.dumps`` with
``ensure_ascii``: CR, LF and every control or non-ASCII character in a path
or name comes out escaped, so one request is always one line. Headers are
never logged: no token reaches the log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AuditLogMiddleware", "audit_event", "configure_audit_log"]

logger = logging.getLogger("ledger.audit")

_LEDGER_PATH = re.compile(r"\A/v1/ledgers/([^/]+)(/.*)?\Z")


def configure_audit_log(path: Path | None) -> None:
    """Send audit lines, unformatted, to ``path`` (default: standard error)."""
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    handler: logging.Handler = (
        logging.FileHandler(path, encoding="utf-8") if path else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def audit_event(action: str, *, principal: str, outcome: str, **fields: Any) -> None:
    """Log one audit line (also used by the CLI for key and token operations)."""
    line = {
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "action": action,
        "principal": principal,
        "outcome": outcome,
        **{k: v for k, v in fields.items() if v is not None},
    }
    logger.info(json.dumps(line, ensure_ascii=True, separators=(",", ":")))


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
            self._log(scope, status)

    @staticmethod
    def _log(scope: Scope, status: int) -> None:
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
            outcome="ok" if status < 400 else "refused" if status < 500 else "error",
            status=status,
            method=method,
            route=path,
            ledger=match.group(1) if match else None,
            seq=state.get("audit_seq"),
            client=client[0] if client else None,
        )
