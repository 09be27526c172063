"""RFC 9457 problem details: the one place errors become HTTP responses.

Every error body is ``application/problem+json`` with ``type``, ``title``,
``status`` and ``detail``, plus ``field`` (a dotted path such as
``[2].data.stance``) when one input is at fault.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ledger.api.request_log import CLIENT_CLOSED
from ledger.core import errors
from ledger.core.jsonvalues import format_path

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "install_problem_handlers",
    "internal_error_response",
    "ledger_error_response",
    "problem_bytes",
    "problem_response",
    "status_for",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("ledger.api")

# Most specific class first: the first isinstance match wins.
_STATUS: list[tuple[type[errors.LedgerError], int, str]] = [
    (errors.MalformedJSON, 400, "malformed-json"),
    (errors.UnsupportedMediaType, 415, "unsupported-media-type"),
    (errors.BodyTooLarge, 413, "body-too-large"),
    (errors.InvalidEvent, 422, "invalid-event"),
    (errors.InvalidParameter, 422, "invalid-parameter"),
    (errors.InvalidDocument, 422, "invalid-document"),
    (errors.InputError, 422, "invalid-input"),
    (errors.Unauthenticated, 401, "unauthenticated"),
    (errors.Forbidden, 403, "forbidden"),
    (errors.RateLimited, 429, "rate-limited"),
    (errors.RequestTimeout, 408, "request-timeout"),
    # nginx's "client closed request": no one reads the answer, the audit line does.
    (errors.ClientDisconnected, CLIENT_CLOSED, "client-disconnected"),
    (errors.NotFound, 404, "not-found"),
    (errors.LedgerExists, 409, "ledger-exists"),
    (errors.DuplicateEventId, 409, "duplicate-event-id"),
    (errors.HeadMismatch, 409, "head-mismatch"),
    (errors.IdempotencyInFlight, 409, "idempotency-in-flight"),
    (errors.Conflict, 409, "conflict"),
    (errors.IdempotencyKeyReused, 422, "idempotency-key-reused"),
    (errors.StorageUnavailable, 503, "storage-unavailable"),
    (errors.ServerBusy, 503, "server-busy"),
    (errors.IntegrityAlarm, 503, "integrity-alarm"),
    (errors.VerificationError, 500, "verification-failed"),
]


# As on the HTML pages: a browser must not take a problem document for another type.
_HEADERS = {"X-Content-Type-Options": "nosniff"}


def _without_lone_surrogates(value: Any) -> Any:
    """``value`` with each lone surrogate in its strings written as ``\\udXXX`` text."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    return value


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            # Some text of the request, repeated in the problem, holds a lone
            # surrogate, which has no UTF-8 form: refuse the request all the same.
            return super().render(_without_lone_surrogates(content))


def status_for(error: errors.LedgerError) -> tuple[int, str]:
    for kind, status, slug in _STATUS:
        if isinstance(error, kind):
            return status, slug
    return 500, "internal-error"


def problem_bytes(error: errors.LedgerError) -> tuple[int, bytes]:
    """``error``'s status and problem document, for answers the server writes
    itself, outside the app: to a connection over the cap, or one whose request
    head never arrived whole."""
    status, slug = status_for(error)
    body = {"type": f"/problems/{slug}", "title": error.title, "status": status}
    return status, json.dumps({**body, "detail": error.detail}).encode()


def problem_response(
    status: int,
    *,
    slug: str,
    title: str,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> ProblemResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    return ProblemResponse(body, status_code=status, headers={**(headers or {}), **_HEADERS})


def ledger_error_response(request: Request, error: errors.LedgerError) -> ProblemResponse:
    status, slug = status_for(error)
    # An integrity alarm lasts until an operator acts: no retry time to promise.
    transient = status == 503 and not isinstance(error, errors.IntegrityAlarm)
    headers = {"Retry-After": "1"} if transient else None
    if isinstance(error, errors.RateLimited | errors.ServerBusy):
        headers = {"Retry-After": str(error.retry_after)}
    elif isinstance(error, errors.Unauthenticated):
        headers = {"WWW-Authenticate": 'Bearer realm="ledger"'}
    extra: dict[str, Any] = {}
    field = getattr(error, "field", None)
    if field:
        extra["field"] = field
    if isinstance(error, errors.HeadMismatch):
        extra.update(expected_seq=error.expected_seq, head_seq=error.head_seq)
    if isinstance(error, errors.VerificationError) and error.seq is not None:
        extra["seq"] = error.seq
    if isinstance(error, errors.ClientDisconnected):
        log.info("client disconnected: %s %s: %s", request.method, request.url.path, error)
    elif status >= 500:
        log.error("request failed: %s %s: %r", request.method, request.url.path, error)
    return problem_response(
        status,
        slug=slug,
        title=error.title,
        detail=error.detail if not field else f"{field}: {error.detail}",
        instance=request.url.path,
        headers=headers,
        **extra,
    )


def internal_error_response(request: Request) -> ProblemResponse:
    """The answer to an unexpected failure: no detail of it leaves the server."""
    return problem_response(
        500,
        slug="internal-error",
        title="Internal error",
        detail="the server failed; nothing was written unless a receipt was returned",
        instance=request.url.path,
    )


def _validation_field(loc: tuple[Any, ...]) -> str:
    # FastAPI locations start with where the value came from: ("query", "limit").
    parts = [p for p in loc[1:] if isinstance(p, str | int)]
    return format_path(tuple(parts)) if parts else str(loc[0] if loc else "(request)")


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (RFC 9110 §10.2.1 ``Allow``).

    Starlette names only the methods of the first route whose path matched, and
    ``GET`` and ``POST`` of one path are separate routes here: ask every route
    whether it would take each method (405s are rare; this costs no request).
    """
    allowed = []
    for method in _METHODS:
        probe = {
            "type": "http",
            "method": method,
            "path": request.scope["path"],
            "root_path": request.scope.get("root_path", ""),
            "headers": [],
        }
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


def install_problem_handlers(app: FastAPI) -> None:
    async def on_ledger_error(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, errors.LedgerError)
        return ledger_error_response(request, exc)

    async def on_validation(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, RequestValidationError)
        issues = [
            {"field": _validation_field(tuple(e.get("loc", ()))), "detail": str(e.get("msg"))}
            for e in exc.errors()
        ]
        first = issues[0] if issues else {"field": "(request)", "detail": "invalid request"}
        return problem_response(
            422,
            slug="invalid-parameter",
            title="Invalid parameter",
            detail=f"{first['field']}: {first['detail']}",
            instance=request.url.path,
            field=first["field"],
            errors=issues,
        )

    async def on_http(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, StarletteHTTPException)
        titles = {404: "Not found", 405: "Method not allowed"}
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        return problem_response(
            exc.status_code,
            slug={404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error"),
            title=titles.get(exc.status_code, "HTTP error"),
            detail=str(exc.detail),
            instance=request.url.path,
            headers=headers,
        )

    async def on_unexpected(request: Request, exc: Exception) -> ProblemResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return internal_error_response(request)

    app.add_exception_handler(errors.LedgerError, on_ledger_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
