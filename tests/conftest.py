"""Shared fixtures: every storage-backed test runs on SQLite and, when
``LEDGER_TEST_POSTGRES_URL`` is set, on PostgreSQL too (one contract suite).

Each PostgreSQL test gets a schema of its own (``search_path`` set through the
connection's ``options``), so tests never see each other's rows and the
append-only triggers never have to be dropped to clean up.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from ledger.access import Scope
from ledger.api.app import create_app
from ledger.config import Settings
from ledger.intake import EventSchemas
from ledger.runtime import Runtime
from ledger.service import LedgerService
from ledger.store.database import Database

POSTGRES_URL = os.environ.get("LEDGER_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
SCHEMAS = EventSchemas.bundled()
ORIGIN = "ledger.test"
ADMIN_NAME = "tester"


def postgres_schema_url(base: str, schema: str) -> str:
    url = sa.engine.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def _create_pg_schema() -> tuple[str, str]:
    assert POSTGRES_URL
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return schema, postgres_schema_url(POSTGRES_URL, schema)


def _drop_pg_schema(schema: str) -> None:
    assert POSTGRES_URL
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    schema, url = _create_pg_schema()
    try:
        yield url
    finally:
        _drop_pg_schema(schema)


def settings_for(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    # Throttling is tested on its own (tests/api/test_auth_api.py), not by every test.
    options: dict[str, object] = {"rate_limit": 0, "origin": ORIGIN, **overrides}
    return Settings(database_url=database_url, data_dir=data_dir, **options)


@pytest.fixture
def runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    running = Runtime.start(settings_for(database_url, tmp_path))
    yield running
    running.close()


@pytest.fixture
def database(runtime: Runtime) -> Database:
    return runtime.database


@pytest.fixture
def service(runtime: Runtime) -> LedgerService:
    return runtime.service


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(database_url, tmp_path)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        # Authentication is on, as in production: the suite acts as an admin token.
        token, _ = test_client.app.state.tokens.create(ADMIN_NAME, (Scope("admin"),))
        test_client.headers["Authorization"] = f"Bearer {token}"
        yield test_client


def position(
    party: str = "US",
    topic: str = "security-guarantees",
    stance: str = "oppose",
    occurred_at: str = "2025-02-24",
    **extra: object,
) -> dict[str, object]:
    """A valid ``position.stated`` event, for tests to vary."""
    event: dict[str, object] = {
        "type": "position.stated",
        "party": party,
        "topic": topic,
        "occurred_at": occurred_at,
        "data": {"stance": stance, "summary": f"{party} {stance}s {topic}"},
        "source": {"name": "CNN", "kind": "media"},
    }
    event.update(extra)
    return event
