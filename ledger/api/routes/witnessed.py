"""Witnessed checkpoints (docs/witnesses.md): the newest checkpoint a quorum of
the configured witnesses cosigned, and each witness's progress on a ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from ledger.api.deps import ServiceDep, SettingsDep
from ledger.api.openapi import PROBLEMS
from ledger.core.errors import NotFound
from ledger.core.times import format_recorded_at
from ledger.cosignature_collector import CosignatureCollector
from ledger.store.cosignatures import CosignatureStore, WitnessedReader

router = APIRouter(prefix="/v1/ledgers/{ledger}", tags=["verifiable log"])

LedgerPath = Annotated[str, Path(description="Ledger name")]


class WitnessOut(BaseModel):
    key: str = Field(description="The witness's verifier key, as configured")
    name: str = Field(description="The witness's key name")
    url: str = Field(description="Its submission prefix")
    tree_size: int = Field(description="The largest size it cosigned (0: none yet)")
    timestamp: int | None = Field(description="That cosignature's POSIX time")
    signed_at: str | None = Field(description="The same time, RFC 3339 UTC")
    lag: int = Field(description="Records of the head it has not cosigned")
    last_error: str | None = Field(description="Why the last submission failed, if it did")
    last_error_at: str | None = Field(description="When it failed")


class WitnessesOut(BaseModel):
    ledger: str
    head: int = Field(description="The ledger's size")
    quorum: int = Field(description="Cosignatures a witnessed checkpoint needs")
    witnessed_size: int | None = Field(
        description="Size of the newest checkpoint with the quorum (none: null)"
    )
    witnesses: list[WitnessOut]


def _store(request: Request) -> CosignatureStore:
    store: CosignatureStore = request.app.state.cosignatures
    return store


def _witnessed(request: Request) -> WitnessedReader:
    reader: WitnessedReader = request.app.state.witnessed
    return reader


def _collector(request: Request) -> CosignatureCollector:
    collector: CosignatureCollector = request.app.state.collector
    return collector


@router.get(
    "/checkpoint/witnessed",
    response_class=PlainTextResponse,
    summary="The newest checkpoint a quorum of witnesses cosigned, as one signed note",
    description="The ledger's checkpoint note with every configured witness's cosignature "
    "line appended (C2SP tlog-cosignature). `Ledger-Tree-Size` is its size, "
    "`Ledger-Head-Size` the ledger's; 404 when no witness is configured or no checkpoint "
    "has the quorum yet.",
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **PROBLEMS(404),
    },
)
def get_witnessed_checkpoint(
    request: Request, service: ServiceDep, settings: SettingsDep, ledger: LedgerPath
) -> PlainTextResponse:
    head = service.get_ledger(ledger).size
    if not settings.witnesses:
        raise NotFound(f"ledger {ledger!r} has no witnesses: LEDGER_WITNESSES is empty")
    quorum = settings.quorum()
    witnessed = _witnessed(request).newest(ledger)
    if witnessed is None:
        raise NotFound(
            f"no checkpoint of ledger {ledger!r} has cosignatures from {quorum} of its "
            f"{len(settings.witnesses)} witnesses yet"
        )
    return PlainTextResponse(
        witnessed.text(),
        media_type="text/plain; charset=utf-8",
        headers={"Ledger-Tree-Size": str(witnessed.tree_size), "Ledger-Head-Size": str(head)},
    )


@router.get(
    "/witnesses",
    response_model=WitnessesOut,
    summary="Each configured witness's progress on this ledger",
    description="The largest size each witness cosigned, its lag behind the head and the "
    "last error this server met submitting to it.",
    responses=PROBLEMS(404),
)
def get_witnesses(
    request: Request, service: ServiceDep, settings: SettingsDep, ledger: LedgerPath
) -> WitnessesOut:
    head = service.get_ledger(ledger).size
    store = _store(request)
    progress = store.progress(ledger, [w.key for w in settings.witnesses])
    status = _collector(request).status(ledger)
    witnessed = _witnessed(request).newest(ledger)
    items = []
    for endpoint in settings.witnesses:
        done = progress.get(endpoint.key)
        state = status.get(endpoint.key)
        size = done.tree_size if done else 0
        items.append(
            WitnessOut(
                key=endpoint.key,
                name=endpoint.verifier().name,
                url=endpoint.url,
                tree_size=size,
                timestamp=done.signed_at if done else None,
                signed_at=_rfc3339(done.signed_at) if done else None,
                lag=max(0, head - size),
                last_error=state.last_error if state else None,
                last_error_at=state.last_error_at if state else None,
            )
        )
    return WitnessesOut(
        ledger=ledger,
        head=head,
        quorum=settings.quorum(),
        witnessed_size=witnessed.tree_size if witnessed else None,
        witnesses=items,
    )


def _rfc3339(timestamp: int) -> str:
    return format_recorded_at(datetime.fromtimestamp(timestamp, UTC))
