"""The FastAPI application factory."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.types import Receive, Scope, Send

from ledger import __version__
from ledger.api.append_route import AppendLane, append_ledger
from ledger.api.auth import RateLimiter, RevocationCheck, caller, ledger_reader
from ledger.api.docspages import install_docs
from ledger.api.openapi import PROBLEMS, install_openapi
from ledger.api.problems import install_problem_handlers
from ledger.api.request_log import AuditLogMiddleware
from ledger.api.routes import (
    authors,
    documents,
    events,
    export,
    health,
    keys,
    ledgers,
    log,
    positions,
    sources,
    stream,
    timestamps,
    web,
    witnessed,
)
from ledger.api.streamhub import StreamHub
from ledger.audit_log import configure_audit_log
from ledger.config import Settings
from ledger.intake import EventSchemas
from ledger.intake_workers import IntakePool
from ledger.runtime import Runtime

__all__ = ["LedgerApp", "create_app"]

logger = logging.getLogger("ledger.api")


class LedgerApp(FastAPI):
    """FastAPI, with appends served by ``lane`` ahead of its per-request machinery
    (see ``ledger.api.append_route``); ``lane = None`` leaves them to the router."""

    lane: AppendLane | None = AppendLane()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.lane is not None and (ledger := append_ledger(scope)) is not None:
            scope["app"] = self
            await self.lane(scope, receive, send, ledger)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> LedgerApp:
    """Build the app; the database and service live for the app's lifespan."""
    settings = settings or Settings()
    schemas = EventSchemas.bundled()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.start(settings, migrate=migrate)
        # Logs an integrity alarm for every ledger whose head was tampered with
        # while no server watched (appends to it are refused either way).
        runtime.service.recorder.check_heads()
        app.state.settings = settings
        app.state.database = runtime.database
        app.state.service = runtime.service
        app.state.tokens = runtime.tokens
        app.state.cosignatures = runtime.cosignatures
        app.state.collector = runtime.collector
        app.state.witnessed = runtime.witnessed
        app.state.revocation_check = RevocationCheck(runtime.tokens)
        if settings.auth == "tokens":
            runtime.tokens.watch_revocations()
        app.state.rate_limiter = RateLimiter(rate=settings.rate_limit, burst=settings.rate_burst)
        failures = settings.auth_failures_per_minute
        app.state.auth_failures = RateLimiter(rate=failures / 60, burst=failures)
        app.state.ledger_visibility = {}
        app.state.stream_hub = StreamHub(
            runtime.service,
            max_streams=settings.max_streams,
            read_threads=settings.stream_read_threads,
        )
        intake_pool = IntakePool(max_batch=settings.max_batch) if settings.intake_worker else None
        app.state.intake_pool = intake_pool
        configure_audit_log(settings.audit_log)
        if settings.auth == "off":
            logger.warning("authentication is off: anyone can append, as 'anonymous'")
        logger.info(
            "ledger %s ready on %s",
            __version__,
            runtime.database.url.render_as_string(hide_password=True),
        )
        # Everything made so far (schemas, SQLAlchemy's metadata, the runtime)
        # lives as long as the server: out of the collector's sight, a full
        # collection looks only at what requests made, instead of pausing the
        # event loop to walk every long-lived object again.
        gc.collect()
        gc.freeze()
        runtime.collector.start()
        if runtime.timestamper is not None:
            runtime.timestamper.start()
        try:
            yield
        finally:
            if runtime.timestamper is not None:
                runtime.timestamper.stop()
            await runtime.collector.stop()
            if intake_pool is not None:
                intake_pool.close()
            runtime.close()

    app = LedgerApp(
        title="Negotiation ledger",
        version=__version__,
        description=(
            "An append-only, hash-chained, verifiable record of every reported position "
            "change of the parties to an agreement. Errors are RFC 9457 problem details."
        ),
        lifespan=lifespan,
        # Served by install_docs from local copies: FastAPI's pages load from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app)
    app.add_middleware(AuditLogMiddleware)
    app.include_router(health.router)
    guarded = PROBLEMS(401, 429)
    app.include_router(keys.router, dependencies=[Depends(caller)], responses=guarded)
    app.include_router(ledgers.router, dependencies=[Depends(caller)], responses=guarded)
    # Every route under /v1/ledgers/{ledger}: public ledgers for all, private ones for readers.
    # stream first: its /events/stream would otherwise match /events/{seq}.
    for router in (
        stream.router,
        events.router,
        log.router,
        positions.router,
        sources.router,
        documents.router,
        authors.router,
        export.router,
        timestamps.router,
        witnessed.router,
    ):
        app.include_router(
            router, dependencies=[Depends(ledger_reader)], responses=PROBLEMS(401, 403, 429)
        )
    # Authenticates in its endpoint, which the append lane calls directly.
    app.include_router(events.append_router, responses=PROBLEMS(401, 403, 429))
    app.include_router(web.router)
    app.mount("/static", web.static_files(), name="static")
    install_openapi(app, schemas)
    install_docs(app)
    return app
