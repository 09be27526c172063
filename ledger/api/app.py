"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ledger import __version__
from ledger.api.openapi import install_openapi
from ledger.api.problems import install_problem_handlers
from ledger.api.routes import events, health, ledgers
from ledger.config import Settings
from ledger.intake import EventSchemas, Intake
from ledger.service import LedgerService
from ledger.store.database import Database
from ledger.store.recorder import Recorder

__all__ = ["create_app"]

log = logging.getLogger("ledger.api")


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    """Build the app; the database and service live for the app's lifespan."""
    settings = settings or Settings()
    schemas = EventSchemas.bundled()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(url=settings.resolved_database_url())
        if migrate:
            database.migrate()
        app.state.settings = settings
        app.state.database = database
        app.state.service = LedgerService(
            recorder=Recorder(database=database),
            intake=Intake(schemas=schemas, max_batch=settings.max_batch),
        )
        log.info("ledger %s ready on %s", __version__, database.url.render_as_string())
        try:
            yield
        finally:
            database.dispose()

    app = FastAPI(
        title="Negotiation ledger",
        version=__version__,
        description=(
            "An append-only, hash-chained, verifiable record of every reported position "
            "change of the parties to an agreement. Errors are RFC 9457 problem details."
        ),
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(ledgers.router)
    app.include_router(events.router)
    install_openapi(app, schemas)
    return app
