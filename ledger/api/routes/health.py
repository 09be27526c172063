"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

from ledger.api.deps import DatabaseDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database answers",
    responses={503: {"description": "Database unreachable (problem+json)"}},
)
def readyz(database: DatabaseDep) -> dict[str, str]:
    database.ping()  # StorageUnavailable -> 503 problem
    return {"status": "ready"}
