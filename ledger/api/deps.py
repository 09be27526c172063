"""Dependency aliases shared by the routers.

The providers are ``async``: FastAPI runs a sync dependency in the thread
pool, and these only read ``app.state``; a thread hop each cost more than the
database query behind a proof.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ledger.config import Settings
from ledger.service import LedgerService
from ledger.store.database import Database

__all__ = ["DatabaseDep", "ServiceDep", "SettingsDep"]


async def _service(request: Request) -> LedgerService:
    service: LedgerService = request.app.state.service
    return service


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


ServiceDep = Annotated[LedgerService, Depends(_service)]
SettingsDep = Annotated[Settings, Depends(_settings)]
DatabaseDep = Annotated[Database, Depends(_database)]
