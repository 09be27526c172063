"""Source documents (docs/documents.md): the bytes a record's ``source.document``
names by their SHA-256, uploaded with the ledger's append scope and served
so that an archived page never runs in the ledger's origin."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Annotated, Any, BinaryIO, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from ledger.api.auth import LedgerReader
from ledger.api.body import spool_body
from ledger.api.deps import ServiceDep, SettingsDep
from ledger.api.openapi import PROBLEMS
from ledger.core.documents import (
    ACCEPTED,
    LEADING_BYTES,
    DocumentInfo,
    check_leading_bytes,
    media_type_of,
    serving_headers,
)
from ledger.core.errors import InvalidDocument
from ledger.store.documents import PART_BYTES

router = APIRouter(prefix="/v1/ledgers/{ledger}", tags=["documents"])

LedgerName = Annotated[str, Path(description="Ledger name")]
_JSON = "application/json"
_DOCUMENT = {
    "type": "object",
    "required": ["sha256", "size", "media_type"],
    "properties": {
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "size": {"type": "integer", "minimum": 1},
        "media_type": {"type": "string"},
    },
}


def _parts(spool: BinaryIO) -> Iterator[bytes]:
    spool.seek(0)
    while part := spool.read(PART_BYTES):
        yield part


@router.post(
    "/documents",
    status_code=status.HTTP_201_CREATED,
    summary="Upload a source document (append scope): held under its SHA-256",
    description="The body is the document's bytes, sent with its media type: "
    f"{', '.join(ACCEPTED)} (others get 415). 201 when new, 200 when the ledger "
    "already holds the same bytes. A record cites it as `source.document`.",
    responses={
        200: {"description": "Already held", "content": {_JSON: {"schema": _DOCUMENT}}},
        201: {"description": "Stored", "content": {_JSON: {"schema": _DOCUMENT}}},
        **PROBLEMS(403, 404, 408, 409, 413, 415, 422),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary", "minLength": 1}}
                for media_type in ACCEPTED
            },
        }
    },
)
async def upload_document(
    request: Request,
    principal: LedgerReader,
    service: ServiceDep,
    settings: SettingsDep,
    ledger: LedgerName,
) -> Response:
    # Refused before a byte of the body is read: the caller, then the type.
    principal.require_append(ledger, [])
    media_type = media_type_of(request.headers.get("content-type"))
    with tempfile.TemporaryFile(dir=settings.data_dir, prefix="upload-") as spool:
        body = await spool_body(
            request,
            spool,
            max_bytes=settings.max_document_bytes,
            timeout=settings.document_timeout,
            head_bytes=LEADING_BYTES,
        )
        if body.size == 0:
            raise InvalidDocument("a document holds at least one byte", field="(body)")
        check_leading_bytes(media_type, body.head)
        sent = DocumentInfo(sha256=body.sha256, size=body.size, media_type=media_type)
        info, created = await run_in_threadpool(service.put_document, ledger, sent, _parts(spool))
    return JSONResponse(
        info.to_dict(),
        status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        headers={"Location": f"/v1/ledgers/{ledger}/documents/{info.sha256}"},
    )


@router.get(
    "/documents",
    summary="Every document the ledger holds, by hash",
    responses={
        200: {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"items": {"type": "array", "items": _DOCUMENT}},
                    }
                }
            }
        },
        **PROBLEMS(404),
    },
)
def list_documents(service: ServiceDep, ledger: LedgerName) -> dict[str, Any]:
    return {"items": [info.to_dict() for info in service.documents(ledger)]}


@router.get(
    "/documents/{sha256}",
    response_class=Response,
    summary="A source document's exact bytes",
    description="Served with its media type, `ETag` = its hash and immutable caching. "
    "Nothing it holds runs: `Content-Security-Policy: sandbox` and no loads from "
    "anywhere (but PDFs, which browsers show outside the page), "
    "`X-Content-Type-Options: nosniff`, and HTML or a message comes as a download "
    "unless `view=sandboxed` asks to see it (still in the sandbox).",
    responses={
        200: {"content": {t: {"schema": {"type": "string", "format": "binary"}} for t in ACCEPTED}},
        304: {"description": "The reader's copy (If-None-Match) is this document"},
        **PROBLEMS(404, 422),
    },
)
async def get_document(
    request: Request,
    service: ServiceDep,
    ledger: LedgerName,
    sha256: Annotated[
        str,
        Path(description="The document's SHA-256, lower-case hex", pattern="^[0-9a-f]{64}$"),
    ],
    view: Annotated[
        Literal["sandboxed"] | None,
        Query(description="`sandboxed`: show an HTML page or a message, in the sandbox"),
    ] = None,
) -> Response:
    info = await run_in_threadpool(service.document, ledger, sha256)
    public = request.app.state.ledger_visibility.get(ledger, False)
    headers = serving_headers(info, view=view is not None, private=not public)
    if _matches(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    parts = await run_in_threadpool(service.document_bytes, ledger, sha256)
    # Set here, not as ``media_type``: Starlette would add a charset to a text
    # type sent without one, and the bytes are in whatever charset they are.
    headers["Content-Type"] = info.media_type
    headers["Content-Length"] = str(info.size)
    return StreamingResponse(parts, headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: ``*`` or any listed tag, weak or strong, equal to ``etag``."""
    if if_none_match is None:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags
