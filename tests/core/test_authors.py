"""Author signatures (format §1.4): the signed bytes, the registry's rules, and
what a verifier walking the records makes of them."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.authors import (
    SIGNATURE_CONTEXT,
    AuthorMark,
    AuthorRegistry,
    AuthorRuleBroken,
    sign_event,
    signed_bytes,
)
from ledger.core.errors import AuthorSignatureInvalid, BundleInvalid, MalformedRecord
from ledger.core.hashing import GENESIS_PREV
from ledger.core.record_lines import check_run, parse_line
from ledger.core.records import EventDraft, Record
from ledger.core.signing import VerifierKey
from ledger.core.verification import LogVerifier
from tests.core.test_records import objects, text

LEDGER = "talks"
DESK = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(64, 96)))


def key_of(private: Ed25519PrivateKey, name: str = "ua-desk") -> VerifierKey:
    return VerifierKey.from_public_key(name, private.public_key())


def event(**members: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "0193f0c2-5a1e-7c4d-8b2a-3e4f5a6b7c8f",
        "type": "position.stated",
        "party": "UA",
        "topic": "revenue-share",
        "occurred_at": "2025-02-20T00:00:00Z",
        "data": {"stance": "demand", "summary": "Half of the new revenue to a joint fund."},
    }
    return {**base, **members}


events = st.fixed_dictionaries(
    {
        "id": st.uuids().map(str),
        "type": st.sampled_from(["position.stated", "draft.presented"]) | text,
        "occurred_at": st.sampled_from(["2025-02-24T00:00:00Z", "2025-04-30T17:05:09Z"]),
        "data": objects,
    },
    optional={"party": text, "topic": text, "source": objects},
)


class Log:
    """Records chained as the server seals them, for a verifier to walk."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def add(self, sent: dict[str, Any], *, actor: str = "t") -> Record:
        prev = self.records[-1].hash() if self.records else GENESIS_PREV
        draft = EventDraft.of(
            id=sent["id"],
            type=sent["type"],
            occurred_at=sent["occurred_at"],
            data=sent["data"],
            party=sent.get("party"),
            topic=sent.get("topic"),
            source=sent.get("source"),
            author=sent.get("author"),
        )
        record = draft.seal(
            ledger=LEDGER,
            seq=len(self.records) + 1,
            prev=prev,
            recorded_at="2026-12-07T10:00:00.000000Z",
            actor=actor,
        )
        self.records.append(record)
        return record

    def register(self, key: VerifierKey) -> Record:
        data = {"name": key.name, "verifier_key": key.to_string()}
        return self.add(event(id=_next_id(self), type="author.registered", data=data))

    def revoke(self, name: str) -> Record:
        return self.add(event(id=_next_id(self), type="author.revoked", data={"name": name}))

    def signed(self, private: Ed25519PrivateKey, name: str = "ua-desk", **members: Any) -> Record:
        sent = event(id=_next_id(self), **members)
        return self.add({**sent, "author": sign_event(private, name, LEDGER, sent)})

    def lines(self) -> list[bytes]:
        return [record.canonical() for record in self.records]

    def walk(self, *, from_seq: int = 1) -> LogVerifier:
        start = self.records[from_seq - 1]
        log = LogVerifier(ledger=LEDGER, from_seq=from_seq, first_prev=start.prev)
        for line in self.lines()[from_seq - 1 :]:
            log.add_line(line)
        return log


def _next_id(log: Log) -> str:
    return f"0193f0c2-5a1e-7c4d-8b2a-{len(log.records) + 1:012x}"


@settings(max_examples=150)
@given(sent=events, ledger=st.sampled_from(["talks", "us-ua-minerals-2025"]))
def test_a_signature_covers_every_sent_member_and_the_ledger(
    sent: dict[str, Any], ledger: str
) -> None:
    mark = AuthorMark.from_value(sign_event(DESK, "ua-desk", ledger, sent))
    registry = AuthorRegistry()
    registry.register(key_of(DESK), seq=1)
    registry.check(mark, signed_bytes({**sent, "ledger": ledger}))
    changed = [
        {**sent, "ledger": ledger + "-2"},
        {**sent, "ledger": ledger, "id": "00000000-0000-4000-8000-000000000000"},
        {**sent, "ledger": ledger, "data": {**sent["data"], "added": 1}},
        {**sent, "ledger": ledger, "occurred_at": "2025-02-25T00:00:00Z"},
        {**sent, "ledger": ledger, "party": sent.get("party", "") + "X"},
    ]
    for other in changed:
        with pytest.raises(AuthorRuleBroken) as refused:
            registry.check(mark, signed_bytes(other))
        assert refused.value.kind == "signature"


def test_the_members_the_server_assigns_are_not_signed() -> None:
    record = {**event(), "ledger": LEDGER, "seq": 7, "recorded_at": "x", "actor": "a", "prev": "p"}
    assert signed_bytes(record) == signed_bytes({**event(), "ledger": LEDGER})
    assert signed_bytes(record).startswith(SIGNATURE_CONTEXT)


@pytest.mark.parametrize(
    "value",
    [
        "ua-desk",
        {"name": "ua-desk", "key_id": "0a1b2c3d"},
        {"name": "ua-desk", "key_id": "0a1b2c3d", "sig": "A" * 86 + "==", "extra": 1},
        {"name": "ua desk", "key_id": "0a1b2c3d", "sig": "A" * 86 + "=="},
        {"name": "ua-desk", "key_id": "0A1B2C3D", "sig": "A" * 86 + "=="},
        {"name": "ua-desk", "key_id": "0a1b2c3d", "sig": "A" * 86},
        {"name": "ua-desk", "key_id": "0a1b2c3d", "sig": "A" * 85 + "B=="},  # not canonical
        {"name": "ua-desk", "key_id": "0a1b2c3d", "sig": base64.b64encode(b"x" * 63).decode()},
    ],
)
def test_a_malformed_author_member_is_refused_as_malformed(value: Any) -> None:
    with pytest.raises(AuthorRuleBroken) as refused:
        AuthorMark.from_value(value)
    assert refused.value.kind == "malformed"


def test_the_registry_knows_an_author_from_its_registration_to_its_revocation() -> None:
    registry = AuthorRegistry()
    message = signed_bytes({**event(), "ledger": LEDGER})
    mark = AuthorMark.from_value(sign_event(DESK, "ua-desk", LEDGER, event()))
    with pytest.raises(AuthorRuleBroken, match="not registered") as unknown:
        registry.check(mark, message)
    assert unknown.value.kind == "unknown"
    registry.register(key_of(DESK), seq=1)
    registry.check(mark, message)
    with pytest.raises(AuthorRuleBroken) as twice:
        registry.register(key_of(OTHER), seq=2)
    assert twice.value.kind == "registered"
    registry.revoke("ua-desk", seq=3)
    with pytest.raises(AuthorRuleBroken) as revoked:
        registry.check(mark, message)
    assert revoked.value.kind == "revoked"
    with pytest.raises(AuthorRuleBroken):
        registry.revoke("ua-desk", seq=4)
    # A new key after the revocation: the old key's id no longer matches.
    registry.register(key_of(OTHER), seq=5)
    with pytest.raises(AuthorRuleBroken) as old_key:
        registry.check(mark, message)
    assert old_key.value.kind == "key"
    registry.check(AuthorMark.from_value(sign_event(OTHER, "ua-desk", LEDGER, event())), message)


def test_a_signature_checked_elsewhere_counts_only_under_the_registered_key() -> None:
    registry = AuthorRegistry()
    registry.register(key_of(DESK), seq=1)
    mark = AuthorMark.from_value(sign_event(DESK, "ua-desk", LEDGER, event()))
    asked: list[bool] = []

    def message() -> bytes:
        asked.append(True)
        return signed_bytes({**event(), "ledger": LEDGER})

    registry.check(mark, message, checked_with=key_of(DESK).public_key)
    assert not asked  # the registered key's check was done: the bytes are not even built
    # Checked with a key that is no longer (or never was) the registered one: verified again.
    with pytest.raises(AuthorRuleBroken) as refused:
        registry.check(mark, b"other bytes", checked_with=key_of(OTHER).public_key)
    assert refused.value.kind == "signature"
    registry.check(mark, message, checked_with=key_of(OTHER).public_key)
    assert asked == [True]


def test_a_verifier_checks_each_signature_against_the_registry_before_it() -> None:
    log = Log()
    log.register(key_of(DESK))
    log.signed(DESK)
    log.add(event(id=_next_id(log)))
    log.revoke("ua-desk")
    walked = log.walk()
    assert walked.authors.by_author == {"ua-desk": 1}
    assert walked.authors.describe(walked.count).endswith("(ua-desk: 1); 3 records unsigned")


@pytest.mark.parametrize(
    "forge",
    ["before registration", "after revocation", "another key", "edited", "unknown author"],
)
def test_a_verifier_names_the_record_whose_signature_fails(forge: str) -> None:
    log = Log()
    if forge != "before registration":
        log.register(key_of(DESK))
    if forge == "after revocation":
        log.revoke("ua-desk")
    if forge == "another key":
        bad = log.signed(OTHER)
    elif forge == "unknown author":
        bad = log.signed(DESK, name="eu-desk")
    else:
        bad = log.signed(DESK)
    if forge == "edited":
        edited = copy.deepcopy(bad.to_dict())
        edited["data"]["summary"] = "A third of the revenue."
        log.records[-1] = Record.from_dict(edited)
    if forge == "before registration":
        log.register(key_of(DESK))
    with pytest.raises(AuthorSignatureInvalid) as failed:
        log.walk()
    assert failed.value.seq == bad.seq


def test_a_registry_record_that_breaks_the_rules_fails_at_its_seq() -> None:
    log = Log()
    log.register(key_of(DESK))
    twice = log.register(key_of(OTHER))
    with pytest.raises(AuthorSignatureInvalid, match="already registered") as failed:
        log.walk()
    assert failed.value.seq == twice.seq


def test_a_run_after_seq_1_leaves_signatures_unchecked_and_says_so() -> None:
    log = Log()
    log.register(key_of(DESK))
    log.signed(DESK)
    log.signed(DESK)
    walked = log.walk(from_seq=2)
    assert walked.authors.unchecked == 2
    assert "2 signed records NOT checked" in walked.authors.describe(walked.count)


def test_a_bundle_format_without_authors_refuses_a_signed_record() -> None:
    log = Log()
    log.register(key_of(DESK))
    signed = log.signed(DESK)
    verifier = LogVerifier(ledger=LEDGER, unsigned_format="ledger-export/2")
    verifier.add_line(log.lines()[0])
    with pytest.raises(BundleInvalid) as refused:
        verifier.add_line(log.lines()[1])
    assert refused.value.seq == signed.seq


def test_the_quick_reading_leaves_signed_lines_to_the_strict_one() -> None:
    log = Log()
    registration = log.register(key_of(DESK))
    signed = log.signed(DESK)
    assert parse_line(signed.canonical()) is None
    assert parse_line(registration.canonical()) is not None
    run = check_run(registration.canonical(), ledger=LEDGER, first_seq=1, merkle=True)
    assert run is not None and run.registrations == 1
    # The strict reading refuses a malformed member, as the format says.
    broken = signed.to_dict()
    broken["author"] = {**broken["author"], "sig": "AA=="}
    with pytest.raises(MalformedRecord, match="sig"):
        Record.from_dict(broken)
