"""The signing identity: origin and key name are stored with the key, once per key."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.core.checkpoint import SignedCheckpoint
from ledger.core.errors import IdentityMismatch
from ledger.core.signing import Signer, VerifierKey
from ledger.integrity import check_ledger
from ledger.runtime import Runtime
from ledger.store.database import Database
from ledger.store.recorder import Recorder
from tests.conftest import settings_for
from tests.storage import sample_events


def test_a_public_key_is_registered_once_whatever_its_name(runtime: Runtime) -> None:
    (published,) = runtime.registry.all_keys()
    key = VerifierKey.from_string(published.verifier_key)
    renamed = VerifierKey("another-host", key.public_key)
    assert not runtime.registry.register(renamed, origin="another-host", now="2030-01-01T00:00:00Z")
    assert [k.verifier_key for k in runtime.registry.all_keys()] == [published.verifier_key]


def test_a_first_start_without_an_origin_stores_a_stable_one(
    database_url: str, tmp_path: Path
) -> None:
    first = Runtime.start(settings_for(database_url, tmp_path, origin=None))
    try:
        identity = first.registry.identity()
        assert identity is not None
        first.service.create_ledger("talks")
        origin = SignedCheckpoint.from_text(first.service.checkpoint("talks")).checkpoint.origin
    finally:
        first.close()
    # Derived from the key, not the machine: the same on any host.
    assert identity.origin.startswith("ledger-") and origin == f"{identity.origin}/talks"
    assert identity.name == identity.origin
    again = Runtime.start(settings_for(database_url, tmp_path, origin=None))
    try:
        assert again.registry.identity() == identity
        assert again.service.recorder.checkpoint_origin("talks") == origin
    finally:
        again.close()


def test_a_start_configured_with_another_origin_or_name_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    Runtime.start(settings_for(database_url, tmp_path, origin="a.example")).close()
    with pytest.raises(IdentityMismatch) as refused:
        Runtime.start(settings_for(database_url, tmp_path, origin="b.example"))
    assert "a.example" in str(refused.value) and "b.example" in str(refused.value)
    assert "ledger keys rotate --origin b.example" in str(refused.value)
    with pytest.raises(IdentityMismatch) as renamed:
        Runtime.start(settings_for(database_url, tmp_path, origin="a.example", key_name="k2"))
    assert "--name k2" in str(renamed.value)
    # The stored identity alone, or restated as stored, starts.
    Runtime.start(settings_for(database_url, tmp_path, origin=None)).close()
    Runtime.start(settings_for(database_url, tmp_path, origin=None, key_name="a.example")).close()


def test_checkpoints_signed_under_a_names_the_key_no_longer_goes_by_still_audit(
    runtime: Runtime,
) -> None:
    # What a database holds after a host-name change re-labelled the key: the
    # migration keeps one name per key, the checkpoints keep the other.
    service = runtime.service
    service.create_ledger("talks")
    with runtime.database.read() as conn:
        (signer,) = service.recorder.signers(conn)
    relabelled = Signer(name="old-container-id", private_key=signer.private_key)

    def signers(conn: Connection) -> list[Signer]:
        return [relabelled]

    other = Recorder(
        database=runtime.database,
        origin="ledger.test",
        signers=signers,
        projections=service.recorder.projections,
    )
    other.append("talks", sample_events.drafts(3), actor="t")
    other.close()
    service.recorder.append("talks", sample_events.drafts(2, start=3), actor="t")
    report = check_ledger(runtime, "talks")
    assert report.valid, report.reason


def test_the_migration_keeps_one_registration_per_public_key(database_url: str) -> None:
    database = Database(url=database_url)
    key = Signer.generate("first-host").verifier
    other = Signer.generate("other").verifier
    rows = [
        (VerifierKey("first-host", key.public_key), "active", "2026-01-01T00:00:00.000000Z"),
        (VerifierKey("second-host", key.public_key), "active", "2026-02-01T00:00:00.000000Z"),
        (other, "retired", "2026-01-15T00:00:00.000000Z"),
    ]
    try:
        database.migrate("0007")
        with database.write() as conn:
            for verifier, status, since in rows:
                conn.execute(
                    sa.text(
                        "INSERT INTO signing_keys (key_id, name, verifier_key, status,"
                        " not_before) VALUES (:i, :n, :v, :s, :t)"
                    ),
                    {
                        "i": verifier.key_id_hex,
                        "n": verifier.name,
                        "v": verifier.to_string(),
                        "s": status,
                        "t": since,
                    },
                )
        database.migrate("head")
        with database.read() as conn:
            kept = conn.execute(
                sa.text("SELECT name, origin, status FROM signing_keys ORDER BY not_before")
            ).all()
            assert [tuple(row) for row in kept] == [
                ("first-host", "first-host", "active"),
                ("other", "other", "retired"),
            ]
            with pytest.raises(sa.exc.IntegrityError):
                conn.execute(
                    sa.text(
                        "INSERT INTO signing_keys (key_id, name, verifier_key, public_key,"
                        " origin, status, not_before) VALUES (:i, 'third', :v, :p, 'x',"
                        " 'active', '2026-03-01T00:00:00.000000Z')"
                    ),
                    {
                        "i": VerifierKey("third", key.public_key).key_id_hex,
                        "v": VerifierKey("third", key.public_key).to_string(),
                        "p": key.public_key.hex(),
                    },
                )
    finally:
        database.dispose()


def test_a_rotation_to_a_new_origin_signs_under_both_names_then_moves_the_origin(
    database_url: str, tmp_path: Path
) -> None:
    running = Runtime.start(settings_for(database_url, tmp_path, origin="a.example"))
    try:
        running.service.create_ledger("talks")
        rotation = running.service.rotate_key(actor="admin", origin="b.example")
        assert rotation.new_key.name == "b.example" != rotation.old_key.name
        note = SignedCheckpoint.from_text(running.service.checkpoint("talks"))
        # This process keeps its origin until it restarts; it already signs
        # with the new key, under the name the key was registered with.
        assert note.checkpoint.origin == "a.example/talks"
        assert sorted(s.name for s in note.signatures) == ["a.example", "b.example"]
        assert {k.origin for k in running.registry.all_keys()} == {"a.example", "b.example"}
    finally:
        running.close()
    with pytest.raises(IdentityMismatch):
        Runtime.start(settings_for(database_url, tmp_path, origin="a.example"))
    moved = Runtime.start(settings_for(database_url, tmp_path, origin="b.example"))
    try:
        assert moved.service.recorder.checkpoint_origin("talks") == "b.example/talks"
        moved.service.recorder.append("talks", sample_events.drafts(1), actor="t")
        assert check_ledger(moved, "talks").valid
    finally:
        moved.close()
