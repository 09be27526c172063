"""The two servers the append figures stand beside (``python -m bench.naive_app``).

* naive (``--database-url URL``): a minimal FastAPI app whose
  ``POST /v1/ledgers/{ledger}/events`` stores the posted JSON as text in a
  plain table (``id`` autoincrement, ``body``), one row per event and one
  transaction per request, with no canonical form, hashing, Merkle tree,
  signature, projection or schema validation. It keeps the durability the
  ledger promises (SQLite: WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``;
  PostgreSQL: the default ``synchronous_commit=on``) and the ledger's one
  writer lock on SQLite, so neither side is handicapped by SQLite's
  sleep-and-poll busy handler. What the ledger beats it by is what group commit
  (and the rest) buys beyond "insert the JSON".
* no-op (no ``--database-url``): the same route reads the body and answers
  201 without touching a database: the HTTP stack's ceiling.

Both run under uvicorn exactly as ``ledger serve`` does by default (one
process, ``ledger.cli.uvicorn_options`` of the default settings: the same
connection protocol, log level and no access log), and both serve the
ledger's URL so one wrk script drives all three.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from typing import Any

import orjson
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy import event

ROUTE = "/v1/ledgers/{ledger}/events"
_metadata = sa.MetaData()
naive_events = sa.Table(
    "naive_events",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("body", sa.Text, nullable=False),
)


def _engine(url: str) -> sa.Engine:
    if sa.engine.make_url(url).get_backend_name() != "sqlite":
        # The ledger's pool settings, so the two wait on connections alike.
        return sa.create_engine(url, pool_size=10, max_overflow=20, pool_timeout=10)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The ledger's durability: a 201 means the row survives power loss.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_app(database_url: str | None) -> FastAPI:
    engine = _engine(database_url) if database_url is not None else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if engine is not None:
            engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if engine is None:

        @app.post(ROUTE, status_code=201)
        async def noop(request: Request, ledger: str) -> Response:
            await request.body()
            return JSONResponse({"ok": True}, status_code=201)

        return app

    _metadata.create_all(engine)
    is_sqlite = engine.dialect.name == "sqlite"
    # SQLite has one writer: queue here, as the ledger does, not in SQLite.
    writer: AbstractContextManager[Any] = threading.Lock() if is_sqlite else nullcontext()
    insert = naive_events.insert().returning(naive_events.c.id)

    def store(rows: list[dict[str, str]]) -> list[int]:
        with writer, engine.begin() as connection:
            if len(rows) == 1:
                return [connection.execute(insert, rows[0]).scalar_one()]
            return list(connection.execute(insert, rows).scalars())

    @app.post(ROUTE, status_code=201)
    async def append(request: Request, ledger: str) -> Response:
        raw = await request.body()
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return JSONResponse({"detail": "not JSON"}, status_code=400)
        if isinstance(parsed, list):
            ids = await run_in_threadpool(
                store, [{"body": orjson.dumps(e).decode()} for e in parsed]
            )
            return JSONResponse([{"id": i} for i in ids], status_code=201)
        ids = await run_in_threadpool(store, [{"body": raw.decode()}])
        return JSONResponse({"id": ids[0]}, status_code=201)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.naive_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", help="omit for the no-op app")
    args = parser.parse_args()
    import uvicorn

    from ledger.cli import uvicorn_options
    from ledger.config import Settings

    # ledger serve's options at their defaults, so the HTTP stacks match.
    options = uvicorn_options(Settings.model_construct())
    uvicorn.run(create_app(args.database_url), host="127.0.0.1", port=args.port, **options)


if __name__ == "__main__":
    main()
