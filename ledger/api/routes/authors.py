"""Authors (format §1.4, docs/authors.md): the desks whose signatures a ledger accepts.

Registering and revoking write ``author.registered`` and ``author.revoked``
records through the service, so the log itself carries its registry.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, status
from fastapi.concurrency import run_in_threadpool

from ledger.api.auth import LedgerReader
from ledger.api.body import read_json_body
from ledger.api.deps import ServiceDep, SettingsDep
from ledger.api.models import AuthorChange, AuthorCreate, AuthorList, AuthorRevoke
from ledger.api.openapi import PROBLEMS
from ledger.core.errors import InvalidEvent, NotFound
from ledger.core.jsonvalues import loads_strict
from ledger.service import AuthorEntry, LedgerService
from ledger.store.tokens import TokenStore

router = APIRouter(prefix="/v1/ledgers/{ledger}", tags=["authors"])

LedgerName = Annotated[str, Path(description="Ledger name")]


def _body_object(raw: bytes, allowed: set[str], required: set[str]) -> dict[str, Any]:
    body = loads_strict(raw) if raw.strip() else {}
    if not isinstance(body, dict):
        raise InvalidEvent("the body must be a JSON object", field="(root)")
    for name in sorted(body.keys() - allowed):
        raise InvalidEvent(f"unknown member; allowed: {', '.join(sorted(allowed))}", field=name)
    for name in sorted(required - body.keys()):
        raise InvalidEvent("is required", field=name)
    for name, value in body.items():
        if not isinstance(value, str) and (value is not None or name in required):
            raise InvalidEvent("must be a string", field=name)
    return body


def _entry(service: LedgerService, ledger: str, name: str) -> AuthorEntry:
    for entry in service.authors(ledger):
        if entry.name == name:
            return entry
    raise NotFound(f"ledger {ledger!r} has no author named {name!r}")


@router.get(
    "/authors",
    response_model=AuthorList,
    summary="The desks the ledger registered, with their keys and status",
    responses=PROBLEMS(404),
)
def list_authors(service: ServiceDep, ledger: LedgerName) -> dict[str, Any]:
    return {"items": [entry.to_dict() for entry in service.authors(ledger)]}


@router.post(
    "/authors",
    status_code=status.HTTP_201_CREATED,
    response_model=AuthorChange,
    summary="Register a desk's key (admin): an author.registered record",
    responses=PROBLEMS(400, 403, 404, 408, 409, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/AuthorCreate"}}
            },
        }
    },
)
async def register_author(
    request: Request,
    principal: LedgerReader,
    service: ServiceDep,
    settings: SettingsDep,
    ledger: LedgerName,
) -> dict[str, Any]:
    principal.require_admin("register authors")
    raw = await read_json_body(
        request, max_bytes=settings.max_body_bytes, timeout=settings.body_timeout
    )
    body = _body_object(raw, set(AuthorCreate.model_fields), {"name", "verifier_key"})
    tokens: TokenStore = request.app.state.tokens
    token = body.get("token")

    def register() -> dict[str, Any]:
        # Checked before the record is written, so an unknown token binds nothing half-way.
        if token is not None and token not in {info.name for info in tokens.list()}:
            raise InvalidEvent(f"no token named {token!r}", field="token")
        receipt = service.register_author(
            ledger, name=body["name"], verifier_key=body["verifier_key"], actor=principal.name
        )
        if token is not None:
            tokens.bind_author(token, body["name"])
        return {
            "receipt": receipt.to_dict(),
            "author": _entry(service, ledger, body["name"]).to_dict(),
        }

    return await run_in_threadpool(register)


@router.delete(
    "/authors/{name}",
    response_model=AuthorChange,
    summary="Revoke a desk's key (admin): an author.revoked record",
    responses=PROBLEMS(400, 403, 404, 408, 409, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/AuthorRevoke"}}
            },
        }
    },
)
async def revoke_author(
    request: Request,
    principal: LedgerReader,
    service: ServiceDep,
    settings: SettingsDep,
    ledger: LedgerName,
    name: Annotated[str, Path(description="The desk's name", examples=["ua-desk"])],
) -> dict[str, Any]:
    principal.require_admin("revoke authors")
    headers = request.headers
    # The body (a reason) is optional: a DELETE without one needs no Content-Type.
    bodiless = headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers
    raw = (
        b""
        if bodiless
        else await read_json_body(
            request, max_bytes=settings.max_body_bytes, timeout=settings.body_timeout
        )
    )
    body = _body_object(raw, set(AuthorRevoke.model_fields), set())
    revoke = functools.partial(
        service.revoke_author, ledger, name=name, actor=principal.name, reason=body.get("reason")
    )
    receipt = await run_in_threadpool(revoke)
    return {"receipt": receipt.to_dict(), "author": _entry(service, ledger, name).to_dict()}
