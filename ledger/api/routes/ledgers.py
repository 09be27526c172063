"""Ledgers: create, list, describe."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

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
    responses=PROBLEMS(400, 409, 413, 415, 422),
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
    request: Request, service: ServiceDep, settings: SettingsDep
) -> dict[str, Any]:
    body = loads_strict(await read_json_body(request, max_bytes=settings.max_body_bytes))
    if not isinstance(body, dict):
        raise InvalidEvent('the body must be an object like {"name": ...}', field="(root)")
    extra = sorted(body.keys() - {"name"})
    if extra:
        raise InvalidEvent("unknown member", field=extra[0])
    if "name" not in body:
        raise InvalidEvent("is required", field="name")
    return service.create_ledger(body["name"]).to_dict()


@router.get("", response_model=LedgerList, summary="List ledgers")
def list_ledgers(service: ServiceDep) -> dict[str, Any]:
    return {"items": [info.to_dict() for info in service.list_ledgers()]}


@router.get(
    "/{ledger}", response_model=LedgerOut, summary="Describe a ledger", responses=PROBLEMS(404)
)
def get_ledger(ledger: str, service: ServiceDep) -> dict[str, Any]:
    return service.get_ledger(ledger).to_dict()
