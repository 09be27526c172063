"""The append lane: ``POST /v1/ledgers/{ledger}/events`` straight to its endpoint.

Appends are the one hot route. FastAPI's per-request machinery (routing
through every route's pattern, dependency resolution, the exception and
exit-stack middlewares) cost ~0.2 ms a request on the development machine,
against ~0.05 ms for uvicorn alone: a no-op FastAPI route answered 3,830
requests/s and a bare ASGI app 20,000. So this middleware hands exactly the
requests the router would send to ``append_events`` to that same function,
and everything else to the app. The route stays declared in the router, so
OpenAPI documents it and the router would serve it just the same without the
lane. Errors become problem documents through ``ledger.api.problems``, as on
every other route; anything unexpected propagates to the app's 500 handler.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ledger.api.problems import ledger_error_response
from ledger.api.routes.events import append_events
from ledger.core.errors import LedgerError

__all__ = ["AppendLane"]

# The route's path, ``/v1/ledgers/{ledger}/events``: Starlette's default
# ``{name}`` converter matches one non-empty segment.
_APPEND_PATH = re.compile(r"\A/v1/ledgers/([^/]+)/events\Z")


class AppendLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match = _APPEND_PATH.match(scope["path"])
            if match is not None:
                scope["path_params"] = {"ledger": match.group(1)}
                request = Request(scope, receive)
                try:
                    response = await append_events(request)
                except LedgerError as error:
                    response = ledger_error_response(request, error)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
