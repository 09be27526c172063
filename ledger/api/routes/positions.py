"""Positions (SPEC §6): who held which position when, as the ledger knew it when."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from ledger.api.deps import ServiceDep
from ledger.api.openapi import PROBLEMS
from ledger.api.routes.log import json_response

router = APIRouter(prefix="/v1/ledgers/{ledger}", tags=["positions"])

AsOf = Annotated[
    str | None,
    Query(
        description="Valid time: RFC 3339 with an offset, or a date (its end); default: no bound",
        examples=["2025-02-24"],
    ),
]
KnownAt = Annotated[
    str | None,
    Query(
        description="Transaction time: a seq, or a time meaning the last record recorded by "
        "then; default: the head. The response states the seq.",
        examples=["23"],
    ),
]


@router.get(
    "/snapshot",
    summary="Signed snapshot of every party's positions",
    description=(
        "SPEC §6: `{ledger, as_of?, known_at, tree_size, merkle_root, state, claims, "
        "state_hash, key_id, signature}`. `state` maps party -> topic -> position; "
        "`claims` maps party -> topic -> claimant -> what the claimant says the position is."
    ),
    responses={
        200: {"content": {"application/json": {"schema": {"type": "object"}}}},
        **PROBLEMS(404, 422),
    },
)
def get_snapshot(
    service: ServiceDep,
    ledger: Annotated[str, Path(description="Ledger name")],
    as_of: AsOf = None,
    known_at: KnownAt = None,
) -> Response:
    return json_response(service.snapshot(ledger, as_of=as_of, known_at=known_at))
