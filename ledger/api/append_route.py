"""The append route served without FastAPI's per-request machinery:
``POST /v1/ledgers/{ledger}/events`` goes straight to its endpoint.

Appends are the one hot route. Everything FastAPI does per request costs
more than parts of the append itself: its native-telemetry check (which
reads the environment on every request), Starlette's middleware stack
(server-error, telemetry, body-limit, audit and exception middlewares,
each a coroutine and a wrapped ``send``), routing through every route's
pattern and dependency resolution. So ``LedgerApp`` hands exactly the
requests the router would send to ``append_events`` to this lane before any
of that, and everything else to FastAPI.

The lane does itself what the stack would have done for these requests:
``LedgerError`` becomes its problem document (``ledger.api.problems``), any
other exception the same 500 problem the app's handler gives, and every
outcome gets its audit line (``ledger.api.request_log``). The route stays
declared in the router, so OpenAPI documents it, and with the lane off
(``LedgerApp.lane = None``) the router serves it the same way:
``tests/api/test_append_route.py`` holds the two to identical answers.
"""

from __future__ import annotations

import logging
import re

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from ledger.api.problems import internal_error_response, ledger_error_response
from ledger.api.request_log import log_request
from ledger.api.routes.events import append_events
from ledger.core.errors import LedgerError

__all__ = ["AppendLane", "append_ledger"]

log = logging.getLogger("ledger.api")

# The route's path, ``/v1/ledgers/{ledger}/events``: Starlette's default
# ``{name}`` converter matches one non-empty segment.
_APPEND_PATH = re.compile(r"\A/v1/ledgers/([^/]+)/events\Z")


def append_ledger(scope: Scope) -> str | None:
    """The ledger named by an append request, or None for every other request."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
        return None
    match = _APPEND_PATH.match(scope["path"])
    return match.group(1) if match is not None else None


class AppendLane:
    """Serves one append request (``append_ledger`` said it is one)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send, ledger: str) -> None:
        scope["path_params"] = {"ledger": ledger}
        request = Request(scope, receive)
        status = 500  # what the audit line says if the answer never goes out
        try:
            try:
                response = await append_events(request)
            except LedgerError as error:
                response = ledger_error_response(request, error)
            except Exception:
                log.exception("unhandled error on %s %s", scope["method"], scope["path"])
                response = internal_error_response(request)
            status = response.status_code
            await response(scope, receive, send)
        finally:
            log_request(scope, status)
