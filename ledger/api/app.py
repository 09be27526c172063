"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ledger import __version__
from ledger.api.openapi import install_openapi
from ledger.api.problems import install_problem_handlers
from ledger.api.routes import events, health, keys, ledgers, log, positions
from ledger.config import Settings
from ledger.intake import EventSchemas
from ledger.runtime import Runtime

__all__ = ["create_app"]

logger = logging.getLogger("ledger.api")


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    """Build the app; the database and service live for the app's lifespan."""
    settings = settings or Settings()
    schemas = EventSchemas.bundled()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.start(settings, migrate=migrate)
        app.state.settings = settings
        app.state.database = runtime.database
        app.state.service = runtime.service
        logger.info(
            "ledger %s ready on %s",
            __version__,
            runtime.database.url.render_as_string(hide_password=True),
        )
        try:
            yield
        finally:
            runtime.close()

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
    app.include_router(log.router)
    app.include_router(positions.router)
    app.include_router(keys.router)
    install_openapi(app, schemas)
    return app
