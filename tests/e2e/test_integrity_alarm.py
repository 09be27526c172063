"""A server that finds its ledger's head tampered with stops appending to it.

Real server processes on a real database (SQLite and PostgreSQL): the head
row is rolled back or pointed at a wrong hash while the server runs, or the
last record is rewritten (the append-only trigger lifted, as an attacker
with database access would) while it is stopped. Appends then answer a 503
problem naming the seq and write nothing, the server logs an integrity
alarm, and a restarted server raises the alarm at start, before any request.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from ledger.core.chain import verify_chain
from tests.conftest import position
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow
LEDGER = "watched"
EVENTS = f"/v1/ledgers/{LEDGER}/events"
ALARM = "integrity alarm"


def append(server: ServerProcess, events: list[dict[str, object]]) -> httpx.Response:
    return httpx.post(f"{server.url}{EVENTS}", json=events, timeout=30)


def stored(database_url: str) -> list[tuple[int, str]]:
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT seq, record_hash FROM records ORDER BY seq")).all()
    engine.dispose()
    return [(int(seq), str(digest)) for seq, digest in rows]


def execute(database_url: str, *statements: str, **params: object) -> None:
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement), params)
    engine.dispose()


def roll_back_head(database_url: str) -> None:
    seq, digest = stored(database_url)[1]
    execute(
        database_url,
        "UPDATE ledgers SET head_seq = :seq, head_hash = :digest",
        seq=seq,
        digest=digest,
    )


def point_head_at_a_wrong_hash(database_url: str) -> None:
    execute(database_url, "UPDATE ledgers SET head_hash = :digest", digest="f" * 64)


def edit_last_record(database_url: str) -> None:
    """Lift the append-only guard, as an attacker with database access would, and
    rewrite record 4 (the last)."""
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(sa.text("DROP TRIGGER records_no_update"))
        else:
            conn.execute(sa.text("DROP TRIGGER records_append_only ON records"))
        select = sa.text("SELECT canonical FROM records WHERE seq = 4")
        canonical = bytes(conn.execute(select).scalar_one())
        edited = canonical.replace(b'"stance":"oppose"', b'"stance":"reject"')
        assert edited != canonical
        conn.execute(sa.text("UPDATE records SET canonical = :c WHERE seq = 4"), {"c": edited})
    engine.dispose()


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url=database_url, data_dir=tmp_path)
    httpx.post(f"{process.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
    assert append(process, [position(), position(party="UA")]).status_code == 201
    assert append(process, [position(party="EU"), position()]).status_code == 201
    yield process
    process.stop()


def assert_refused(server: ServerProcess, database_url: str, seq: int) -> None:
    before = stored(database_url)
    response = append(server, [position(party="RU")])
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/problems/integrity-alarm"
    assert problem["seq"] == seq
    assert f"seq {seq}" in problem["detail"] or f"record {seq}" in problem["detail"]
    assert stored(database_url) == before
    assert ALARM in server.log_path.read_text()


def restart(server: ServerProcess, database_url: str, tmp_path: Path) -> ServerProcess:
    server.stop()
    return ServerProcess(database_url=database_url, data_dir=tmp_path)


@pytest.mark.parametrize(
    "tamper",
    [roll_back_head, point_head_at_a_wrong_hash],
    ids=["head row rolled back", "head row naming a wrong hash"],
)
def test_a_head_row_tampered_while_serving_stops_appends(
    server: ServerProcess,
    database_url: str,
    tmp_path: Path,
    tamper: Callable[[str], None],
) -> None:
    tamper(database_url)
    assert_refused(server, database_url, seq=4)
    assert_refused(server, database_url, seq=4)  # and stays refused

    again = restart(server, database_url, tmp_path)
    try:
        assert ALARM in again.log_path.read_text()  # found at start, before any request
        assert_refused(again, database_url, seq=4)
    finally:
        again.stop()


def test_a_last_record_edited_while_stopped_is_found_at_start(
    server: ServerProcess, database_url: str, tmp_path: Path
) -> None:
    server.stop()
    edit_last_record(database_url)
    again = ServerProcess(database_url=database_url, data_dir=tmp_path)
    try:
        log = again.log_path.read_text()
        assert ALARM in log and "seq 4" in log
        assert_refused(again, database_url, seq=4)
    finally:
        again.stop()


def test_appends_by_another_server_process_are_accepted(
    server: ServerProcess, database_url: str, tmp_path: Path
) -> None:
    other = ServerProcess(database_url=database_url, data_dir=tmp_path)
    try:
        for n in range(6):
            for process in (server, other, other):
                event = position(id=str(uuid.uuid4()))
                event["data"] = {"stance": "oppose", "summary": f"{process.port} #{n}"}
                response = append(process, [event])
                assert response.status_code == 201, response.text
        lines = httpx.get(
            f"{server.url}{EVENTS}", headers={"Accept": "application/x-ndjson"}
        ).content.splitlines()
        assert len(lines) == 4 + 18
        verify_chain(lines, ledger=LEDGER)
        assert ALARM not in server.log_path.read_text() + other.log_path.read_text()
    finally:
        other.stop()
