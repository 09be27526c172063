"""Events: append (one or a batch), page, stream, fetch one, head."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from ledger.access import Principal
from ledger.api.auth import caller, ledger_reader
from ledger.api.body import read_json_body
from ledger.api.deps import ServiceDep
from ledger.api.models import EventPage, Head, ReceiptOut
from ledger.api.openapi import PROBLEMS, append_request_body
from ledger.api.routes.log import inclusion_json
from ledger.config import Settings
from ledger.core.errors import InvalidParameter
from ledger.core.records import EventDraft
from ledger.intake_workers import POOL_BODY_BYTES, IntakePool
from ledger.service import LedgerService

router = APIRouter(prefix="/v1/ledgers/{ledger}", tags=["events"])

NDJSON = "application/x-ndjson"
# seq is a JSON integer below 2^53 (format §1); larger values cannot name a record.
MAX_SEQ = 2**53 - 1
# ledger.service checks keys with the same expression.
_IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e][\x20-\x7e]{0,253}[\x21-\x7e]?$"
_RECEIPTS = {
    "application/json": {
        "schema": {
            "oneOf": [
                {"$ref": "#/components/schemas/ReceiptOut"},
                {"type": "array", "items": {"$ref": "#/components/schemas/ReceiptOut"}},
            ]
        }
    }
}


# Declared apart from ``router``: it authenticates inside (see ``append_events``),
# so it must not also run the router-wide ``ledger_reader`` dependency.
append_router = APIRouter(prefix="/v1/ledgers/{ledger}", tags=["events"])


_APPEND_PARAMETERS = [
    {
        "name": "ledger",
        "in": "path",
        "required": True,
        "description": "Ledger name",
        "schema": {"type": "string", "title": "Ledger"},
    },
    {
        "name": "expected_seq",
        "in": "query",
        "required": False,
        "description": "Fail with 409 unless the head is at this seq",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
    },
    {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "Makes retries safe: same key + same body = same receipts. "
        "1-255 printable ASCII characters, not starting with a space",
        "schema": {"type": "string", "pattern": _IDEMPOTENCY_KEY_PATTERN, "maxLength": 255},
    },
]


# A body without these bytes holds no author member (inside a JSON string the
# quote would be escaped).
_SIGNED = b'"author"'


def _authorize(principal: Principal, ledger: str, drafts: Sequence[EventDraft]) -> None:
    """What the token may append: its parties, and its author's signature if it is bound to one."""
    principal.require_append(ledger, [d.party for d in drafts])
    if principal.author is not None:
        principal.require_author([d.author_name for d in drafts])


@append_router.post(
    "/events",
    status_code=201,
    summary="Append one event or an atomic batch",
    description=(
        "The body is one event object or an array of at most 1000 (all or none). "
        "The server assigns seq, recorded_at, prev, actor, and id when absent. "
        "A retry with the same Idempotency-Key and body returns the original receipt(s) "
        "with 200."
    ),
    responses={
        201: {
            "description": "Appended: a receipt, or a list of receipts for a batch",
            "content": _RECEIPTS,
        },
        200: {
            "description": "Replay of an earlier append with the same Idempotency-Key: "
            "the original receipt(s)",
            "content": _RECEIPTS,
        },
        **PROBLEMS(400, 401, 403, 404, 408, 409, 413, 415, 422, 429, 503),
    },
    openapi_extra={"parameters": _APPEND_PARAMETERS, "requestBody": append_request_body()},
)
async def append_events(request: Request) -> Response:
    """The one append endpoint, reached through ``ledger.api.append_route``.

    It reads its parameters itself rather than through FastAPI's dependency
    injection, which costs more per request than the append itself (the
    OpenAPI parameters above document what it reads).
    """
    ledger = str(request.path_params["ledger"])
    principal = await ledger_reader(request, await caller(request), ledger)
    expected_seq = _expected_seq(request)
    # Refuse a caller who may append nothing before reading the body.
    principal.require_append(ledger, [])
    state = request.app.state
    settings: Settings = state.settings
    service: LedgerService = state.service
    body = await read_json_body(
        request, max_bytes=settings.max_body_bytes, timeout=settings.body_timeout
    )
    idempotency_key = request.headers.get("idempotency-key")
    parsed = None
    # Small bodies are validated on the event loop; larger ones (a 500-event
    # batch is ~250 KB) in the intake worker process when there is one, else
    # in a thread, so one huge batch does not hold up every other request.
    inline = len(body) <= POOL_BODY_BYTES
    pool: IntakePool | None = getattr(state, "intake_pool", None)
    if not inline and pool is not None:
        # Signatures in a large body are verified in the worker too, against
        # the desks registered now (the recorder holds the key to what it is
        # under the ledger's lock, and verifies again only if it changed).
        authors = await run_in_threadpool(service.author_keys, ledger) if _SIGNED in body else None
        parsed = await pool.parse(
            body, with_sha256=idempotency_key is not None, ledger=ledger, authors=authors
        )
    prepare = functools.partial(
        service.prepare_append,
        ledger,
        body,
        actor=principal.name,
        idempotency_key=idempotency_key,
        expected_seq=expected_seq,
        authorize=lambda drafts: _authorize(principal, ledger, drafts),
        parsed=parsed,
    )
    prepared = prepare() if inline or parsed is not None else await run_in_threadpool(prepare)
    outcome = await service.commit_append(prepared)
    result = outcome.result
    first, last = result.sealed[0][0], result.sealed[-1][0]
    request.state.audit_seq = first if first == last else f"{first}-{last}"
    headers = {}
    if not outcome.is_batch:
        headers["Location"] = f"/v1/ledgers/{ledger}/events/{first}"
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        result.receipts_json(batch=outcome.is_batch),
        status_code=200 if result.replayed else 201,
        headers=headers,
        media_type="application/json",
    )


def _expected_seq(request: Request) -> int | None:
    """The ``expected_seq`` query parameter (the last, if repeated, as FastAPI reads it)."""
    if not request.scope["query_string"]:
        return None
    values = request.query_params.getlist("expected_seq")
    if not values:
        return None
    text = values[-1]
    if not (text.isascii() and text.isdigit()):
        raise InvalidParameter("must be an integer >= 0", field="expected_seq")
    value = int(text)
    if value > MAX_SEQ:
        raise InvalidParameter(f"must be at most {MAX_SEQ}", field="expected_seq")
    return value


@router.get(
    "/events",
    response_model=EventPage,
    summary="Read records in seq order",
    description=(
        "A page of records after `after_seq`. With `Accept: application/x-ndjson` the "
        "response streams every record after `after_seq` up to the head, one per line."
    ),
    responses={
        200: {"content": {NDJSON: {"schema": {"type": "string"}}}},
        **PROBLEMS(404, 422),
    },
)
def list_events(
    service: ServiceDep,
    ledger: Annotated[str, Path(description="Ledger name")],
    after_seq: Annotated[
        int, Query(ge=0, le=MAX_SEQ, description="Return records with seq > this")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size")] = 100,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    if accept and NDJSON in accept:
        service.get_ledger(ledger)  # 404 before the stream starts, not inside it
        return StreamingResponse(_ndjson(service, ledger, after_seq), media_type=NDJSON)
    lines, head_seq = service.read_page(ledger, after_seq=after_seq, limit=limit)
    last = after_seq + len(lines)
    next_after = last if lines and last < head_seq else None
    # Records are stored as their canonical bytes; splice them in unchanged.
    body = b'{"items":[' + b",".join(lines) + b'],"next_after_seq":'
    body += (str(next_after) if next_after is not None else "null").encode() + b"}"
    return Response(body, media_type="application/json")


def _ndjson(service: ServiceDep, ledger: str, after_seq: int) -> Iterator[bytes]:
    batch: list[bytes] = []
    for line in service.iter_records(ledger, after_seq=after_seq):
        batch.append(line)
        if len(batch) >= 256:
            yield b"\n".join(batch) + b"\n"
            batch.clear()
    if batch:
        yield b"\n".join(batch) + b"\n"


@router.get(
    "/events/{seq}",
    # Documented by the oneOf below alone: a response_model would be AND-ed with it.
    response_model=None,
    summary="Fetch one record",
    description=(
        "The record exactly as stored (its canonical bytes). With `proof=true`: "
        "`{record, proof, checkpoint}` — the record, its inclusion proof in the tree of "
        "the latest checkpoint, and that checkpoint."
    ),
    responses={
        200: {
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/RecordOut"},
                            {"$ref": "#/components/schemas/RecordWithProof"},
                        ]
                    }
                }
            }
        },
        **PROBLEMS(404, 422),
    },
)
def get_event(
    service: ServiceDep,
    ledger: Annotated[str, Path(description="Ledger name")],
    seq: Annotated[int, Path(ge=1, le=MAX_SEQ)],
    proof: Annotated[bool, Query(description="Add the inclusion proof and checkpoint")] = False,
) -> Response:
    canonical = service.get_record(ledger, seq)
    if not proof:
        return Response(canonical, media_type="application/json")
    note = service.checkpoint(ledger)
    # Prove inclusion in exactly the tree the checkpoint signs, even if the
    # ledger grew between the two reads.
    tree_size = int(note.split("\n", 2)[1])
    inclusion = service.inclusion(ledger, seq=seq, tree_size=tree_size)
    proof_json = json.dumps(inclusion_json(inclusion)).encode()
    body = (
        b'{"record":'
        + canonical
        + b',"proof":'
        + proof_json
        + b',"checkpoint":'
        + json.dumps(note).encode()
        + b"}"
    )
    return Response(body, media_type="application/json")


@router.get("/head", response_model=Head, summary="Size and head hash", responses=PROBLEMS(404))
def get_head(
    service: ServiceDep, ledger: Annotated[str, Path(description="Ledger name")]
) -> dict[str, Any]:
    info = service.get_ledger(ledger)
    return {"size": info.size, "head_hash": info.head_hash}


__all__ = ["ReceiptOut", "append_events", "append_router", "router"]
