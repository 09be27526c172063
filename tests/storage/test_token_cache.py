"""Cached principals: only while revocations are watched (PostgreSQL's
LISTEN, SQLite's revocation file), and gone the moment one commits."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger.access import Scope
from ledger.store.database import Database
from ledger.store.postgres.revocations import APPLICATION_NAME
from ledger.store.sqlite.revocations import RevocationFile
from ledger.store.tokens import TokenStore


@pytest.fixture
def stores(database_url: str) -> Iterator[tuple[TokenStore, TokenStore]]:
    """A server's token store, and another process's (the CLI's), on one database."""
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


def test_a_revocation_in_sql_is_not_seen_while_cached(
    stores: tuple[TokenStore, TokenStore], database_url: str
) -> None:
    # The documented limit: only ``revoke`` announces. Also shows the cache is used.
    server, cli = stores
    token, _ = cli.create("desk", (Scope("admin"),))
    server.watch_revocations()
    assert eventually(lambda: server.principal(token) and server.cached_principal(token))
    with cli.db.write() as conn:
        conn.execute(sa.text("UPDATE api_tokens SET revoked_at = 'x' WHERE name = 'desk'"))
    assert server.cached_principal(token) is not None
    assert server.principal(token) is None


def sqlite_only(database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's revocation file")


def test_sqlite_announces_each_revocation_in_a_file_that_only_grows(
    stores: tuple[TokenStore, TokenStore], database_url: str
) -> None:
    sqlite_only(database_url)
    server, cli = stores
    server.watch_revocations()
    sizes = []
    for name in ("a", "b"):
        cli.create(name, (Scope("admin"),))
        notices = server._notices
        assert isinstance(notices, RevocationFile)
        stamp = notices.stamp()
        cli.revoke(name)
        assert notices.stamp() != stamp
        sizes.append(notices.path.stat().st_size)
    assert 0 < sizes[0] < sizes[1]


def test_sqlite_caches_nothing_while_the_revocation_file_cannot_be_read(
    stores: tuple[TokenStore, TokenStore], database_url: str, tmp_path: Path
) -> None:
    sqlite_only(database_url)
    server, cli = stores
    token, _ = cli.create("desk", (Scope("admin"),))
    server.watch_revocations()
    assert server.principal(token) and server.cached_principal(token)
    notices = server._notices
    assert isinstance(notices, RevocationFile)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    notices.path = blocker / "revocations"  # stat fails: not a directory
    assert server.cached_principal(token) is None


def test_a_watch_that_lost_its_connection_stops_caching_until_it_listens_again(
    stores: tuple[TokenStore, TokenStore], database_url: str
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's LISTEN connection")
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
