"""The verifiable log: checkpoints and Merkle proofs (format §2-3)."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import PlainTextResponse

from ledger.api.deps import ServiceDep
from ledger.api.models import ConsistencyProofOut, InclusionProofOut
from ledger.api.openapi import PROBLEMS
from ledger.store.proofs import InclusionProof

router = APIRouter(prefix="/v1/ledgers/{ledger}", tags=["verifiable log"])

LedgerPath = Annotated[str, Path(description="Ledger name")]
MAX_SEQ = 2**53 - 1


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def json_response(content: dict[str, Any]) -> Response:
    # Returning a Response skips re-validating what we just built against the
    # response model (which still documents it): proofs are a hot path.
    return Response(json.dumps(content, separators=(",", ":")), media_type="application/json")


def inclusion_json(proof: InclusionProof) -> dict[str, Any]:
    return {
        "seq": proof.seq,
        "tree_size": proof.tree_size,
        "leaf_index": proof.leaf_index,
        "proof": [b64(h) for h in proof.proof],
        "root": b64(proof.root),
    }


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    summary="The signed checkpoint (C2SP tlog-checkpoint note)",
    description="The latest, or with `size` the one of that tree size (signed on demand "
    "when none was stored at exactly that size).",
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **PROBLEMS(404, 422),
    },
)
def get_checkpoint(
    service: ServiceDep,
    ledger: LedgerPath,
    size: Annotated[int | None, Query(ge=0, le=MAX_SEQ, description="Tree size")] = None,
) -> PlainTextResponse:
    note = service.checkpoint(ledger, size=size)
    return PlainTextResponse(note, media_type="text/plain; charset=utf-8")


@router.get(
    "/proofs/inclusion",
    response_model=InclusionProofOut,
    summary="RFC 9162 inclusion proof of a record in a tree size",
    responses=PROBLEMS(404, 422),
)
def get_inclusion_proof(
    service: ServiceDep,
    ledger: LedgerPath,
    seq: Annotated[int, Query(ge=1, le=MAX_SEQ, description="The record")],
    tree_size: Annotated[
        int | None, Query(ge=1, le=MAX_SEQ, description="Default: the head")
    ] = None,
) -> Response:
    proof = service.inclusion(ledger, seq=seq, tree_size=tree_size)
    return json_response(inclusion_json(proof))


@router.get(
    "/proofs/consistency",
    response_model=ConsistencyProofOut,
    response_model_by_alias=True,
    summary="RFC 9162 consistency proof between two tree sizes",
    responses=PROBLEMS(404, 422),
)
def get_consistency_proof(
    service: ServiceDep,
    ledger: LedgerPath,
    size1: Annotated[int, Query(alias="from", ge=1, le=MAX_SEQ, description="Older size")],
    size2: Annotated[
        int | None, Query(alias="to", ge=1, le=MAX_SEQ, description="Newer size; default head")
    ] = None,
) -> Response:
    proof = service.consistency(ledger, size1=size1, size2=size2)
    return json_response(
        {
            "from": proof.size1,
            "to": proof.size2,
            "proof": [b64(h) for h in proof.proof],
            "root1": b64(proof.root1),
            "root2": b64(proof.root2),
        }
    )
