"""The hash chain (format §1-2, §5): canonical bytes, record hashes,
and a verifier that names the first record at fault by its ``seq``."""

from __future__ import annotations

import hashlib
import itertools
import json
import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.chain import ChainVerifier, verify_chain
from ledger.core.errors import ChainBroken, MalformedRecord, VerificationError
from ledger.core.hashing import (
    GENESIS_PREV,
    empty_root,
    leaf_hash,
    node_hash,
    record_hash,
)
from ledger.core.records import EventDraft, Record
from ledger.core.times import format_occurred_at, format_recorded_at

LEDGER = "us-ua-minerals-2025"
SIZE = 5
Mutation = Callable[[dict[str, Any]], None]


# -- building chains -----------------------------------------------------------


def draft(n: int, *, data: dict[str, Any] | None = None) -> EventDraft:
    return EventDraft.of(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"event-{n}")),
        type="position.stated",
        occurred_at=f"2025-02-{10 + n % 15:02d}T12:00:00Z",
        data=data if data is not None else {"stance": "oppose", "summary": f"statement {n}"},
        party="UA" if n % 2 else "US",
        topic="security-guarantees",
        source={"name": "CNN", "kind": "media"},
    )


def build_chain(
    size: int = SIZE,
    *,
    ledger: str = LEDGER,
    recorded_at: list[str] | None = None,
    drafts: list[EventDraft] | None = None,
) -> list[Record]:
    """``size`` records, each sealed behind the hash of the one before."""
    drafts = drafts or [draft(n) for n in range(1, size + 1)]
    times = recorded_at or [f"2025-02-24T10:00:{n:02d}.000000Z" for n in range(1, size + 1)]
    records: list[Record] = []
    prev = GENESIS_PREV
    for seq, (event, at) in enumerate(zip(drafts, times, strict=True), start=1):
        record = event.seal(ledger=ledger, seq=seq, prev=prev, recorded_at=at, actor="anonymous")
        records.append(record)
        prev = record.hash()
    return records


def lines_of(records: list[Record]) -> list[bytes]:
    return [r.canonical() for r in records]


def canon(obj: Any) -> bytes:
    return bytes(rfc8785.dumps(obj))


def edited(lines: list[bytes], index: int, mutate: Mutation) -> list[bytes]:
    """The lines with record ``index`` changed and re-encoded canonically."""
    obj = json.loads(lines[index])
    mutate(obj)
    return [*lines[:index], canon(obj), *lines[index + 1 :]]


def failure(lines: list[bytes], *, ledger: str = LEDGER) -> VerificationError:
    with pytest.raises(VerificationError) as caught:
        verify_chain(lines, ledger=ledger)
    return caught.value


# -- a valid chain ---------------------------------------------------------------


def test_a_valid_chain_verifies_and_yields_its_head_hash() -> None:
    records = build_chain()
    assert verify_chain(lines_of(records), ledger=LEDGER) == records[-1].hash()


def test_each_record_links_to_the_hash_of_the_one_before() -> None:
    records = build_chain()
    assert records[0].prev == "0" * 64
    for before, after in itertools.pairwise(records):
        assert after.prev == hashlib.sha256(before.canonical()).hexdigest()


def test_an_empty_run_yields_the_prev_it_started_from() -> None:
    assert verify_chain([], ledger=LEDGER) == GENESIS_PREV


def test_a_run_that_starts_mid_ledger_verifies_from_its_first_prev() -> None:
    records = build_chain()
    head = verify_chain(
        lines_of(records[2:]), ledger=LEDGER, from_seq=3, first_prev=records[1].hash()
    )
    assert head == records[-1].hash()
    with pytest.raises(ChainBroken) as caught:
        verify_chain(lines_of(records[2:]), ledger=LEDGER, from_seq=3)
    assert caught.value.seq == 3


def test_records_may_share_a_recorded_at() -> None:
    same = ["2025-02-24T10:00:00.000000Z"] * SIZE
    records = build_chain(recorded_at=same)
    assert verify_chain(lines_of(records), ledger=LEDGER) == records[-1].hash()


def test_the_incremental_verifier_accepts_parsed_records_too() -> None:
    records = build_chain()
    verifier = ChainVerifier(ledger=LEDGER)
    for record in records:
        assert verifier.add_record(record) == record
    assert verifier.head_hash == records[-1].hash()
    assert verifier.count_seen == SIZE


def test_reading_a_line_back_gives_the_same_record() -> None:
    for record in build_chain():
        assert Record.from_dict(json.loads(record.canonical())) == record


# -- known answer ----------------------------------------------------------------

KNOWN = Record(
    ledger="us-ua-minerals-2025",
    seq=1,
    id="3f1c9a52-7d4e-4b8a-9c61-0e2f5a7b8d90",
    type="position.stated",
    party="UA",
    topic="security-guarantees",
    occurred_at="2025-02-15T00:00:00Z",
    recorded_at="2025-02-16T09:30:00.123456Z",
    data={
        "stance": "demand",
        "summary": "Київ will sign only with security guarantees.",
        "terms": {"share_percent": 50, "amount": "500000000000"},
    },
    source={"name": "President Zelensky", "kind": "official"},
    actor="anonymous",
    prev="0" * 64,
)
KNOWN_CANONICAL = (
    '{"actor":"anonymous","data":{"stance":"demand",'
    '"summary":"Київ will sign only with security guarantees.",'
    '"terms":{"amount":"500000000000","share_percent":50}},'
    '"id":"3f1c9a52-7d4e-4b8a-9c61-0e2f5a7b8d90","ledger":"us-ua-minerals-2025",'
    '"occurred_at":"2025-02-15T00:00:00Z","party":"UA",'
    '"prev":"0000000000000000000000000000000000000000000000000000000000000000",'
    '"recorded_at":"2025-02-16T09:30:00.123456Z","seq":1,'
    '"source":{"kind":"official","name":"President Zelensky"},'
    '"topic":"security-guarantees","type":"position.stated"}'
).encode()
KNOWN_HASH = "af7980a6aa8f2e12745cef3b9967701d9602906b3f2433d048946650e437b46b"


def test_known_answer_canonical_bytes_and_hash() -> None:
    # For integers, ASCII member names and NFC strings without control characters,
    # sorted compact json.dumps without ASCII escaping is exactly RFC 8785.
    by_hand = json.dumps(
        KNOWN.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert by_hand == KNOWN_CANONICAL
    assert KNOWN.canonical() == KNOWN_CANONICAL
    assert hashlib.sha256(KNOWN_CANONICAL).hexdigest() == KNOWN_HASH
    assert KNOWN.hash() == KNOWN_HASH
    assert record_hash(KNOWN_CANONICAL) == KNOWN_HASH
    assert verify_chain([KNOWN_CANONICAL], ledger="us-ua-minerals-2025") == KNOWN_HASH


def test_absent_optional_members_are_omitted_not_null() -> None:
    bare = Record(**{**KNOWN.to_dict(), "party": None, "topic": None, "source": None})
    obj = json.loads(bare.canonical())
    assert "party" not in obj
    assert "topic" not in obj
    assert "source" not in obj
    assert b"null" not in bare.canonical()


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert leaf_hash(KNOWN_CANONICAL) == hashlib.sha256(b"\x00" + KNOWN_CANONICAL).digest()
    left, right = b"\x11" * 32, b"\x22" * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert empty_root().hex() == hashlib.sha256(b"").hexdigest()
    assert leaf_hash(KNOWN_CANONICAL).hex() != KNOWN_HASH


# -- tampering: every change is caught at the right seq ---------------------------


def set_member(name: str, value: Any) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        obj[name] = value

    return mutate


def drop_member(name: str) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        del obj[name]

    return mutate


def edit_data(obj: dict[str, Any]) -> None:
    obj["data"]["summary"] = obj["data"]["summary"] + "!"


@pytest.mark.parametrize(
    ("seq", "mutate", "name"),
    [
        (1, edit_data, "data"),
        (3, edit_data, "data"),
        (1, set_member("party", "RU"), "party"),
        (2, set_member("occurred_at", "2025-01-01T00:00:00Z"), "occurred_at"),
        (3, set_member("actor", "mallory"), "actor"),
        (4, set_member("type", "position.withdrawn"), "type"),
        (2, set_member("recorded_at", "2025-02-24T10:00:02.500000Z"), "recorded_at"),
        (1, drop_member("source"), "source removed"),
        (3, set_member("id", str(uuid.uuid4())), "id"),
    ],
)
def test_an_edit_before_the_head_breaks_the_link_to_the_next_record(
    seq: int, mutate: Mutation, name: str
) -> None:
    lines = edited(lines_of(build_chain()), seq - 1, mutate)
    error = failure(lines)
    assert isinstance(error, ChainBroken)
    assert error.seq == seq + 1, name


def test_an_edit_of_the_last_record_changes_the_head_hash() -> None:
    records = build_chain()
    lines = edited(lines_of(records), SIZE - 1, edit_data)
    head = verify_chain(lines, ledger=LEDGER)
    assert head != records[-1].hash()


@pytest.mark.parametrize("seq", [1, 3, SIZE])
def test_an_edited_prev_breaks_the_chain_at_that_record(seq: int) -> None:
    lines = edited(lines_of(build_chain()), seq - 1, set_member("prev", "ab" * 32))
    error = failure(lines)
    assert isinstance(error, ChainBroken)
    assert error.seq == seq


@pytest.mark.parametrize("seq", [1, 3, SIZE])
def test_an_edited_seq_breaks_the_chain_at_that_position(seq: int) -> None:
    lines = edited(lines_of(build_chain()), seq - 1, set_member("seq", seq + 10))
    error = failure(lines)
    assert isinstance(error, ChainBroken)
    assert error.seq == seq


@pytest.mark.parametrize("seq", [1, 3, SIZE - 1])
def test_a_deleted_record_is_reported_at_its_seq(seq: int) -> None:
    lines = lines_of(build_chain())
    del lines[seq - 1]
    error = failure(lines)
    assert isinstance(error, ChainBroken)
    assert error.seq == seq


def test_a_deleted_last_record_changes_the_head_hash() -> None:
    records = build_chain()
    assert verify_chain(lines_of(records)[:-1], ledger=LEDGER) != records[-1].hash()


@pytest.mark.parametrize("seq", [1, 2, SIZE - 1])
def test_two_swapped_records_are_reported_at_the_first_position(seq: int) -> None:
    lines = lines_of(build_chain())
    lines[seq - 1], lines[seq] = lines[seq], lines[seq - 1]
    error = failure(lines)
    assert isinstance(error, ChainBroken)
    assert error.seq == seq


def test_an_inserted_record_is_caught_at_the_record_after_it() -> None:
    records = build_chain()
    forged = draft(99).seal(
        ledger=LEDGER,
        seq=3,
        prev=records[1].hash(),
        recorded_at=records[1].recorded_at,
        actor="anonymous",
    )
    # The forger renumbers the records after the insertion, but cannot relink them.
    renumbered = [canon({**r.to_dict(), "seq": r.seq + 1}) for r in records[2:]]
    lines = [*lines_of(records[:2]), forged.canonical(), *renumbered]
    error = failure(lines)
    assert isinstance(error, ChainBroken)
    assert error.seq == 4


def test_an_inserted_record_without_renumbering_is_caught_by_its_seq() -> None:
    records = build_chain()
    forged = draft(99).seal(
        ledger=LEDGER,
        seq=3,
        prev=records[1].hash(),
        recorded_at=records[1].recorded_at,
        actor="anonymous",
    )
    lines = [*lines_of(records[:2]), forged.canonical(), *lines_of(records[2:])]
    error = failure(lines)
    assert isinstance(error, ChainBroken)
    assert error.seq == 4


def test_a_chain_of_another_ledger_is_refused_at_seq_1() -> None:
    error = failure(lines_of(build_chain()), ledger="another-ledger")
    assert isinstance(error, ChainBroken)
    assert error.seq == 1


def test_a_record_spliced_in_from_another_ledger_is_refused_at_its_seq() -> None:
    ours = lines_of(build_chain())
    theirs = lines_of(build_chain(ledger="another-ledger"))
    error = failure([*ours[:2], theirs[2], *ours[3:]])
    assert isinstance(error, ChainBroken)
    assert error.seq == 3


def test_a_decreasing_recorded_at_is_refused_at_that_record() -> None:
    times = [f"2025-02-24T10:00:{n:02d}.000000Z" for n in range(1, SIZE + 1)]
    times[3] = "2025-02-24T09:59:59.999999Z"  # seq 4 goes back in time
    error = failure(lines_of(build_chain(recorded_at=times)))
    assert isinstance(error, ChainBroken)
    assert error.seq == 4


# -- malformed lines ---------------------------------------------------------------


def reorder_keys(line: bytes) -> bytes:
    obj = json.loads(line)
    return json.dumps(
        dict(reversed(obj.items())), separators=(",", ":"), ensure_ascii=False
    ).encode()


NON_CANONICAL: dict[str, Callable[[bytes], bytes]] = {
    "extra space after a comma": lambda line: line.replace(b'","', b'", "', 1),
    "space after a colon": lambda line: line.replace(b'":', b'": ', 1),
    "reordered keys": reorder_keys,
    "pretty printed": lambda line: json.dumps(
        json.loads(line), sort_keys=True, indent=1, ensure_ascii=False
    ).encode(),
    "ascii escapes": lambda line: json.dumps(
        json.loads(line), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode(),
    "trailing newline": lambda line: line + b"\n",
    "leading space": lambda line: b" " + line,
    "escaped hyphen": lambda line: line.replace(
        b"security-guarantees", b"security\\u002dguarantees"
    ),
}


@pytest.mark.parametrize("seq", [1, 3, SIZE])
@pytest.mark.parametrize("how", sorted(NON_CANONICAL))
def test_bytes_that_are_not_canonical_are_refused_at_their_seq(seq: int, how: str) -> None:
    drafts = [draft(n) for n in range(1, SIZE + 1)]
    drafts[seq - 1] = draft(seq, data={"stance": "oppose", "summary": "Київ, naïve café"})
    lines = lines_of(build_chain(drafts=drafts))
    tampered = NON_CANONICAL[how](lines[seq - 1])
    assert tampered != lines[seq - 1]
    lines[seq - 1] = tampered
    error = failure(lines)
    assert isinstance(error, MalformedRecord)
    assert error.seq == seq


@pytest.mark.parametrize(
    ("mutate", "what"),
    [
        (set_member("party", None), "null party"),
        (set_member("topic", None), "null topic"),
        (set_member("source", None), "null source"),
        (set_member("comment", "hello"), "unknown member"),
        (set_member("hash", "00" * 32), "unknown member named hash"),
        (drop_member("actor"), "missing actor"),
        (drop_member("prev"), "missing prev"),
        (drop_member("data"), "missing data"),
        (drop_member("recorded_at"), "missing recorded_at"),
        (drop_member("ledger"), "missing ledger"),
        (set_member("id", "3F1C9A52-7D4E-4B8A-9C61-0E2F5A7B8D90"), "upper-case id"),
        (set_member("id", "not-a-uuid"), "id not a UUID"),
        (set_member("occurred_at", "2025-02-24T10:00:00+01:00"), "occurred_at with offset"),
        (set_member("occurred_at", "2025-02-24"), "occurred_at a bare date"),
        (set_member("occurred_at", "999-12-31T00:00:00Z"), "occurred_at of 3-digit year"),
        (set_member("recorded_at", "2025-02-24T10:00:03Z"), "recorded_at without fraction"),
        (set_member("prev", "AB" * 32), "upper-case prev"),
        (set_member("prev", "ab" * 31), "short prev"),
        (set_member("data", [1]), "data an array"),
        (set_member("source", "CNN"), "source a string"),
        (set_member("actor", 7), "actor a number"),
        (set_member("party", 1), "party a number"),
        (set_member("ledger", "Bad Name"), "bad ledger name"),
    ],
)
def test_a_record_that_breaks_the_record_format_is_malformed_at_its_seq(
    mutate: Mutation, what: str
) -> None:
    lines = edited(lines_of(build_chain()), 2, mutate)
    error = failure(lines)
    assert isinstance(error, MalformedRecord), what
    assert error.seq == 3, what


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b'{"seq":3,"x":1.5}',
        b'{"seq":3,"seq":3}',
        b"\xff",
    ],
)
def test_a_line_that_is_not_a_strict_json_record_is_malformed_at_its_position(
    line: bytes,
) -> None:
    lines = lines_of(build_chain())
    lines[2] = line
    error = failure(lines)
    assert isinstance(error, MalformedRecord)
    assert error.seq == 3


@pytest.mark.parametrize("seq_value", [0, -1, "3", True, None])
def test_a_record_with_an_impossible_seq_is_malformed(seq_value: Any) -> None:
    lines = edited(lines_of(build_chain()), 2, set_member("seq", seq_value))
    error = failure(lines)
    assert isinstance(error, MalformedRecord)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda line: canon({k: v for k, v in json.loads(line).items() if k != "seq"}),
        lambda line: canon({**json.loads(line), "seq": "3"}),
        lambda line: b"[1,2,3]",
    ],
    ids=["seq missing", "seq a string", "an array"],
)
def test_a_record_without_a_readable_seq_is_reported_at_its_position(
    tamper: Callable[[bytes], bytes],
) -> None:
    lines = lines_of(build_chain())
    lines[2] = tamper(lines[2])
    error = failure(lines)
    assert isinstance(error, MalformedRecord)
    assert error.seq == 3


def test_a_record_with_non_ascii_digits_in_occurred_at_is_malformed() -> None:
    arabic = "\u0662\u0660\u0662\u0665-\u0660\u0662-\u0662\u0664T\u0661\u0660:00:00Z"
    drafts = [draft(n) for n in range(1, SIZE + 1)]
    drafts[2] = drafts[2]._replace(occurred_at=arabic)
    error = failure(lines_of(build_chain(drafts=drafts)))
    assert isinstance(error, MalformedRecord)
    assert error.seq == 3


def test_every_verification_error_is_one_exception_family() -> None:
    assert issubclass(ChainBroken, VerificationError)
    assert issubclass(MalformedRecord, VerificationError)
    error = failure(edited(lines_of(build_chain()), 0, edit_data))
    assert str(error).startswith("seq 2: ")


# -- properties --------------------------------------------------------------------

_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=10).map(
    lambda text: unicodedata.normalize("NFC", text)
)
_json_data = st.dictionaries(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8),
    st.one_of(st.integers(-(2**53) + 1, 2**53 - 1), _text, st.booleans(), st.none()),
    max_size=4,
)
_moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda moment: moment.replace(tzinfo=UTC)
)


@st.composite
def chains(draw: st.DrawFn) -> tuple[str, list[Record]]:
    """A ledger name and a valid chain of 1-8 random records in it."""
    ledger = draw(st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,20}\Z"))
    size = draw(st.integers(min_value=1, max_value=8))
    drafts = [
        EventDraft.of(
            id=str(draw(st.uuids())),
            type=draw(st.sampled_from(["position.stated", "draft.presented", "x.y"])),
            occurred_at=format_occurred_at(draw(_moments)),
            data=draw(_json_data),
            party=draw(st.none() | st.sampled_from(["US", "UA", "EU"])),
            topic=draw(st.none() | st.sampled_from(["security-guarantees", "revenue-share"])),
            source=draw(st.none() | st.just({"name": "Reuters", "kind": "media"})),
        )
        for _ in range(size)
    ]
    times = sorted(format_recorded_at(draw(_moments)) for _ in range(size))
    return ledger, build_chain(size, ledger=ledger, recorded_at=times, drafts=drafts)


CHAIN_PROPERTY = settings(database=None, max_examples=150, deadline=None)


@CHAIN_PROPERTY
@given(chain=chains())
def test_any_valid_chain_verifies(chain: tuple[str, list[Record]]) -> None:
    ledger, records = chain
    assert verify_chain(lines_of(records), ledger=ledger) == records[-1].hash()


@CHAIN_PROPERTY
@given(chain=chains(), data=st.data())
def test_flipping_any_records_data_breaks_the_chain_right_there(
    chain: tuple[str, list[Record]], data: st.DataObject
) -> None:
    ledger, records = chain
    expected_head = records[-1].hash()
    index = data.draw(st.integers(min_value=0, max_value=len(records) - 1), label="index")
    new_data = data.draw(_json_data, label="new data")
    if new_data == records[index].data:
        new_data = {**new_data, "tampered": not new_data.get("tampered", False)}
    lines = edited(lines_of(records), index, set_member("data", new_data))
    if index < len(records) - 1:
        with pytest.raises(ChainBroken) as caught:
            verify_chain(lines, ledger=ledger)
        # The edited record's hash changed, so the next record's prev no longer matches.
        assert caught.value.seq == index + 2
    else:
        # Nothing follows the head: only the head hash a verifier was given betrays it.
        assert verify_chain(lines, ledger=ledger) != expected_head
