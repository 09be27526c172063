"""Sources (docs/sources.md): who reported what, as the ledger knows it at its head."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from ledger.api.deps import ServiceDep
from ledger.api.openapi import PROBLEMS
from ledger.api.routes.log import json_response
from ledger.api.sourcemodels import SourceDetail, SourceList

router = APIRouter(prefix="/v1/ledgers/{ledger}", tags=["sources"])


@router.get(
    "/sources",
    response_model=SourceList,
    summary="Every source the records cite, with the parties and topics it reported on",
    responses=PROBLEMS(404),
)
def get_sources(
    service: ServiceDep, ledger: Annotated[str, Path(description="Ledger name")]
) -> Response:
    return json_response(service.sources(ledger))


@router.get(
    # ``:path``: a name may hold "/", sent as %2F.
    "/sources/{name:path}",
    response_model=SourceDetail,
    summary="One source and every record that cites it, corrections and retractions flagged",
    responses=PROBLEMS(404),
)
def get_source(
    service: ServiceDep,
    ledger: Annotated[str, Path(description="Ledger name")],
    name: Annotated[str, Path(description="`source.name`, exactly, URL-encoded", examples=["CNN"])],
) -> Response:
    return json_response(service.source(ledger, name))
