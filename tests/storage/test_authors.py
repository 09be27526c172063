"""Author signatures on every backend (format §1.4): the server appends what the
registry vouches for, refuses the rest whole, and keeps the registry as the
records make it, across processes."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.core.authors import sign_event
from ledger.core.errors import (
    AuthorNotAllowed,
    AuthorSignatureRejected,
    Conflict,
    InvalidEvent,
    InvalidParameter,
    LedgerError,
)
from ledger.core.signing import VerifierKey
from ledger.integrity import check_ledger
from ledger.runtime import Runtime
from ledger.service import LedgerService
from tests.conftest import settings_for

LEDGER = "signed"
DESK = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()


def key_string(private: Ed25519PrivateKey, name: str = "ua-desk") -> str:
    return VerifierKey.from_public_key(name, private.public_key()).to_string()


def event(**members: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": "position.stated",
        "party": "UA",
        "topic": "revenue-share",
        "occurred_at": "2025-02-20T00:00:00Z",
        "data": {"stance": "demand", "summary": "Half of the new revenue to a joint fund."},
        "source": {"name": "Ministry of Economy", "kind": "official"},
        **members,
    }


def signed(
    private: Ed25519PrivateKey = DESK, name: str = "ua-desk", ledger: str = LEDGER, **members: Any
) -> dict[str, Any]:
    sent = event(**members)
    return {**sent, "author": sign_event(private, name, ledger, sent)}


def post(service: LedgerService, body: Any, ledger: str = LEDGER) -> list[int]:
    outcome = service.append(ledger, json.dumps(body).encode(), actor="desk-token")
    return [receipt.seq for receipt in outcome.result.receipts]


def head(service: LedgerService, ledger: str = LEDGER) -> int:
    return service.get_ledger(ledger).size


@pytest.fixture
def registered(service: LedgerService) -> LedgerService:
    service.create_ledger(LEDGER)
    service.register_author(LEDGER, name="ua-desk", verifier_key=key_string(DESK), actor="admin")
    return service


def test_a_registered_desks_signed_event_is_kept_with_its_signature(
    registered: LedgerService,
) -> None:
    body = signed()
    (seq,) = post(registered, body)
    stored = json.loads(registered.get_record(LEDGER, seq))
    assert stored["author"] == body["author"]
    report = check_ledger(registered, LEDGER)
    assert report.valid, report.reason
    assert any("1 signed record checked" in check for check in report.checks)


@pytest.mark.parametrize(
    ("body", "refusal", "field"),
    [
        (lambda: signed(OTHER), AuthorNotAllowed, "author"),  # another key, same name
        (lambda: signed(name="eu-desk"), AuthorNotAllowed, "author"),
        (lambda: signed(ledger="elsewhere"), AuthorSignatureRejected, "author"),
        (lambda: {**signed(), "id": str(uuid.uuid4())}, AuthorSignatureRejected, "author"),
        (
            lambda: [event(), signed(), {**signed(), "topic": "x"}],
            AuthorSignatureRejected,
            "[2].author",
        ),
        (lambda: {**signed(), "occurred_at": "2025-02-20"}, InvalidEvent, "occurred_at"),
        (lambda: {k: v for k, v in signed().items() if k != "id"}, InvalidEvent, "id"),
    ],
    ids=["other-key", "unknown", "other-ledger", "replayed", "batch", "date-only", "no-id"],
)
def test_a_signature_the_registry_does_not_vouch_for_refuses_the_request_whole(
    registered: LedgerService, body: Any, refusal: type[LedgerError], field: str
) -> None:
    before = head(registered)
    with pytest.raises(refusal) as refused:
        post(registered, body())
    assert getattr(refused.value, "field", None) == field
    assert head(registered) == before


def test_a_revoked_desk_signs_no_more_and_its_old_records_stay_valid(
    registered: LedgerService,
) -> None:
    post(registered, signed())
    registered.revoke_author(LEDGER, name="ua-desk", actor="admin", reason="key lost")
    with pytest.raises(AuthorNotAllowed, match="revoked"):
        post(registered, signed())
    registered.register_author(
        LEDGER, name="ua-desk", verifier_key=key_string(OTHER), actor="admin"
    )
    post(registered, signed(OTHER))
    assert check_ledger(registered, LEDGER).valid
    entries = [entry.to_dict() for entry in registered.authors(LEDGER)]
    assert [(e["name"], e["status"], e["registered_seq"]) for e in entries] == [
        ("ua-desk", "active", 4)
    ]


def test_registration_refuses_a_second_active_key_and_a_mislabelled_one(
    registered: LedgerService,
) -> None:
    with pytest.raises(Conflict, match="already registered"):
        registered.register_author(
            LEDGER, name="ua-desk", verifier_key=key_string(OTHER), actor="admin"
        )
    with pytest.raises(InvalidParameter) as mislabelled:
        registered.register_author(
            LEDGER, name="eu-desk", verifier_key=key_string(OTHER), actor="admin"
        )
    assert mislabelled.value.field == "verifier_key"
    with pytest.raises(InvalidEvent, match="server only"):
        post(registered, event(type="author.registered", data={"name": "x", "verifier_key": "y"}))


def test_a_rebuild_reproduces_the_registry_and_the_audit_holds_it_to_the_records(
    registered: LedgerService,
) -> None:
    post(registered, signed())
    registered.revoke_author(LEDGER, name="ua-desk", actor="admin")

    def rows() -> list[tuple[Any, ...]]:
        with registered.recorder.db.read() as conn:
            found = conn.execute(sa.text("SELECT seq, name, verifier_key FROM author_keys"))
            return [tuple(row) for row in found]

    kept = rows()
    assert [row[:2] for row in kept] == [(1, "ua-desk"), (3, "ua-desk")]
    registered.rebuild_projections(LEDGER, progress=lambda _done: None)
    assert rows() == kept
    assert check_ledger(registered, LEDGER).valid


def test_a_revocation_by_another_process_binds_this_one_at_once(
    registered: LedgerService, migrated_url: str, tmp_path: Path
) -> None:
    post(registered, signed())  # this process now holds the head it wrote
    other = Runtime.start(settings_for(migrated_url, tmp_path / "other"), migrate=False)
    try:
        other.service.revoke_author(LEDGER, name="ua-desk", actor="admin")
    finally:
        other.close()
    with pytest.raises(AuthorNotAllowed, match="revoked"):
        post(registered, signed())


@pytest.mark.parametrize(
    "sql", ["UPDATE author_keys SET verifier_key = NULL", "DELETE FROM author_keys"]
)
def test_the_registry_table_refuses_direct_edits(registered: LedgerService, sql: str) -> None:
    # A desk "revoked" by hand would let the server refuse it while the records
    # say otherwise; only the records, and a rebuild from them, change the rows.
    with (
        pytest.raises(sa.exc.DBAPIError, match="author_keys is forbidden"),
        registered.recorder.db.engine.begin() as conn,
    ):
        conn.execute(sa.text(sql))
    post(registered, signed())
