"""A real server per backend for the client's tests, shared by a module; each
test gets a ledger of its own on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS, backend_server
from tests.servers import ServerProcess


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with backend_server(request.param, tmp_path_factory.mktemp("client-server")) as (process, _):
        yield process


@pytest.fixture(scope="module")
def log_key(server: ServerProcess) -> str:
    """The log's verifier key: a user gets it out of band; the test asks the server once."""
    return str(httpx.get(f"{server.url}/v1/keys").json()["items"][0]["verifier_key"])


@pytest.fixture
def ledger(server: ServerProcess) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    httpx.post(f"{server.url}/v1/ledgers", json={"name": name}).raise_for_status()
    return name


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "client-state.json"
