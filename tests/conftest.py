"""Shared fixtures: every storage-backed test runs on SQLite and, when
``LEDGER_TEST_POSTGRES_URL`` is set, on PostgreSQL too (one contract suite).

Each PostgreSQL test gets a schema of its own (``search_path`` set through the
connection's ``options``), so tests never see each other's rows and the
append-only triggers never have to be dropped to clean up.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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
from tests.servers import ServerProcess

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


@contextmanager
def backend_database(backend: str, directory: Path) -> Iterator[str]:
    """The URL of a new, empty database on ``backend``: an SQLite file in
    ``directory``, or a PostgreSQL schema of its own, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'ledger.db'}"
        return
    schema, url = _create_pg_schema()
    try:
        yield url
    finally:
        _drop_pg_schema(schema)


@contextmanager
def backend_server(backend: str, directory: Path) -> Iterator[tuple[ServerProcess, str]]:
    """A real ``ledger serve`` on a new database (``backend_database``), stopped
    on exit: the process and its database's URL."""
    with backend_database(backend, directory) as url:
        process = ServerProcess(database_url=url, data_dir=directory)
        try:
            yield process, url
        finally:
            process.stop()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with backend_database(request.param, tmp_path) as url:
        yield url


def migrate(database_url: str) -> None:
    """Run the migrations, as ``ledger db upgrade`` does."""
    database = Database(url=database_url)
    try:
        database.migrate()
    finally:
        database.dispose()


class MigratedTemplate:
    """A database at the latest schema revision, made once per session by the
    real migrations, for the tests that only need a migrated database to
    start a runtime on: a copy costs a fraction of running every migration
    again (``tests/storage/test_migrations.py`` holds the copy equal to a
    migrated database; the migrations themselves are tested there and run
    in every server process the e2e tests start).

    SQLite: the file is copied. PostgreSQL: the schema's ``pg_dump`` (data
    included: the revision row), renamed to the test's schema, runs in one
    round trip; without ``pg_dump`` the migrations run as usual.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._sqlite: Path | None = None
        self._postgres: tuple[str, str] | None = None  # (schema name, script)

    def sqlite_file(self) -> Path:
        if self._sqlite is None:
            path = self._directory / "template.db"
            migrate(f"sqlite:///{path}")
            self._sqlite = path
        return self._sqlite

    def postgres_script(self) -> tuple[str, str] | None:
        if self._postgres is None and shutil.which("pg_dump") is not None:
            schema, url = _create_pg_schema()
            migrate(url)
            parsed = sa.engine.make_url(POSTGRES_URL or "")
            dump = subprocess.run(
                [
                    *("pg_dump", "--schema", schema, "--inserts", "--no-owner", "--no-privileges"),
                    f"--host={parsed.host or '127.0.0.1'}",
                    f"--port={parsed.port or 5432}",
                    f"--username={parsed.username or 'postgres'}",
                    parsed.database or "postgres",
                ],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PGPASSWORD": parsed.password or ""},
            ).stdout
            _drop_pg_schema(schema)
            # psql's meta-commands (\restrict) and the schema the test already has.
            kept = [
                line
                for line in dump.splitlines()
                if not line.startswith("\\") and not line.startswith("CREATE SCHEMA ")
            ]
            self._postgres = (schema, "\n".join(kept))
        return self._postgres

    def copy_to(self, database_url: str) -> None:
        """Make the empty database at ``database_url`` a migrated one."""
        url = sa.engine.make_url(database_url)
        if url.get_backend_name() == "sqlite":
            shutil.copyfile(self.sqlite_file(), url.database or "")
            return
        template = self.postgres_script()
        if template is None:
            migrate(database_url)
            return
        schema, script = template
        target = re.search(r"search_path=(\w+)", url.query["options"])  # type: ignore[arg-type]
        assert target, database_url
        engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
        try:
            raw = engine.raw_connection()
            try:
                # No parameters: one simple-protocol query holding every statement.
                raw.cursor().execute(script.replace(schema, target.group(1)))
                raw.commit()
            finally:
                raw.close()
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> MigratedTemplate:
    return MigratedTemplate(tmp_path_factory.mktemp("template"))


@pytest.fixture
def migrated_url(database_url: str, migrated_template: MigratedTemplate) -> str:
    """``database_url`` already migrated (see ``MigratedTemplate``)."""
    migrated_template.copy_to(database_url)
    return database_url


def settings_for(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    # Throttling is tested on its own (tests/api/test_auth_api.py), not by every test.
    options: dict[str, object] = {"rate_limit": 0, "origin": ORIGIN, **overrides}
    return Settings(database_url=database_url, data_dir=data_dir, **options)


@pytest.fixture
def runtime(migrated_url: str, tmp_path: Path) -> Iterator[Runtime]:
    running = Runtime.start(settings_for(migrated_url, tmp_path))
    yield running
    running.close()


@pytest.fixture
def database(runtime: Runtime) -> Database:
    return runtime.database


@pytest.fixture
def service(runtime: Runtime) -> LedgerService:
    return runtime.service


@pytest.fixture
def client(migrated_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(migrated_url, tmp_path)
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
