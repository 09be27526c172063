"""RFC 3161 timestamps of a checkpoint body, against a real local authority.

The tokens come from ``openssl ts -reply`` behind HTTP (tests/tsa.py): the
core's checks are exercised on real replies, never on hand-made DER.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ledger.core.checkpoint import Checkpoint
from ledger.core.errors import TimestampInvalid
from ledger.core.timestamps import (
    QUERY_MEDIA_TYPE,
    REPLY_MEDIA_TYPE,
    TsaTrust,
    timestamp_request,
    verify_reply,
)
from tests.tsa import LocalTsa, TsaAuthority, make_authority

pytestmark = pytest.mark.slow

BODY = Checkpoint(origin="ledger.test/t", tree_size=3, root=bytes(32), head_hash="ab" * 32).body()


@dataclass(frozen=True)
class Authorities:
    tsa: LocalTsa
    trusted: TsaAuthority
    stranger: TsaAuthority


@pytest.fixture(scope="module")
def authorities(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authorities]:
    base = tmp_path_factory.mktemp("tsa")
    trusted = make_authority(base / "trusted")
    stranger = make_authority(base / "stranger", "Stranger TSA")
    with LocalTsa(trusted) as tsa:
        yield Authorities(tsa=tsa, trusted=trusted, stranger=stranger)


def ask(url: str, body: bytes) -> tuple[bytes, int]:
    request = timestamp_request(body)
    reply = httpx.post(url, content=request.der, headers={"Content-Type": QUERY_MEDIA_TYPE})
    reply.raise_for_status()
    assert reply.headers["Content-Type"] == REPLY_MEDIA_TYPE
    return reply.content, request.nonce


def trust(authority: TsaAuthority) -> TsaTrust:
    return TsaTrust.from_pem(authority.chain.read_bytes())


def test_a_real_token_over_the_body_verifies_and_gives_the_attested_time(
    authorities: Authorities,
) -> None:
    reply, nonce = ask(authorities.tsa.url, BODY)
    attestation = verify_reply(reply, BODY, trust(authorities.trusted), nonce=nonce)
    assert attestation.authority == "CN=Test TSA" and attestation.chain_checked
    assert attestation.attested_at.endswith("Z") and attestation.attested_at[:2] == "20"


def test_the_request_hashes_the_body_with_sha256_and_asks_for_a_nonce() -> None:
    first, second = timestamp_request(BODY), timestamp_request(BODY)
    assert hashlib.sha256(BODY).digest() in first.der
    assert first.nonce != second.nonce


def test_a_token_for_another_body_fails(authorities: Authorities) -> None:
    other = Checkpoint(origin="ledger.test/t", tree_size=4, root=bytes(32), head_hash="ab" * 32)
    reply, nonce = ask(authorities.tsa.url, other.body())
    with pytest.raises(TimestampInvalid, match="another message"):
        verify_reply(reply, BODY, trust(authorities.trusted), nonce=nonce)


def test_a_token_with_another_nonce_fails(authorities: Authorities) -> None:
    reply, nonce = ask(authorities.tsa.url, BODY)
    with pytest.raises(TimestampInvalid, match="nonce"):
        verify_reply(reply, BODY, trust(authorities.trusted), nonce=nonce + 1)


def test_a_token_checked_under_another_authority_fails(authorities: Authorities) -> None:
    reply, _ = ask(authorities.tsa.url, BODY)
    with pytest.raises(TimestampInvalid, match="does not verify"):
        verify_reply(reply, BODY, trust(authorities.stranger))


def test_the_right_certificate_under_another_root_fails(authorities: Authorities) -> None:
    reply, _ = ask(authorities.tsa.url, BODY)
    right = trust(authorities.trusted)
    swapped = TsaTrust(
        certificate=right.certificate,
        intermediates=right.intermediates,
        root=trust(authorities.stranger).root,
    )
    with pytest.raises(TimestampInvalid, match="does not verify"):
        verify_reply(reply, BODY, swapped)


def test_without_a_chain_only_the_imprint_is_checked(authorities: Authorities) -> None:
    reply, _ = ask(authorities.tsa.url, BODY)
    attestation = verify_reply(reply, BODY, None)
    assert not attestation.chain_checked and attestation.authority == "CN=Test TSA"
    with pytest.raises(TimestampInvalid, match="another message"):
        verify_reply(reply, BODY + b"x", None)


@pytest.mark.parametrize("reply", [b"", b"\x30\x03\x02\x01\x00", b"not DER at all"])
def test_bytes_that_are_not_a_reply_fail(reply: bytes) -> None:
    with pytest.raises(TimestampInvalid):
        verify_reply(reply, BODY, None)


def test_a_chain_file_needs_a_certificate_and_its_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no PEM certificate"):
        TsaTrust.from_pem(b"hello")
    authority = make_authority(tmp_path / "single")
    with pytest.raises(ValueError, match="at least two"):
        TsaTrust.from_pem((tmp_path / "single" / "tsa.pem").read_bytes())
    assert trust(authority).subject == "CN=Test TSA"


def test_a_refusal_from_the_authority_fails_with_its_reason(
    authorities: Authorities, tmp_path: Path
) -> None:
    # SHA-1 is not among the digests the local authority accepts: it answers "rejection".
    (tmp_path / "body").write_bytes(BODY)
    argv = ["openssl", "ts", "-query", "-data", str(tmp_path / "body"), "-sha1", "-cert"]
    query = subprocess.run(argv, capture_output=True, check=True, timeout=30).stdout
    headers = {"Content-Type": QUERY_MEDIA_TYPE}
    refusal = httpx.post(authorities.tsa.url, content=query, headers=headers)
    assert refusal.status_code == 200
    with pytest.raises(TimestampInvalid, match="refused the timestamp"):
        verify_reply(refusal.content, BODY, trust(authorities.trusted))
