"""Forwarded client addresses, against a real server: the failed-authentication
lockout and the rate limits follow ``X-Forwarded-For`` only when the peer
sending it is a proxy named in ``LEDGER_TRUSTED_PROXIES``; by default no peer
is, not even one on the loopback interface."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from ledger.access import new_token
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

WRONG = {"Authorization": f"Bearer {new_token()}"}


@pytest.fixture
def start(database_url: str, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    servers: list[ServerProcess] = []

    def server(**env: str) -> ServerProcess:
        running = ServerProcess(
            database_url=database_url,
            data_dir=tmp_path,
            env={"LEDGER_AUTH": "tokens", "LEDGER_AUTH_FAILURES_PER_MINUTE": "2", **env},
        )
        servers.append(running)
        return running

    yield server
    for running in servers:
        running.stop()


def lock_out(client: httpx.Client, headers: dict[str, str]) -> None:
    statuses = [client.get("/v1/keys", headers=headers).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


def test_a_locked_out_client_stays_locked_out_whatever_it_forwards(
    start: Callable[..., ServerProcess],
) -> None:
    server = start()
    with httpx.Client(base_url=server.url) as client:
        lock_out(client, WRONG)
        for forwarded in ("203.0.113.9", "198.51.100.7, 203.0.113.9", "::1"):
            response = client.get("/v1/keys", headers={**WRONG, "X-Forwarded-For": forwarded})
            assert response.status_code == 429, forwarded
            assert response.headers["content-type"] == "application/problem+json"
        # And public reads are charged to the peer too: nothing to escape there either.
        assert client.get("/v1/ledgers", headers={"X-Forwarded-For": "203.0.113.9"}).is_success


def test_a_named_proxy_has_its_clients_counted_apart(start: Callable[..., ServerProcess]) -> None:
    server = start(LEDGER_TRUSTED_PROXIES="127.0.0.1")
    with httpx.Client(base_url=server.url) as proxy:
        lock_out(proxy, {**WRONG, "X-Forwarded-For": "203.0.113.9"})
        # Another client behind the same proxy is not locked out...
        other = proxy.get("/v1/keys", headers={**WRONG, "X-Forwarded-For": "203.0.113.10"})
        assert other.status_code == 401
        # ...nor is the proxy's own address.
        assert proxy.get("/v1/keys", headers=WRONG).status_code == 401
        # The locked-out client is, through the proxy.
        again = proxy.get("/v1/keys", headers={**WRONG, "X-Forwarded-For": "203.0.113.9"})
        assert again.status_code == 429


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    from pydantic import ValidationError

    from ledger.config import Settings

    assert Settings(trusted_proxies="10.0.0.0/8, ::1").trusted_proxy_list() == ["10.0.0.0/8", "::1"]
    assert Settings().trusted_proxy_list() == []
    with pytest.raises(ValidationError, match="trusted_proxies"):
        Settings(trusted_proxies="10.0.0.0/8, proxy.example")
