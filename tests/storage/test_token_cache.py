"""Cached principals on PostgreSQL: only while revocations are heard, and gone
the moment one is."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from ledger.access import Scope
from ledger.store.database import Database
from ledger.store.revocations import APPLICATION_NAME
from ledger.store.tokens import TokenStore


@pytest.fixture
def stores(database_url: str) -> Iterator[tuple[TokenStore, TokenStore]]:
    """A server's token store, and another process's (the CLI's), on one database."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite looks every token up: nothing is cached")

    server_db, cli_db = Database(url=database_url), Database(url=database_url)
    server_db.migrate()
    server, cli = TokenStore(database=server_db), TokenStore(database=cli_db)
    yield server, cli
    server.close()
    server_db.dispose()
    cli_db.dispose()


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


def test_nothing_is_cached_without_a_watch(stores: tuple[TokenStore, TokenStore]) -> None:
    server, cli = stores
    token, _ = cli.create("desk", (Scope("admin"),))
    assert server.principal(token) is not None
    assert server.cached_principal(token) is None


def test_a_revocation_empties_the_cache_as_soon_as_it_commits(
    stores: tuple[TokenStore, TokenStore],
) -> None:
    server, cli = stores
    token, _ = cli.create("desk", (Scope("admin"),))
    server.watch_revocations()
    assert eventually(lambda: server.principal(token) and server.cached_principal(token))
    cli.revoke("desk")
    assert eventually(lambda: server.cached_principal(token) is None, seconds=2)
    assert server.principal(token) is None


def test_a_watch_that_lost_its_connection_stops_caching_until_it_listens_again(
    stores: tuple[TokenStore, TokenStore], database_url: str
) -> None:
    server, cli = stores
    token, _ = cli.create("desk", (Scope("admin"),))
    server.watch_revocations()
    assert eventually(lambda: server.principal(token) and server.cached_principal(token))
    admin = sa.create_engine(database_url)
    with admin.begin() as conn:
        killed = conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = :name AND pid <> pg_backend_pid()"
            ),
            {"name": APPLICATION_NAME},
        ).all()
    admin.dispose()
    assert killed
    assert eventually(lambda: server.cached_principal(token) is None, seconds=5)
    # Back and listening: caching resumes, from an empty cache.
    assert eventually(lambda: server.principal(token) and server.cached_principal(token))
