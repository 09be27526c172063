"""Database faults under a real server: PostgreSQL backends killed mid-append,
and PostgreSQL unreachable (a TCP proxy the test stops and restarts).

Whatever fails, a client sees 201/200 with a record that is really there, or
503 problem+json with Retry-After: never a 500, never a 201 for an append
that is absent, never a fresh request answered as a replay (a storage error
retried behind the client's back), and the service recovers without a restart.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa

from ledger.core.errors import StorageUnavailable
from ledger.core.records import Record
from ledger.runtime import Runtime
from tests.conftest import (
    POSTGRES_URL,
    _create_pg_schema,
    _drop_pg_schema,
    position,
    settings_for,
)
from tests.e2e.checks import (
    SERVER_ENV,
    Attempt,
    check_acknowledged,
    new_attempt,
    post_attempt,
    presence,
    read_ledger,
    verify_checkpoint,
)
from tests.servers import ServerProcess, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_URL, reason="needs LEDGER_TEST_POSTGRES_URL"),
]

LEDGER = "faults"
SEED = 6


def server_url(base: str, schema: str, *, application_name: str, port: int | None = None) -> str:
    url = sa.engine.make_url(base).update_query_dict(
        {"options": f"-csearch_path={schema}", "application_name": application_name}
    )
    if port is not None:
        url = url.set(host="127.0.0.1", port=port)
    return url.render_as_string(hide_password=False)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    schema, _ = _create_pg_schema()
    try:
        yield schema
    finally:
        _drop_pg_schema(schema)


def assert_unavailable(response: httpx.Response) -> None:
    """The one acceptable failure: 503 problem+json that tells the client when to retry."""
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-content-type-options"] == "nosniff"


@dataclass
class FaultFigures:
    terminations: int = 0
    backends_killed: int = 0
    keyed_appends: int = 0
    keyed_201: int = 0
    keyed_503: int = 0
    keyed_503_committed: int = 0  # the backend died after COMMIT: outcome unknown, so 503
    unkeyed_appends: int = 0
    unkeyed_201: int = 0
    unkeyed_503: int = 0
    unkeyed_503_committed: int = 0
    reads: int = 0
    reads_503: int = 0


def test_killed_backends_mid_append_give_503_never_500_and_recover(
    pg_schema: str, tmp_path: Path
) -> None:
    assert POSTGRES_URL
    app_name = f"ledger-under-test-{uuid.uuid4().hex[:8]}"
    url = server_url(POSTGRES_URL, pg_schema, application_name=app_name)
    figures = FaultFigures()
    keyed: list[Attempt] = []
    # Appends without Idempotency-Key or id: a blind server-side retry of an
    # in-doubt commit would show up as the same summary recorded twice.
    unkeyed: dict[str, tuple[int, str]] = {}
    stop = threading.Event()
    lock = threading.Lock()
    server = ServerProcess(database_url=url, data_dir=tmp_path, env=SERVER_ENV)
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        httpx.post(f"{server.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()

        def write(writer: int) -> None:
            rng = random.Random(SEED * 100 + writer)
            with httpx.Client(base_url=server.url, timeout=30) as http:
                n = 0
                while not stop.is_set():
                    n += 1
                    if writer % 4 == 3:
                        tag = f"unkeyed-w{writer}-{n}"
                        event = position()
                        event["data"] = {"stance": "oppose", "summary": tag}
                        response = http.post(f"/v1/ledgers/{LEDGER}/events", json=event)
                        with lock:
                            figures.unkeyed_appends += 1
                            detail = "" if response.status_code == 201 else response.text
                            unkeyed[tag] = (response.status_code, detail)
                    else:
                        attempt = new_attempt(f"w{writer}-{n}", rng.choice((0, 0, 3)))
                        with lock:
                            keyed.append(attempt)
                            figures.keyed_appends += 1
                        response = post_attempt(http, LEDGER, attempt)
                    if response.status_code != 201:
                        # 200 to a fresh key would be a storage error retried, then acknowledged.
                        assert_unavailable(response)

        def read() -> None:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                while not stop.is_set():
                    for path in (f"/v1/ledgers/{LEDGER}/checkpoint", f"/v1/ledgers/{LEDGER}/head"):
                        response = http.get(path)
                        with lock:
                            figures.reads += 1
                        if response.status_code != 200:
                            assert_unavailable(response)
                            with lock:
                                figures.reads_503 += 1

        def terminate() -> None:
            rng = random.Random(SEED)
            with admin.connect() as conn:
                while not stop.is_set():
                    time.sleep(rng.uniform(0.02, 0.25))
                    killed = conn.execute(
                        sa.text(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                            "AND application_name = :app"
                        ),
                        {"app": app_name},
                    ).scalar_one()
                    figures.terminations += 1
                    figures.backends_killed += int(killed)

        with ThreadPoolExecutor(max_workers=10) as pool:
            futures = [pool.submit(write, w) for w in range(8)]
            futures += [pool.submit(read), pool.submit(terminate)]
            time.sleep(6)
            stop.set()
        for future in futures:
            future.result()

        with httpx.Client(base_url=server.url, timeout=30) as http:
            # Recovered by itself: the pool drops the dead connections at checkout.
            assert http.get("/readyz").status_code == 200
            for n in range(20):
                response = post_attempt(http, LEDGER, new_attempt(f"after-{n}", n % 2 * 3))
                assert response.status_code == 201, response.text

            view = read_ledger(http, LEDGER)  # chain verifies, ids unique
            checkpoint = verify_checkpoint(
                http, LEDGER, http.get(f"/v1/ledgers/{LEDGER}/checkpoint").text
            )
            assert (checkpoint.tree_size, checkpoint.root) == (view.size, view.root)
            assert checkpoint.head_hash == view.head_hash

            for attempt in keyed:
                if attempt.receipts is not None:
                    figures.keyed_201 += 1
                    check_acknowledged(view, attempt)
                    presence(view, attempt)
                    continue
                figures.keyed_503 += 1
                committed = presence(view, attempt)
                figures.keyed_503_committed += committed
                if committed:
                    # Only a connection lost with COMMIT in flight can leave a 503'd append
                    # recorded, and the client must have been told the outcome is unknown.
                    assert any("during COMMIT" in p for p in attempt.problems), attempt.problems
                response = post_attempt(http, LEDGER, attempt)
                assert response.status_code == (200 if committed else 201), response.text

            summaries: dict[str, int] = {}
            for line in view.lines:
                summary = str(Record.from_dict(json.loads(line)).data["summary"])
                summaries[summary] = summaries.get(summary, 0) + 1
            for tag, (status, detail) in unkeyed.items():
                count = summaries.get(tag, 0)
                assert count <= 1, f"{tag} recorded {count} times"
                if status == 201:
                    figures.unkeyed_201 += 1
                    assert count == 1, f"{tag} acknowledged but absent"
                else:
                    figures.unkeyed_503 += 1
                    figures.unkeyed_503_committed += count
                    assert not count or "during COMMIT" in detail, detail
            read_ledger(http, LEDGER)
    finally:
        admin.dispose()
        server.stop()
    print(f"\ndb fault figures: {asdict(figures)}")
    assert figures.backends_killed > 0
    assert figures.keyed_503 + figures.unkeyed_503 > 0, "no append was hit: the test proved nothing"
    log = server.log_path.read_text(errors="replace")
    assert "unhandled error" not in log, log


class TcpProxy:
    """A TCP forwarder to PostgreSQL that the test can take down and bring back."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._spawn(self._accept, listener)

    def stop(self) -> None:
        """Refuse new connections and cut every open one, as a crashed database would."""
        if self._listener is not None:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # wakes the pump reading the other way
            with self._lock:
                self._open.discard(source)
            source.close()  # each socket is read, and closed, by exactly one pump


def test_readyz_and_appends_report_an_unreachable_database_and_recover(
    pg_schema: str, tmp_path: Path
) -> None:
    assert POSTGRES_URL
    target = sa.engine.make_url(POSTGRES_URL)
    proxy = TcpProxy((target.host or "127.0.0.1", target.port or 5432))
    proxy.start()
    url = server_url(POSTGRES_URL, pg_schema, application_name="ledger-outage", port=proxy.port)
    server = ServerProcess(database_url=url, data_dir=tmp_path, env=SERVER_ENV)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            http.post("/v1/ledgers", json={"name": LEDGER}).raise_for_status()
            before = [new_attempt(f"before-{n}", n % 2 * 3) for n in range(6)]
            for attempt in before:
                assert post_attempt(http, LEDGER, attempt).status_code == 201

            proxy.stop()
            assert_unavailable(http.get("/readyz"))
            during = [new_attempt(f"during-{n}", n % 2 * 3) for n in range(6)]
            for attempt in during:
                assert_unavailable(post_attempt(http, LEDGER, attempt))
            assert_unavailable(http.get(f"/v1/ledgers/{LEDGER}/checkpoint"))
            assert_unavailable(http.get(f"/v1/ledgers/{LEDGER}/head"))
            assert http.get("/healthz").status_code == 200  # alive, just not ready
            assert_unavailable(http.get("/readyz"))  # still down: nothing cached a success

            proxy.start()
            assert http.get("/readyz").status_code == 200
            view = read_ledger(http, LEDGER)
            for attempt in before:
                check_acknowledged(view, attempt)
            for attempt in during:
                assert not presence(view, attempt)  # the database never saw them
                assert post_attempt(http, LEDGER, attempt).status_code == 201
            for attempt in before:
                assert post_attempt(http, LEDGER, attempt).status_code == 200
            view = read_ledger(http, LEDGER)
            assert view.size == sum(len(a.ids) for a in before + during)
            checkpoint = verify_checkpoint(
                http, LEDGER, http.get(f"/v1/ledgers/{LEDGER}/checkpoint").text
            )
            assert (checkpoint.tree_size, checkpoint.root) == (view.size, view.root)
    finally:
        server.stop()
        proxy.stop()
    log = server.log_path.read_text(errors="replace")
    assert "unhandled error" not in log, log


def test_a_connection_lost_during_commit_is_503_and_never_retried(
    pg_schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The in-doubt case made deterministic: COMMIT succeeds, then the link drops.

    The killed-backend test above can only hope to hit this window; here the
    driver commits and then reports a lost connection, as psycopg does when
    the server goes away before its answer arrives.
    """
    assert POSTGRES_URL
    url = server_url(POSTGRES_URL, pg_schema, application_name="ledger-in-doubt")
    runtime = Runtime.start(settings_for(url, tmp_path))
    try:
        service = runtime.service
        service.create_ledger(LEDGER)
        dialect = runtime.database.engine.dialect
        real_commit = dialect.do_commit
        lost = threading.Event()

        def commit_then_lose_the_answer(dbapi_connection: Any) -> None:
            real_commit(dbapi_connection)
            if not lost.is_set():
                lost.set()
                raise psycopg.OperationalError("server closed the connection unexpectedly")

        monkeypatch.setattr(dialect, "do_commit", commit_then_lose_the_answer)
        body = json.dumps(position(id=str(uuid.uuid4()))).encode()
        with pytest.raises(StorageUnavailable, match="during COMMIT"):
            service.append(LEDGER, body, actor="anonymous", idempotency_key="in-doubt")
        assert lost.is_set()
        # Committed exactly once, and not retried behind the client's back.
        assert service.get_ledger(LEDGER).size == 1
        replay = service.append(LEDGER, body, actor="anonymous", idempotency_key="in-doubt")
        assert replay.result.replayed
        assert service.get_ledger(LEDGER).size == 1
        # A failure before COMMIT keeps its plain 503: nothing was written.
        monkeypatch.setattr(dialect, "do_commit", real_commit)
        assert (
            service.append(LEDGER, json.dumps(position()).encode(), actor="anonymous")
            .result.receipts[0]
            .seq
            == 2
        )
    finally:
        runtime.close()
