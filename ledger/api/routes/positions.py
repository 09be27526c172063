"""Positions (format §6): who held which position when, as the ledger knew it when."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from ledger.api.deps import ServiceDep
from ledger.api.openapi import PROBLEMS
from ledger.api.routes.log import json_response

router = APIRouter(prefix="/v1/ledgers/{ledger}", tags=["positions"])

# Documented formats; the service parses them (ledger.core.times) and answers 422.
_DATE_OR_TIME: list[dict[str, object]] = [
    {"type": "string", "format": "date"},
    {"type": "string", "format": "date-time"},
]
_TIME_SCHEMA: dict[str, object] = {"anyOf": _DATE_OR_TIME}
_SEQ_OR_TIME_SCHEMA: dict[str, object] = {
    "anyOf": [{"type": "string", "pattern": "^[0-9]+$"}, *_DATE_OR_TIME]
}

# common.json's $defs/party and $defs/topic: a text that is no code is refused
# (422) rather than looked up (PostgreSQL text cannot even hold a NUL byte).
PARTY_CODE = "^[A-Z][A-Z0-9-]{0,31}$"
TOPIC_CODE = "^[a-z0-9][a-z0-9-]{0,62}$"

AsOf = Annotated[
    str | None,
    Query(
        description="Valid time: RFC 3339 with an offset, or a date (its end); default: no bound",
        examples=["2025-02-24"],
        min_length=1,
        json_schema_extra=_TIME_SCHEMA,
    ),
]
KnownAt = Annotated[
    str | None,
    Query(
        description="Transaction time: a seq, or a time meaning the last record recorded by "
        "then; default: the head. The response states the seq.",
        examples=["23"],
        min_length=1,
        json_schema_extra=_SEQ_OR_TIME_SCHEMA,
    ),
]


@router.get(
    "/snapshot",
    summary="Signed snapshot of every party's positions",
    description=(
        "format §6: `{ledger, as_of?, known_at, tree_size, merkle_root, state, claims, "
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


@router.get(
    "/parties/{party}",
    summary="One party's positions, and the claims others make about it",
    responses={
        200: {"content": {"application/json": {"schema": {"type": "object"}}}},
        **PROBLEMS(404, 422),
    },
)
def get_party(
    service: ServiceDep,
    ledger: Annotated[str, Path(description="Ledger name")],
    party: Annotated[str, Path(description="Party code, e.g. US", pattern=PARTY_CODE)],
    as_of: AsOf = None,
    known_at: KnownAt = None,
) -> Response:
    return json_response(service.party(ledger, party, as_of=as_of, known_at=known_at))


@router.get(
    "/history",
    summary="Every stance change in valid-time order, with its corrections and retractions",
    responses={
        200: {"content": {"application/json": {"schema": {"type": "object"}}}},
        **PROBLEMS(404, 422),
    },
)
def get_history(
    service: ServiceDep,
    ledger: Annotated[str, Path(description="Ledger name")],
    party: Annotated[str | None, Query(description="Only this party", pattern=PARTY_CODE)] = None,
    topic: Annotated[str | None, Query(description="Only this topic", pattern=TOPIC_CODE)] = None,
    known_at: KnownAt = None,
) -> Response:
    return json_response(service.history(ledger, party=party, topic=topic, known_at=known_at))


@router.get(
    "/diff",
    summary="Per party and topic, the position as of `from` and as of `to`",
    responses={
        200: {"content": {"application/json": {"schema": {"type": "object"}}}},
        **PROBLEMS(404, 422),
    },
)
def get_diff(
    service: ServiceDep,
    ledger: Annotated[str, Path(description="Ledger name")],
    from_: Annotated[
        str,
        Query(
            alias="from",
            min_length=1,
            description="Earlier as_of (time or date)",
            json_schema_extra=_TIME_SCHEMA,
        ),
    ],
    to: Annotated[
        str,
        Query(
            min_length=1, description="Later as_of (time or date)", json_schema_extra=_TIME_SCHEMA
        ),
    ],
    known_at: KnownAt = None,
) -> Response:
    return json_response(service.diff(ledger, from_=from_, to=to, known_at=known_at))
