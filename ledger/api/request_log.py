"""The audit log's lines for HTTP requests (``ledger.audit_log`` writes them):
which requests are audited, under which action, principal and outcome.

Written by an ASGI middleware, so that every outcome is logged, the
failures included, once the status is known (the append lane, which
bypasses the middleware stack, calls ``log_request`` itself). Lines are
JSON with every control and non-ASCII character in a path or name escaped,
so one request is always one line. Headers are never logged: no token
reaches the log.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.audit_log import audit_event

__all__ = ["CLIENT_CLOSED", "AuditLogMiddleware", "log_request"]

# The status of a request whose client hung up before it was answered (as
# nginx logs it): its own outcome, neither a refusal nor a server error.
CLIENT_CLOSED = 499

_LEDGER_PATH = re.compile(r"\A/v1/ledgers/([^/]+)(/.*)?\Z")


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
