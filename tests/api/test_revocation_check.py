"""One revocation check per pass of the event loop, and no request served a
principal revoked before it arrived.

``RevocationCheck`` spares the ``stat`` of SQLite's revocation file for
every request after the first in a pass of the loop. What must hold: a check
never outlives the pass it was made in, because the loop runs whatever it
does for bytes it reads later after the callback that forgets the check.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvloop

from ledger.access import Scope
from ledger.api.auth import RevocationCheck
from ledger.store.database import Database
from ledger.store.tokens import TokenStore
from tests.conftest import position
from tests.servers import ServerProcess

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


class CountingStore:
    """Stands in for a TokenStore: counts the checks it is asked for."""

    def __init__(self) -> None:
        self.checks = 0

    def check_revocations(self) -> bool:
        self.checks += 1
        return True


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Iterator[Callable[..., object]]:
    loop = LOOPS[request.param]()
    yield loop.run_until_complete
    loop.close()


def test_one_check_serves_every_request_in_the_same_pass(run: Callable[..., object]) -> None:
    store = CountingStore()
    check = RevocationCheck(store)  # type: ignore[arg-type]

    async def requests_in_one_pass() -> None:
        assert check() and check() and check()

    run(requests_in_one_pass())
    assert store.checks == 1


def test_the_next_pass_checks_again(run: Callable[..., object]) -> None:
    store = CountingStore()
    check = RevocationCheck(store)  # type: ignore[arg-type]

    async def two_passes() -> None:
        check()
        await asyncio.sleep(0)
        check()
        await asyncio.sleep(0)
        check()

    run(two_passes())
    assert store.checks == 3


@pytest.fixture
def sqlite_stores(tmp_path: Path) -> Iterator[tuple[TokenStore, TokenStore]]:
    """A server's token store, and the revoking CLI's, on one SQLite file."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    server_db, cli_db = Database(url=url), Database(url=url)
    server_db.migrate()
    yield TokenStore(database=server_db), TokenStore(database=cli_db)
    server_db.dispose()
    cli_db.dispose()


def test_a_callback_queued_after_a_check_sees_a_revocation_announced_since(
    run: Callable[..., object], sqlite_stores: tuple[TokenStore, TokenStore]
) -> None:
    server, cli = sqlite_stores
    token, _ = cli.create("desk", (Scope("admin"),))
    server.watch_revocations()
    assert server.principal(token) is not None  # now cached
    check = RevocationCheck(server)
    seen: list[object] = []

    async def revoked_between_two_requests() -> None:
        loop = asyncio.get_running_loop()
        assert server.cached_principal(token, checked=check()) is not None
        cli.revoke("desk")
        # What the loop does for a request read from now on is queued after
        # the callback that forgets the check.
        done = loop.create_future()

        def later_request() -> None:
            seen.append(server.cached_principal(token, checked=check()))
            done.set_result(None)

        loop.call_soon(later_request)
        await done

    run(revoked_between_two_requests())
    assert seen == [None]
    assert server.principal(token) is None


@pytest.mark.slow
def test_under_load_a_token_revoked_by_another_process_is_refused_by_the_next_request(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    database = Database(url=url)
    database.migrate()
    cli = TokenStore(database=database)
    admin, _ = cli.create("admin", (Scope("admin"),))
    desks = [cli.create(f"desk-{n}", (Scope("append"),))[0] for n in range(12)]
    server = ServerProcess(database_url=url, data_dir=tmp_path, env={"LEDGER_AUTH": "tokens"})
    stop = threading.Event()
    errors: list[BaseException] = []

    def load() -> None:
        # Keeps the loop busy, so passes serve several requests each.
        try:
            with httpx.Client(base_url=server.url) as client:
                while not stop.is_set():
                    answer = client.get(
                        "/v1/ledgers/talks/head", headers={"Authorization": f"Bearer {admin}"}
                    )
                    assert answer.status_code == 200
        except BaseException as e:
            errors.append(e)

    try:
        as_admin = {"Authorization": f"Bearer {admin}"}
        created = httpx.post(f"{server.url}/v1/ledgers", json={"name": "talks"}, headers=as_admin)
        assert created.status_code == 201
        threads = [threading.Thread(target=load) for _ in range(6)]
        for thread in threads:
            thread.start()
        with httpx.Client(base_url=server.url) as client:
            for n, desk in enumerate(desks):
                headers = {"Authorization": f"Bearer {desk}"}
                events = "/v1/ledgers/talks/events"
                for _ in range(3):  # cached by the server from the first
                    assert client.post(events, json=position(), headers=headers).status_code == 201
                cli.revoke(f"desk-{n}")
                refused = client.post(events, json=position(), headers=headers)
                assert refused.status_code == 401, refused.text
        stop.set()
        for thread in threads:
            thread.join()
        assert not errors
    finally:
        stop.set()
        server.stop()
        database.dispose()
