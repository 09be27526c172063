"""Checkpoint timestamps stored from a real RFC 3161 authority, on every backend.

The background task's pass (``Timestamper.run_pass``) is called directly:
what it stores, what it refuses, and that the rows are append-only.
"""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa

from ledger.core import checkpoint as notes
from ledger.core.bundle import MEMBERS, TIMESTAMP_MEMBERS
from ledger.core.errors import NotFound
from ledger.core.timestamps import TsaTrust, verify_reply
from ledger.core.verification import VerificationReport, verify_bundle
from ledger.exporter import write_bundle
from ledger.integrity import check_ledger
from ledger.runtime import Runtime
from ledger.service import LedgerService
from ledger.store.timestamps import (
    StoredTimestamp,
    insert_timestamp,
    newest_timestamp,
    timestamp_at,
    timestamps_up_to,
)
from ledger.timestamping import Timestamper
from tests.storage import sample_events
from tests.tsa import LocalTsa, TsaAuthority, make_authority

pytestmark = pytest.mark.slow

LEDGER = "talks"


@dataclass(frozen=True)
class Authorities:
    tsa: LocalTsa
    trusted: TsaAuthority
    stranger: LocalTsa


@pytest.fixture(scope="module")
def authorities(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authorities]:
    base = tmp_path_factory.mktemp("tsa")
    trusted = make_authority(base / "trusted")
    with LocalTsa(trusted) as tsa, LocalTsa(make_authority(base / "other", "Other")) as other:
        yield Authorities(tsa=tsa, trusted=trusted, stranger=other)


def timestamper(service: LedgerService, url: str, authority: TsaAuthority) -> Timestamper:
    trust = TsaTrust.from_pem(authority.chain.read_bytes())
    return Timestamper(service=service, url=url, trust=trust, interval=5.0)


def run_pass(stamper: Timestamper) -> list[StoredTimestamp]:
    with httpx.Client(timeout=5) as client:
        return stamper.run_pass(client)


def body_at(service: LedgerService, size: int) -> bytes:
    note = service.checkpoint(LEDGER, size=size)
    return notes.SignedCheckpoint.from_text(note).checkpoint.body()


def test_a_pass_stores_a_verified_timestamp_of_the_newest_checkpoint(
    runtime: Runtime, authorities: Authorities
) -> None:
    service = runtime.service
    sample_events.fill(service, LEDGER, [3, 2])
    stamper = timestamper(service, authorities.tsa.url, authorities.trusted)
    stored = run_pass(stamper)
    assert [t.tree_size for t in stored] == [5]
    row = newest_timestamp(runtime.database, LEDGER)
    assert row == stored[0] and row.authority == authorities.tsa.url
    trust = TsaTrust.from_pem(authorities.trusted.chain.read_bytes())
    attestation = verify_reply(row.response, body_at(service, 5), trust)
    assert attestation.attested_at == row.attested_at
    # Nothing new: the next pass asks for nothing; after appends, the new head.
    assert run_pass(stamper) == []
    service.recorder.append(LEDGER, sample_events.drafts(4, start=5), actor="t")
    assert [t.tree_size for t in run_pass(stamper)] == [9]
    assert [t.tree_size for t in timestamps_up_to(runtime.database, LEDGER)] == [5, 9]
    assert [t.tree_size for t in timestamps_up_to(runtime.database, LEDGER, at_most=8)] == [5]
    assert newest_timestamp(runtime.database, LEDGER, at_most=8) == row
    assert newest_timestamp(runtime.database, LEDGER, at_most=4) is None
    assert timestamp_at(runtime.database, LEDGER, 9) is not None
    assert timestamp_at(runtime.database, LEDGER, 7) is None


def test_an_empty_ledger_is_not_timestamped(runtime: Runtime, authorities: Authorities) -> None:
    runtime.service.create_ledger(LEDGER)
    assert run_pass(timestamper(runtime.service, authorities.tsa.url, authorities.trusted)) == []


def test_a_reply_from_an_untrusted_authority_is_not_stored(
    runtime: Runtime, authorities: Authorities
) -> None:
    sample_events.fill(runtime.service, LEDGER, [2])
    stamper = timestamper(runtime.service, authorities.stranger.url, authorities.trusted)
    assert run_pass(stamper) == []
    assert newest_timestamp(runtime.database, LEDGER) is None


def test_an_unreachable_authority_stores_nothing_and_is_asked_again(
    runtime: Runtime, authorities: Authorities
) -> None:
    sample_events.fill(runtime.service, LEDGER, [2])
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    down = timestamper(runtime.service, f"http://127.0.0.1:{port}/", authorities.trusted)
    assert run_pass(down) == []
    # The next pass, with the authority back, stores the same checkpoint.
    down.url = authorities.tsa.url
    assert [t.tree_size for t in run_pass(down)] == [2]


def test_rows_are_written_once_and_never_changed(
    runtime: Runtime, authorities: Authorities
) -> None:
    sample_events.fill(runtime.service, LEDGER, [2])
    (row,) = run_pass(timestamper(runtime.service, authorities.tsa.url, authorities.trusted))
    assert insert_timestamp(runtime.database, LEDGER, row) is False
    with pytest.raises(NotFound):
        insert_timestamp(runtime.database, "nope", row)
    with pytest.raises(sa.exc.DatabaseError), runtime.database.write() as conn:
        conn.execute(sa.text("UPDATE checkpoint_timestamps SET attested_at = 'x'"))
    with pytest.raises(sa.exc.DatabaseError), runtime.database.write() as conn:
        conn.execute(sa.text("DELETE FROM checkpoint_timestamps"))
    assert newest_timestamp(runtime.database, LEDGER) == row


def test_the_background_thread_timestamps_without_being_called(
    runtime: Runtime, authorities: Authorities
) -> None:
    sample_events.fill(runtime.service, LEDGER, [3])
    stamper = timestamper(runtime.service, authorities.tsa.url, authorities.trusted)
    stamper.interval = 0.05
    stamper.start()
    try:
        found = poll(lambda: newest_timestamp(runtime.database, LEDGER))
    finally:
        stamper.stop()
    assert found.tree_size == 3


def poll(read: Callable[[], StoredTimestamp | None], timeout: float = 10.0) -> StoredTimestamp:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = read()
        if found is not None:
            return found
        time.sleep(0.02)
    raise AssertionError(f"nothing stored within {timeout} s")


# -- exports (format §8) ---------------------------------------------------------


def export_members(service: LedgerService, **kwargs: int) -> tuple[bytes, list[str]]:
    out = io.BytesIO()
    write_bundle(service, LEDGER, out, **kwargs)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue()), mode="r:") as archive:
        names = archive.getnames()
    return out.getvalue(), names


def verify(raw: bytes, runtime: Runtime, trust: TsaTrust | None) -> VerificationReport:
    key = runtime.keyring.primary().verifier
    report, _ = verify_bundle(io.BytesIO(raw), key, tsa_trust=trust)
    return report


def test_an_export_carries_the_newest_timestamp_at_or_below_its_size(
    runtime: Runtime, authorities: Authorities
) -> None:
    service = runtime.service
    sample_events.fill(service, LEDGER, [3])
    trust = TsaTrust.from_pem(authorities.trusted.chain.read_bytes())
    untimestamped, names = export_members(service)
    assert names == list(MEMBERS)
    report = verify(untimestamped, runtime, None)
    assert report.valid and report.timestamp is None
    refused = verify(untimestamped, runtime, trust)
    assert not refused.valid and "carries no timestamp" in str(refused.reason)

    (row,) = run_pass(timestamper(service, authorities.tsa.url, authorities.trusted))
    service.recorder.append(LEDGER, sample_events.drafts(4, start=3), actor="t")
    for kwargs, verified_size in (({}, 7), ({"to_seq": 3}, 3), ({"from_seq": 2, "to_seq": 5}, 5)):
        raw, names = export_members(service, **kwargs)
        assert names == [*MEMBERS, *TIMESTAMP_MEMBERS], kwargs
        report = verify(raw, runtime, trust)
        assert report.valid, report.reason
        assert report.timestamp is not None
        assert report.timestamp.to_dict() == {
            "tree_size": 3,
            "verified_size": verified_size,
            "attested_at": row.attested_at,
            "authority": "CN=Test TSA",
            "chain_checked": True,
        }
        assert report.timestamp.describe() in report.checks
    # Before the timestamped size, there is nothing to carry.
    assert export_members(service, to_seq=2)[1] == list(MEMBERS)


def test_an_export_s_timestamp_under_another_authority_or_edited_is_invalid(
    runtime: Runtime, authorities: Authorities
) -> None:
    service = runtime.service
    sample_events.fill(service, LEDGER, [3])
    run_pass(timestamper(service, authorities.tsa.url, authorities.trusted))
    raw, _ = export_members(service)
    stranger = TsaTrust.from_pem(authorities.stranger.authority.chain.read_bytes())
    report = verify(raw, runtime, stranger)
    assert not report.valid and "does not verify" in str(report.reason)
    # A flipped byte in the token's message imprint region: found without a chain too.
    reply = newest_timestamp(runtime.database, LEDGER)
    assert reply is not None
    digest = hashlib.sha256(body_at(service, 3)).digest()
    edited = raw.replace(digest, bytes(32))
    assert edited != raw
    report = verify(edited, runtime, None)
    assert not report.valid and "another message" in str(report.reason)


# -- ledger verify (the integrity check) ----------------------------------------------


def tamper(runtime: Runtime, sql: str, **params: object) -> None:
    """What someone with database access does: drop the guard, edit a timestamp row."""
    with runtime.database.write() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(sa.text("DROP TRIGGER checkpoint_timestamps_no_update"))
        else:
            conn.execute(
                sa.text("DROP TRIGGER checkpoint_timestamps_append_only ON checkpoint_timestamps")
            )
        conn.execute(sa.text(sql), params)


def test_the_integrity_check_checks_every_stored_timestamp(
    runtime: Runtime, authorities: Authorities
) -> None:
    service = runtime.service
    sample_events.fill(service, LEDGER, [2])
    stamper = timestamper(service, authorities.tsa.url, authorities.trusted)
    run_pass(stamper)
    service.recorder.append(LEDGER, sample_events.drafts(3, start=2), actor="t")
    run_pass(stamper)
    report = check_ledger(runtime, LEDGER)
    assert report.valid and report.checks[-1] == "2 checkpoint timestamps (not their chains)"
    trusted = TsaTrust.from_pem(authorities.trusted.chain.read_bytes())
    report = check_ledger(runtime, LEDGER, tsa_trust=trusted)
    assert report.valid and report.checks[-1] == "2 checkpoint timestamps (certificate chains)"
    stranger = TsaTrust.from_pem(authorities.stranger.authority.chain.read_bytes())
    report = check_ledger(runtime, LEDGER, tsa_trust=stranger)
    assert not report.valid and report.failure_seq == 2
    assert "timestamp of tree size 2: the timestamp does not verify" in str(report.reason)


@pytest.mark.parametrize("edit", ["attested_at", "response"])
def test_the_integrity_check_names_an_edited_timestamp_row(
    runtime: Runtime, authorities: Authorities, edit: str
) -> None:
    service = runtime.service
    sample_events.fill(service, LEDGER, [2])
    stamper = timestamper(service, authorities.tsa.url, authorities.trusted)
    (first,) = run_pass(stamper)
    service.recorder.append(LEDGER, sample_events.drafts(3, start=2), actor="t")
    (second,) = run_pass(stamper)
    if edit == "attested_at":
        sql = "UPDATE checkpoint_timestamps SET attested_at = :v WHERE tree_size = 5"
        tamper(runtime, sql, v="2001-01-01T00:00:00Z")
        expected = "says attested_at 2001-01-01T00:00:00Z"
    else:
        # A genuine token, of the checkpoint of 2, moved to the row of 5.
        sql = "UPDATE checkpoint_timestamps SET response = :v WHERE tree_size = 5"
        tamper(runtime, sql, v=first.response)
        expected = "another message than this checkpoint body"
    report = check_ledger(runtime, LEDGER)
    assert not report.valid and report.failure_seq == 5
    assert expected in str(report.reason) and "tree size 5" in str(report.reason)
    assert second.tree_size == 5
