"""Ledgers: create, list, describe."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool

from ledger.api.auth import Caller, LedgerReader
from ledger.api.body import read_json_body
from ledger.api.deps import ServiceDep, SettingsDep
from ledger.api.models import LedgerList, LedgerOut
from ledger.api.openapi import PROBLEMS
from ledger.core.errors import InvalidEvent
from ledger.core.jsonvalues import loads_strict

router = APIRouter(prefix="/v1/ledgers", tags=["ledgers"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=LedgerOut,
    summary="Create a ledger",
    responses=PROBLEMS(400, 401, 403, 408, 409, 413, 415, 422, 429),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/LedgerCreate"}}
            },
        }
    },
)
async def create_ledger(
    request: Request, principal: Caller, service: ServiceDep, settings: SettingsDep
) -> dict[str, Any]:
    principal.require_admin("create ledgers")
    raw = await read_json_body(
        request, max_bytes=settings.max_body_bytes, timeout=settings.body_timeout
    )
    body = loads_strict(raw)
    if not isinstance(body, dict):
        raise InvalidEvent('the body must be an object like {"name": ...}', field="(root)")
    extra = sorted(body.keys() - {"name", "public_read", "title", "description"})
    if extra:
        raise InvalidEvent("unknown member", field=extra[0])
    if "name" not in body:
        raise InvalidEvent("is required", field="name")
    request.state.ledger = body["name"] if isinstance(body["name"], str) else None
    info = await run_in_threadpool(
        functools.partial(
            service.create_ledger,
            body["name"],
            public_read=body.get("public_read", True),
            title=body.get("title"),
            description=body.get("description"),
        )
    )
    return info.to_dict()


@router.get(
    "",
    response_model=LedgerList,
    summary="List the ledgers this caller may read",
    responses=PROBLEMS(401, 429),
)
def list_ledgers(principal: Caller, service: ServiceDep) -> dict[str, Any]:
    return {
        "items": [
            info.to_dict()
            for info in service.list_ledgers()
            if principal.may_read(info.name, public_read=info.public_read)
        ]
    }


@router.get(
    "/{ledger}",
    response_model=LedgerOut,
    summary="Describe a ledger",
    responses=PROBLEMS(401, 403, 404, 429),
)
def get_ledger(ledger: str, principal: LedgerReader, service: ServiceDep) -> dict[str, Any]:
    return service.get_ledger(ledger).to_dict()
