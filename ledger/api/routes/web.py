"""The timeline web pages: HTML for people, outside the JSON API (and its OpenAPI).

Pages render from the service on the server, so they are readable without
JavaScript; ``static/timeline.js`` then re-renders the grid from ``/snapshot``,
follows the live stream, and verifies what is shown in the reader's browser.
Pages show only what the caller may read: anonymous visitors see public ledgers.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from ledger.access import Principal
from ledger.api.auth import Caller
from ledger.api.deps import ServiceDep, SettingsDep
from ledger.config import Settings
from ledger.core.errors import (
    Forbidden,
    InputError,
    InvalidParameter,
    LedgerError,
    NotFound,
    Unauthenticated,
)
from ledger.service import LedgerService
from ledger.store.recorder import LedgerInfo
from ledger.web import views

__all__ = ["router", "static_files"]

router = APIRouter(include_in_schema=False)

_WEB = FilePath(views.__file__).parent
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_WEB / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals.update(stance_style=views.stance_style, safe_url=views.safe_url)

# The pages load nothing but their own script and style: an injected <script>
# that escaped escaping would still not run.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
MAX_SEQ = 2**53 - 1
RECENT = 10


def static_files() -> StaticFiles:
    return StaticFiles(directory=_WEB / "static")


def _page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=_HEADERS)


def _error_page(error: LedgerError, ledger: str | None = None) -> HTMLResponse:
    if isinstance(error, Unauthenticated | Forbidden):
        status = 401 if isinstance(error, Unauthenticated) else 403
        message = (
            "This ledger is not public. These pages show only what anyone may read; "
            "use the API with a bearer token that may read it."
        )
    elif isinstance(error, NotFound):
        status, message = 404, error.detail
    elif isinstance(error, InputError):
        field = getattr(error, "field", None)
        status, message = 422, f"{field}: {error.detail}" if field else error.detail
    else:
        raise error
    return _page("error.html", status, status=status, message=message, ledger=ledger)


def _readable(service: LedgerService, principal: Principal, ledger: str) -> LedgerInfo:
    info = service.get_ledger(ledger)
    principal.require_read(ledger, public_read=info.public_read)
    return info


def _known_seq(text: str | None, head: int) -> int | None:
    """The record slider's value: a seq from 0 to the head."""
    if text is None or text == "":
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > head:
        raise InvalidParameter(f"must be a record number from 0 to {head}", field="known_seq")
    return int(text)


@router.get("/", response_class=HTMLResponse)
def index(principal: Caller, service: ServiceDep) -> HTMLResponse:
    ledgers = [
        info
        for info in service.list_ledgers()
        if principal.may_read(info.name, public_read=info.public_read)
    ]
    return _page("index.html", ledgers=ledgers)


def _timeline_context(
    service: LedgerService,
    principal: Principal,
    ledger: str,
    as_of: str | None,
    known_at: str | None,
    known_seq: str | None,
) -> dict[str, Any]:
    info = _readable(service, principal, ledger)
    head = info.size
    slider = _known_seq(known_seq, head)
    # A date (or seq) in known_at decides; the slider speaks when it is empty.
    effective = known_at if known_at else (str(slider) if slider is not None else None)
    snapshot = service.snapshot(ledger, as_of=as_of, known_at=effective)
    names = views.catalog(service, ledger)
    grid = views.build_grid(snapshot, names)
    known = int(snapshot["known_at"])
    history = service.history(ledger, known_at=str(known))["items"]
    timelines = views.build_timelines(history, names, grid, snapshot.get("as_of"))
    lines, _ = service.read_page(ledger, after_seq=max(0, head - RECENT), limit=RECENT)
    recent = [views.recent_record(views.json_record(line), names) for line in reversed(lines)]
    shown = sorted(set(grid.seqs) | {m.seq for t in timelines for m in t.marks})
    fixes = views.fixes_by_seq(history)
    empty = None
    if not grid.seqs:
        first_recorded = None
        if head:
            first_recorded = str(views.json_record(service.get_record(ledger, 1))["recorded_at"])
        everything = service.history(ledger)["items"] if head and not history else []
        empty = views.empty_reason(
            head=head,
            known_seq=known,
            known_at=effective,
            as_of=snapshot.get("as_of"),
            known_history=history,
            first_recorded_at=first_recorded,
            first_position=min(everything, key=lambda i: int(i["seq"])) if everything else None,
        )
    return {
        "ledger": ledger,
        "info": info,
        "head": head,
        "as_of": as_of or "",
        "known_at": known_at if known_at and not known_at.isdigit() else "",
        "known_seq": known,
        "snapshot": snapshot,
        "grid": grid,
        "fixes": fixes,
        "empty": empty,
        "timelines": timelines,
        "recent": recent,
        "page_data": {
            "ledger": ledger,
            "head": head,
            "snapshot": snapshot,
            "shown": shown,
            # The corrections the grid marks (a retracted statement is not in it).
            "fixes": {
                str(seq): [
                    {"seq": f["seq"], "reason": f.get("reason")}
                    for f in items
                    if f["kind"] == "corrected"
                ]
                for seq, items in fixes.items()
            },
            "parties": grid.parties,
            "topics": grid.topics,
            "stances": {k: {"icon": v.icon, "css": v.css} for k, v in views.STANCES.items()},
        },
    }


def _witness_data(settings: Settings) -> dict[str, object]:
    """The witness keys and quorum the page checks the witnessed checkpoint with."""
    return {
        "witnesses": [w.key for w in settings.witnesses],
        "witness_quorum": settings.quorum(),
    }


@router.get("/ledgers/{ledger}", response_class=HTMLResponse)
async def timeline_page(
    principal: Caller,
    service: ServiceDep,
    settings: SettingsDep,
    ledger: Annotated[str, Path()],
    as_of: Annotated[str | None, Query()] = None,
    known_at: Annotated[str | None, Query()] = None,
    known_seq: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    try:
        context = await run_in_threadpool(
            _timeline_context,
            service,
            principal,
            ledger,
            as_of or None,
            known_at or None,
            known_seq or None,
        )
    except LedgerError as e:
        return _error_page(e, ledger)
    context["page_data"]["recompute_limit"] = settings.web_recompute_limit
    context["page_data"].update(_witness_data(settings))
    return _page("timeline.html", **context)


@router.get("/ledgers/{ledger}/records/{seq}", response_class=HTMLResponse)
async def record_page(
    principal: Caller,
    service: ServiceDep,
    settings: SettingsDep,
    ledger: Annotated[str, Path()],
    seq: Annotated[int, Path(ge=1, le=MAX_SEQ)],
) -> HTMLResponse:
    def load() -> views.RecordView:
        _readable(service, principal, ledger)
        return views.record_view(service, ledger, seq)

    try:
        view = await run_in_threadpool(load)
    except LedgerError as e:
        return _error_page(e, ledger)
    names = await run_in_threadpool(views.catalog, service, ledger)
    return _page(
        "record.html",
        ledger=ledger,
        view=view,
        names=names,
        page_data={
            "ledger": ledger,
            "shown": [seq, *(f.seq for f in view.fixes)],
            **_witness_data(settings),
        },
    )
