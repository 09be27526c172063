"""RFC 3161 timestamps of checkpoints (format §8, docs/timestamps.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from ledger.api.deps import ServiceDep
from ledger.api.openapi import PROBLEMS
from ledger.core.timestamps import REPLY_MEDIA_TYPE

router = APIRouter(prefix="/v1/ledgers/{ledger}", tags=["verifiable log"])

LedgerPath = Annotated[str, Path(description="Ledger name")]
MAX_SEQ = 2**53 - 1

_HEADERS = {
    "Ledger-Tree-Size": {
        "description": "The tree size of the checkpoint whose body the token covers",
        "schema": {"type": "integer"},
    },
    "Ledger-Attested-At": {
        "description": "The token's genTime, RFC 3339 UTC",
        "schema": {"type": "string"},
    },
    "Ledger-Timestamp-Authority": {
        "description": "The URL of the authority the token came from",
        "schema": {"type": "string"},
    },
}


@router.get(
    "/checkpoint/timestamp",
    response_class=Response,
    summary="The RFC 3161 timestamp of a checkpoint",
    description="The time-stamping authority's whole TimeStampResp (DER) over the note body "
    "of a checkpoint: of tree size `size` exactly; else the newest timestamped one at or "
    "below `at_most`; else the newest of all. 404 when there is none (no authority is "
    "configured, or it has not answered yet).",
    responses={
        200: {
            "content": {REPLY_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
            "headers": _HEADERS,
        },
        **PROBLEMS(404, 422),
    },
)
def get_checkpoint_timestamp(
    service: ServiceDep,
    ledger: LedgerPath,
    size: Annotated[
        int | None, Query(ge=1, le=MAX_SEQ, description="Exactly this tree size")
    ] = None,
    at_most: Annotated[
        int | None,
        Query(ge=1, le=MAX_SEQ, description="The largest timestamped tree size up to this one"),
    ] = None,
) -> Response:
    found = service.checkpoint_timestamp(ledger, size=size, at_most=at_most)
    return Response(
        found.response,
        media_type=REPLY_MEDIA_TYPE,
        headers={
            "Ledger-Tree-Size": str(found.tree_size),
            "Ledger-Attested-At": found.attested_at,
            "Ledger-Timestamp-Authority": found.authority,
        },
    )
