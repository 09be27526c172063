"""Export bundles (format §4): one streamed POSIX tar per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse

from ledger.api.deps import ServiceDep
from ledger.api.openapi import PROBLEMS
from ledger.exporter import bundle_chunks, bundle_filename

router = APIRouter(prefix="/v1/ledgers/{ledger}", tags=["verifiable log"])

TAR = "application/x-tar"
MAX_SEQ = 2**53 - 1


@router.get(
    "/export",
    response_class=StreamingResponse,
    summary="Export bundle: records, signed manifest and checkpoint in one tar",
    description=(
        "A POSIX tar holding, in order, `manifest.json`, `manifest.sig`, `records.jsonl`, "
        "`checkpoint` and `public_key.pem` (format §4), then, when a quorum of the ledger's "
        "witnesses cosigned a checkpoint at or below its size, `witnessed` and "
        "`witnessed.proof` (format §4.1), then the timestamp members (format §8), then "
        "`documents/<sha256>` for each source document the records cite (format §4.2; "
        "`documents=false` lists them in the manifest but leaves their bytes out), for "
        "records `from_seq..to_seq` (default: the whole ledger). The range is checked "
        "before the stream starts, so errors are problem documents; the manifest's "
        "signature can be checked with "
        "`openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin -in manifest.json "
        "-sigfile manifest.sig`."
    ),
    responses={
        200: {
            "description": "The bundle",
            "content": {TAR: {"schema": {"type": "string", "format": "binary"}}},
        },
        **PROBLEMS(404, 422, 503),
    },
)
def export_bundle(
    request: Request,
    service: ServiceDep,
    ledger: Annotated[str, Path(description="Ledger name")],
    from_seq: Annotated[
        int | None, Query(ge=1, le=MAX_SEQ, description="First record; default 1")
    ] = None,
    to_seq: Annotated[
        int | None, Query(ge=1, le=MAX_SEQ, description="Last record; default the head")
    ] = None,
    documents: Annotated[
        bool,
        Query(description="false: the source documents are listed, their bytes left out"),
    ] = True,
) -> StreamingResponse:
    # A sync handler: the hashing pass reads every record, off the event loop.
    manifest, chunks = bundle_chunks(
        service,
        ledger,
        from_seq=from_seq,
        to_seq=to_seq,
        witnessed=request.app.state.witnessed,
        with_documents=documents,
    )
    return StreamingResponse(
        chunks,
        media_type=TAR,
        headers={"Content-Disposition": f'attachment; filename="{bundle_filename(manifest)}"'},
    )
