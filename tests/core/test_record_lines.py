"""The quick line check and the worker runs never change a verdict (format §5).

``record_lines.parse_line`` may only accept lines the strict reading accepts, and
the chain must report the same first failure, with the same reason, whether a
line took the quick path or the strict one. Bundles checked in blocks by an
executor must give the same report as bundles checked line by line.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import re
import sys
import tarfile
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ledger.core import checkpoint as notes
from ledger.core import record_lines, verification
from ledger.core.bundle import MEMBERS, Manifest
from ledger.core.canonical import canonical_bytes
from ledger.core.chain import ChainVerifier, verify_chain
from ledger.core.errors import (
    ChainBroken,
    InputError,
    MalformedRecord,
    PrevMismatch,
    VerificationError,
)
from ledger.core.hashing import GENESIS_PREV, leaf_hash, record_hash
from ledger.core.jsonvalues import loads_strict
from ledger.core.merkle import append_leaves, inclusion_proof, root_from_leaves
from ledger.core.record_lines import check_run, parse_line
from ledger.core.records import EventDraft, Record
from ledger.core.signing import Signer
from ledger.core.verification import MerkleAccumulator, verify_bundle

LEDGER = "us-ua-minerals-2025"
ORIGIN = f"ledger.test/{LEDGER}"
Outcome = tuple[str, ...]


# -- the strict reading, as ChainVerifier did it before the quick path ----------


def strict_record(line: bytes) -> Record | None:
    """The reference per-line check: ``None`` where it refuses the line."""
    try:
        obj = loads_strict(line)
        record = Record.from_dict(obj)
    except (InputError, MalformedRecord):
        return None
    return record if canonical_bytes(obj) == line else None


def reference_outcome(
    lines: list[bytes], *, from_seq: int = 1, first_prev: str = GENESIS_PREV
) -> Outcome:
    """The first failure (class, reason, seq) of the strict-only chain, or its head."""
    next_seq, head, last_recorded_at = from_seq, first_prev, ""
    for line in lines:
        try:
            obj = loads_strict(line)
        except InputError as e:
            return ("MalformedRecord", f"not strict JSON: {e}", str(next_seq))
        try:
            record = Record.from_dict(obj)
        except MalformedRecord as e:
            return ("MalformedRecord", e.reason, str(next_seq))
        if canonical_bytes(obj) != line:
            return ("MalformedRecord", "bytes are not RFC 8785 canonical", str(record.seq))
        if record.ledger != LEDGER:
            reason = f"record belongs to ledger {record.ledger!r}, not {LEDGER!r}"
            return ("ChainBroken", reason, str(record.seq))
        if record.seq != next_seq:
            reason = f"expected seq {next_seq}, found seq {record.seq}"
            return ("ChainBroken", reason, str(next_seq))
        if record.recorded_at < last_recorded_at:
            return ("ChainBroken", "recorded_at decreases", str(record.seq))
        if record.prev != head:
            reason = "prev does not match the hash of the previous record"
            return ("PrevMismatch", reason, str(record.seq))
        head, last_recorded_at, next_seq = record_hash(line), record.recorded_at, next_seq + 1
    return ("valid", head)


def outcome(lines: list[bytes], *, from_seq: int = 1, first_prev: str = GENESIS_PREV) -> Outcome:
    try:
        head = verify_chain(lines, ledger=LEDGER, from_seq=from_seq, first_prev=first_prev)
    except VerificationError as e:
        return (type(e).__name__, e.reason, str(e.seq))
    return ("valid", head)


def canon(obj: Any) -> bytes:
    return bytes(rfc8785.dumps(obj))


def record_dict(seq: int, prev: str, **changes: Any) -> dict[str, Any]:
    record = EventDraft.of(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"event-{seq}")),
        type="position.stated",
        occurred_at="2025-02-15T00:00:00Z",
        data={"stance": "demand", "summary": f"statement {seq}"},
        party="UA",
        topic="security-guarantees",
        source={"name": "President Zelensky", "kind": "official"},
    ).seal(
        ledger=LEDGER,
        seq=seq,
        prev=prev,
        recorded_at=f"2025-02-16T09:{seq // 60:02d}:{seq % 60:02d}.123456Z",
        actor="anonymous",
    )
    obj = record.to_dict()
    obj.update(changes)
    return obj


def chain_lines(size: int, **changes: Any) -> list[bytes]:
    lines, prev = [], GENESIS_PREV
    for seq in range(1, size + 1):
        line = canon(record_dict(seq, prev, **changes))
        lines.append(line)
        prev = record_hash(line)
    return lines


VALID = canon(record_dict(1, GENESIS_PREV))


def assert_agrees(line: bytes) -> None:
    """The quick check only accepts what the strict one does, as the same record."""
    quick = parse_line(line)
    strict = strict_record(line)
    if quick is not None:
        assert strict is not None, line
        assert Record(**quick) == strict
    # And the chain, quick path first, reports exactly what the strict chain does.
    assert outcome([line]) == reference_outcome([line])


# -- targeted lines ----------------------------------------------------------------


def test_a_genuine_line_takes_the_quick_path() -> None:
    obj = parse_line(VALID)
    assert obj is not None
    assert Record(**obj) == strict_record(VALID)


def test_a_genuine_non_ascii_line_takes_the_quick_path() -> None:
    line = canon(record_dict(1, GENESIS_PREV, data={"summary": "Київ, naïve café", "n": -3}))
    assert parse_line(line) is not None
    assert_agrees(line)


def _replace(old: bytes, new: bytes) -> bytes:
    assert old in VALID
    return VALID.replace(old, new, 1)


def _with_data(data_json: bytes) -> bytes:
    start = VALID.index(b'"data":') + len(b'"data":')
    end = VALID.index(b',"id":')
    return VALID[:start] + data_json + VALID[end:]


TARGETED: dict[str, bytes] = {
    "float": _with_data(b'{"n":1.5}'),
    "float with exponent": _with_data(b'{"n":1e3}'),
    "integral float": _with_data(b'{"n":2.0}'),
    "NaN": _with_data(b'{"n":NaN}'),
    "Infinity": _with_data(b'{"n":-Infinity}'),
    "2^53": _with_data(b'{"n":9007199254740992}'),
    "-2^53": _with_data(b'{"n":-9007199254740992}'),
    "2^53 - 1": _with_data(b'{"n":9007199254740991}'),
    "-(2^53 - 1)": _with_data(b'{"n":-9007199254740991}'),
    "sixteen digits below 2^53": _with_data(b'{"n":1000000000000000}'),
    "huge integer": _with_data(b'{"n":' + b"9" * 400 + b"}"),
    "leading zero": _with_data(b'{"n":07}'),
    "minus zero": _with_data(b'{"n":-0}'),
    "seq as float": _replace(b'"seq":1', b'"seq":1.0'),
    "seq as 2^53": _replace(b'"seq":1', b'"seq":9007199254740993'),
    "seq zero": _replace(b'"seq":1', b'"seq":0'),
    "seq as string": _replace(b'"seq":1', b'"seq":"1"'),
    "seq as true": _replace(b'"seq":1', b'"seq":true'),
    "NFC string": _with_data('{"s":"caf\u00e9"}'.encode()),
    "NFD string": _with_data('{"s":"cafe\u0301"}'.encode()),
    "NFD member name": _with_data('{"cafe\u0301":1}'.encode()),
    "NFD after an escape": _with_data('{"s":"a\\n\u0301"}'.encode()),
    "NFD behind an escape": _with_data(b'{"s":"cafe\\u0301"}'),
    "escaped e-acute": _with_data(b'{"s":"caf\\u00e9"}'),
    "escaped e-acute in a non-ASCII line": _with_data('{"s":"caf\\u00e9","t":"\u00e9"}'.encode()),
    "escaped solidus": _with_data(b'{"s":"a\\/b"}'),
    "plain solidus": _with_data(b'{"s":"a/b"}'),
    "escaped ASCII letter": _with_data(b'{"s":"\\u0061"}'),
    "canonical control escape": _with_data(b'{"s":"\\u001f\\n\\t\\"\\\\"}'),
    "uppercase control escape": _with_data(b'{"s":"\\u001F"}'),
    "long form of newline": _with_data(b'{"s":"\\u000a"}'),
    "raw control character": _with_data(b'{"s":"a\x01b"}'),
    "raw newline": _with_data(b'{"s":"a\nb"}'),
    "raw DEL": _with_data(b'{"s":"a\x7fb"}'),
    "line separator": _with_data('{"s":"a\u2028b"}'.encode()),
    "lone surrogate escape": _with_data(b'{"s":"\\ud800"}'),
    "surrogate pair escape": _with_data(b'{"s":"\\ud83d\\ude00"}'),
    "encoded surrogate": _with_data(b'{"s":"\xed\xa0\x80"}'),
    "invalid UTF-8": _with_data(b'{"s":"\xff"}'),
    "astral value": _with_data('{"s":"\U0001f600"}'.encode()),
    "astral names in UTF-16 order": _with_data('{"\U0001f600":1,"\ue000":2}'.encode()),
    "astral names in code point order": _with_data('{"\ue000":2,"\U0001f600":1}'.encode()),
    "BOM": b"\xef\xbb\xbf" + VALID,
    "duplicate member": _with_data(b'{"a":1,"a":1}'),
    "duplicate record member": VALID[:-1] + b',"type":"position.stated"}',
    "duplicate record member first": b'{"actor":"x",' + VALID[1:],
    "space after a colon": _replace(b'"seq":', b'"seq": '),
    "space after a comma": _replace(b',"seq"', b', "seq"'),
    "leading space": b" " + VALID,
    "trailing space": VALID + b" ",
    "trailing comma": VALID[:-1] + b",}",
    "two values": VALID + VALID,
    "reordered members": canon(record_dict(1, GENESIS_PREV))
    .replace(b'"actor":"anonymous",', b"", 1)
    .replace(b'"type"', b'"actor":"anonymous","type"', 1),
    "reordered data members": _with_data(b'{"b":1,"a":2}'),
    "sorted data members": _with_data(b'{"a":2,"b":1}'),
    "empty line": b"",
    "not an object": b"[]",
    "just a string": b'"record"',
    "null": b"null",
    "missing member": canon({k: v for k, v in record_dict(1, GENESIS_PREV).items() if k != "id"}),
    "unknown member": canon({**record_dict(1, GENESIS_PREV), "comment": "hi"}),
    "null party": canon({**record_dict(1, GENESIS_PREV), "party": None}),
    "party as number": canon({**record_dict(1, GENESIS_PREV), "party": 7}),
    "source as string": canon({**record_dict(1, GENESIS_PREV), "source": "CNN"}),
    "data as list": canon({**record_dict(1, GENESIS_PREV), "data": []}),
    "no optional members": canon(
        {k: v for k, v in record_dict(1, GENESIS_PREV).items() if k not in ("party", "topic")}
    ),
    "uppercase id": canon({**record_dict(1, GENESIS_PREV), "id": str(uuid.uuid4()).upper()}),
    "ledger with a capital": canon({**record_dict(1, GENESIS_PREV), "ledger": "Minerals"}),
    "other ledger": canon({**record_dict(1, GENESIS_PREV), "ledger": "elsewhere"}),
    "ledger with a newline": canon({**record_dict(1, GENESIS_PREV), "ledger": "a\nb"}),
    "occurred_at with a fraction": canon(
        {**record_dict(1, GENESIS_PREV), "occurred_at": "2025-02-15T00:00:00.5Z"}
    ),
    "recorded_at without fraction": canon(
        {**record_dict(1, GENESIS_PREV), "recorded_at": "2025-02-16T09:30:00Z"}
    ),
    "Arabic-Indic digits in a time": canon(
        {**record_dict(1, GENESIS_PREV), "occurred_at": "\u0662025-02-15T00:00:00Z"}
    ),
    "uppercase prev": canon({**record_dict(1, GENESIS_PREV), "prev": "AB" * 32}),
    "short prev": canon({**record_dict(1, GENESIS_PREV), "prev": "ab" * 31}),
    "type with a newline": canon({**record_dict(1, GENESIS_PREV), "type": "a\nb"}),
    "actor with a newline": canon({**record_dict(1, GENESIS_PREV), "actor": "a\nb"}),
    # Members shifted by newlines so that a joined match would line up wrongly.
    "formats shifted across members": canon(
        {
            **record_dict(1, GENESIS_PREV),
            "ledger": f"ab\n{uuid.uuid4()}",
            "id": "2025-02-15T00:00:00Z",
            "occurred_at": "2025-02-16T09:30:00.123456Z",
            "recorded_at": "0" * 64,
        }
    ),
    "depth 64": _with_data(b'{"d":' + b"[" * 62 + b"]" * 62 + b"}"),
    "depth 65": _with_data(b'{"d":' + b"[" * 63 + b"]" * 63 + b"}"),
    "depth 2000": _with_data(b'{"d":' + b"[" * 2000 + b"]" * 2000 + b"}"),
    "many shallow brackets": _with_data(b'{"d":[' + b"[]," * 80 + b"[]]}"),
    "brackets inside strings": _with_data(b'{"s":"' + b"{[" * 40 + b'"}'),
}


@pytest.mark.parametrize("name", sorted(TARGETED))
def test_the_quick_check_agrees_with_the_strict_one(name: str) -> None:
    assert_agrees(TARGETED[name])


@pytest.mark.parametrize(
    "name",
    [
        "2^53 - 1",
        "-(2^53 - 1)",
        "sixteen digits below 2^53",
        "NFC string",
        "plain solidus",
        "canonical control escape",
        "line separator",
        "raw DEL",
        "sorted data members",
        "no optional members",
        "many shallow brackets",
    ],
)
def test_valid_lines_of_every_kind_take_the_quick_path(name: str) -> None:
    # Not required for correctness, but a quick check that sent these to the
    # strict path would quietly lose the speed it exists for.
    assert strict_record(TARGETED[name]) is not None
    assert parse_line(TARGETED[name]) is not None


@pytest.mark.parametrize(
    "name",
    [
        "float",
        "2^53",
        "NFD string",
        "NFD member name",
        "escaped e-acute",
        "escaped solidus",
        "duplicate member",
        "space after a colon",
        "reordered data members",
        "raw control character",
        "lone surrogate escape",
        "depth 65",
        "formats shifted across members",
    ],
)
def test_invalid_lines_are_refused_whatever_the_path(name: str) -> None:
    assert parse_line(TARGETED[name]) is None
    assert strict_record(TARGETED[name]) is None
    assert outcome([TARGETED[name]])[0] == "MalformedRecord"


def test_the_quote_is_a_stable_code_point() -> None:
    # The NFC argument for non-ASCII lines: no canonical decomposition holds
    # U+0022 (U+FF02's is a compatibility one) and it does not combine.
    assert unicodedata.combining('"') == 0
    holding = [
        code
        for code in range(sys.maxunicode + 1)
        if "0022" in unicodedata.decomposition(chr(code)).split()
        and not unicodedata.decomposition(chr(code)).startswith("<")
    ]
    assert holding == []


# -- random and mutated lines --------------------------------------------------------

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) - 2, max_value=2**53 + 2)
    | st.integers(min_value=-99, max_value=99)
    | text
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    obj = record_dict(draw(st.integers(1, 5)), GENESIS_PREV)
    obj["data"] = draw(st.dictionaries(text, values, max_size=4))
    for name in ("party", "topic", "source"):
        if draw(st.booleans()):
            del obj[name]
    if draw(st.booleans()):
        obj[draw(st.sampled_from(sorted(obj)))] = draw(values)
    return obj


# Records the strict reading accepts and the quick path takes (NFC text, safe
# integers, no member replaced; either ASCII, escapes and all, or BMP text that
# needs no escape): the quick-path property would otherwise discard most draws.
def _quick_path_values(alphabet: st.SearchStrategy[str]) -> tuple[Any, Any]:
    texts = st.text(alphabet=alphabet, max_size=12).map(lambda s: unicodedata.normalize("NFC", s))
    values = st.recursive(
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
        | texts,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4)
        ),
        max_leaves=12,
    )
    return texts, values


_QUICK_PATH_ALPHABETS = (
    _quick_path_values(st.characters(max_codepoint=0x7F)),
    _quick_path_values(
        st.characters(
            blacklist_categories=("Cs", "Cc"), blacklist_characters='"\\', max_codepoint=0xFFFF
        )
    ),
)


@st.composite
def quick_path_records(draw: st.DrawFn) -> dict[str, Any]:
    texts, values = draw(st.sampled_from(_QUICK_PATH_ALPHABETS))
    obj = record_dict(draw(st.integers(1, 5)), GENESIS_PREV)
    obj["data"] = draw(st.dictionaries(texts, values, max_size=4))
    for name in ("party", "topic", "source"):
        if draw(st.booleans()):
            del obj[name]
    return obj


def _mutations(line: bytes) -> st.SearchStrategy[bytes]:
    positions = st.integers(0, max(len(line) - 1, 0))
    tokens = st.sampled_from(
        [
            b" ",
            b"\\",
            b'"',
            b",",
            b"{",
            b"}",
            b"[",
            b"]",
            b"1.0",
            b"\\u00e9",
            b"\\/",
            b"\n",
            b"\x00",
            b"\xc3\xa9",
            b"e\xcc\x81",
            b"\xf0\x9f\x98\x80",
            b"9007199254740993",
            b"-",
        ]
    )
    insert = st.tuples(positions, tokens).map(lambda pt: line[: pt[0]] + pt[1] + line[pt[0] :])
    delete = st.tuples(positions, st.integers(1, 3)).map(
        lambda pn: line[: pn[0]] + line[pn[0] + pn[1] :]
    )
    flip = st.tuples(positions, st.integers(1, 255)).map(
        lambda pb: (
            line[: pb[0]] + bytes([line[pb[0]] ^ pb[1]]) + line[pb[0] + 1 :] if line else line
        )
    )
    return insert | delete | flip


def _encodings(obj: Any) -> st.SearchStrategy[bytes]:
    return st.sampled_from(
        [
            canon(obj),
            json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
                "utf-8", "surrogatepass"
            ),
            json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode(
                "utf-8", "surrogatepass"
            ),
            json.dumps(obj, sort_keys=True, separators=(",", ":")).encode(),
        ]
    )


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_and_mutated_lines_get_the_same_verdict(data: st.DataObject) -> None:
    try:
        obj = data.draw(records())
        line = data.draw(_encodings(obj))
    except (TypeError, ValueError):
        assume(False)
        return
    if data.draw(st.booleans()):
        line = data.draw(_mutations(line))
    assert_agrees(line)


@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_member_by_member_reading_agrees_with_the_whole_line_one(data: st.DataObject) -> None:
    try:
        line = data.draw(_encodings(data.draw(records())))
        text = line.decode("utf-8")
    except (TypeError, ValueError):
        assume(False)
        return
    if data.draw(st.booleans()):
        mutated = data.draw(_mutations(line))
        try:
            text = mutated.decode("utf-8")
        except UnicodeDecodeError:
            assume(False)
            return

    def read(reader: Callable[[str], dict[str, Any] | None]) -> dict[str, Any] | str | None:
        try:
            return reader(text)
        except Exception as e:  # a parse error, or the private class the refusal hooks raise
            return type(e).__name__

    shaped = read(record_lines._read_shaped)
    if isinstance(shaped, dict):
        assert read(record_lines._read_any) == shaped


@settings(max_examples=300)
@given(quick_path_records())
def test_valid_records_without_astral_characters_take_the_quick_path(obj: dict[str, Any]) -> None:
    line = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )
    assume(strict_record(line) is not None)
    text_of_line = line.decode()
    assume(not any(ord(c) > 0xFFFF for c in text_of_line))
    assume(line.isascii() or b"\\" not in line)
    assert parse_line(line) is not None


# -- chains: the first failure is the same as the strict chain's -----------------------


def _chain_variants() -> Iterator[tuple[str, list[bytes]]]:
    lines = chain_lines(8)
    yield "valid", lines
    for index in (0, 3, 7):
        for name, bad in (
            ("float", TARGETED["float"]),
            ("non-canonical", lines[index].replace(b'":', b'": ', 1)),
            ("NFD", lines[index].replace(b"statement", "cafe\u0301".encode(), 1)),
            ("edited", lines[index].replace(b"statement", b"Statement", 1)),
            ("other ledger", lines[index].replace(LEDGER.encode(), b"elsewhere", 1)),
            ("empty", b""),
        ):
            yield f"{name} at {index + 1}", [*lines[:index], bad, *lines[index + 1 :]]
    yield "swapped", [lines[0], lines[2], lines[1], *lines[3:]]
    yield "deleted", [*lines[:4], *lines[5:]]
    yield "duplicated", [*lines[:4], lines[3], *lines[4:]]
    earlier = chain_lines(8)
    earlier[5] = canon({**json.loads(earlier[5]), "recorded_at": "2025-02-16T08:59:59.000000Z"})
    yield "recorded_at decreases", earlier


@pytest.mark.parametrize(("name", "lines"), list(_chain_variants()))
def test_a_chain_fails_at_the_same_seq_for_the_same_reason(name: str, lines: list[bytes]) -> None:
    assert outcome(lines) == reference_outcome(lines), name


@pytest.mark.parametrize(("name", "lines"), list(_chain_variants()))
def test_records_handed_back_are_the_strict_ones(name: str, lines: list[bytes]) -> None:
    verifier = ChainVerifier(ledger=LEDGER)
    handed: list[Record] = []
    try:
        for line in lines:
            handed.append(verifier.add_line(line))
    except VerificationError as e:
        assert (type(e).__name__, e.reason, str(e.seq)) == reference_outcome(lines), name
    else:
        assert reference_outcome(lines) == ("valid", verifier.head_hash), name
    assert handed == [strict_record(line) for line in lines[: len(handed)]]


def test_a_run_from_mid_ledger_agrees_too() -> None:
    lines = chain_lines(8)
    head = record_hash(lines[2])
    assert outcome(lines[3:], from_seq=4, first_prev=head) == reference_outcome(
        lines[3:], from_seq=4, first_prev=head
    )
    assert outcome(lines[3:], from_seq=4)[0] == "PrevMismatch"


# -- runs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("start", [1, 2, 3, 5, 8, 13])
@pytest.mark.parametrize("count", [1, 2, 5, 8, 21])
def test_a_run_summarises_what_line_by_line_checking_finds(start: int, count: int) -> None:
    lines = chain_lines(start + count - 1)
    run = check_run(b"\n".join(lines[start - 1 :]), ledger=LEDGER, first_seq=start, merkle=True)
    assert run is not None
    assert run.lines == count
    first = json.loads(lines[start - 1])
    assert (run.first_prev, run.first_recorded_at) == (first["prev"], first["recorded_at"])
    assert run.last_recorded_at == json.loads(lines[-1])["recorded_at"]
    assert run.head_hash == record_hash(lines[-1])
    leaves = [leaf_hash(line) for line in lines]
    assert run.leaves == b"".join(leaves[start - 1 :])
    # The subtrees continue an accumulator of the leaves before the run.
    tree = MerkleAccumulator()
    for leaf in leaves[: start - 1]:
        tree.add(leaf)
    for level, digest in run.subtrees:
        tree.add_subtree(level, digest)
    assert tree.size == len(leaves)
    assert tree.root() == root_from_leaves(leaves)


def test_a_run_with_any_fault_is_left_to_the_line_by_line_check() -> None:
    lines = chain_lines(6)
    for bad in (
        [*lines[:2], lines[2].replace(b'":', b'": ', 1), *lines[3:]],  # not canonical
        [lines[0], lines[2], *lines[3:]],  # a gap
        [lines[0], lines[1].replace(b"statement", b"Statement", 1), *lines[2:]],  # broken link
    ):
        assert check_run(b"\n".join(bad), ledger=LEDGER, first_seq=1, merkle=True) is None
    assert check_run(b"\n".join(lines), ledger="elsewhere", first_seq=1, merkle=True) is None
    assert check_run(b"\n".join(lines), ledger=LEDGER, first_seq=2, merkle=True) is None


GENERATED = chain_lines(140)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_runs_give_the_roots_and_head_of_record_by_record_verification(
    data: st.DataObject,
) -> None:
    size = data.draw(st.integers(1, len(GENERATED)), label="size")
    first = data.draw(st.integers(1, size), label="first seq")
    lines = GENERATED[first - 1 : size]
    # Where the lines are cut into runs: between any two of them.
    cuts = sorted(data.draw(st.sets(st.integers(1, max(len(lines) - 1, 1)), max_size=6)))
    cuts = [cut for cut in cuts if cut < len(lines)]
    # Roots asked for on the way make runs fold leaf by leaf; none, by subtrees.
    root_sizes = data.draw(st.sets(st.integers(0, size), max_size=3), label="root sizes")
    prev = GENERATED[first - 2] if first > 1 else None
    first_prev = record_hash(prev) if prev is not None else GENESIS_PREV

    def log() -> verification.LogVerifier:
        return verification.LogVerifier(
            ledger=LEDGER, from_seq=first, first_prev=first_prev, root_sizes=root_sizes
        )

    one_by_one = log()
    for line in lines:
        one_by_one.check_line(line)
    in_runs = log()
    for start, end in zip([0, *cuts], [*cuts, len(lines)], strict=True):
        block = b"\n".join(lines[start:end])
        run = check_run(
            block, ledger=LEDGER, first_seq=first + start, merkle=in_runs.wants_subtrees
        )
        assert run is not None
        assert in_runs.add_run(run)

    assert in_runs.head_hash == one_by_one.head_hash == record_hash(lines[-1])
    assert in_runs.last_leaf == one_by_one.last_leaf == leaf_hash(lines[-1])
    assert in_runs.count == one_by_one.count == len(lines)
    if first == 1:
        leaves = [leaf_hash(line) for line in lines]
        assert in_runs.root() == one_by_one.root() == root_from_leaves(leaves)
        expected = {s: root_from_leaves(leaves[:s]) for s in root_sizes}
        assert in_runs.roots == one_by_one.roots == expected


def test_a_subtree_must_be_aligned() -> None:
    tree = MerkleAccumulator()
    tree.add(b"\x11" * 32)
    with pytest.raises(ValueError):
        tree.add_subtree(1, b"\x22" * 32)


# -- bundles with an executor: the same report -------------------------------------------

SIZE = 300


def _bundle(lines: list[bytes], signer: Signer, *, from_seq: int = 1) -> bytes:
    """A format §4 bundle of records ``from_seq``.. of ``lines`` (the whole ledger)."""
    leaves = [leaf_hash(line) for line in lines]
    to_seq = len(lines)
    root = root_from_leaves(leaves)
    proof: tuple[bytes, ...] = ()
    if from_seq > 1:
        nodes = append_leaves(0, {}, leaves)
        proof = tuple(inclusion_proof(to_seq - 1, to_seq, nodes))
    chosen = lines[from_seq - 1 :]
    records = b"".join(line + b"\n" for line in chosen)
    head = record_hash(lines[-1])
    manifest = Manifest(
        ledger=LEDGER,
        origin=ORIGIN,
        from_seq=from_seq,
        to_seq=to_seq,
        records_sha256=hashlib.sha256(records).hexdigest(),
        first_prev=json.loads(chosen[0])["prev"],
        head_hash=head,
        merkle_root=root,
        key_id=signer.verifier.key_id_hex,
        key_name=signer.name,
        created_at="2025-02-24T10:00:00.000000Z",
        head_inclusion_proof=proof,
    )
    checkpoint = notes.sign(
        notes.Checkpoint(origin=ORIGIN, tree_size=to_seq, root=root, head_hash=head), [signer]
    )
    manifest_bytes = manifest.to_bytes()
    members = {
        "manifest.json": manifest_bytes,
        "manifest.sig": signer.sign(manifest_bytes),
        "records.jsonl": records,
        "checkpoint": checkpoint.to_text().encode(),
        "public_key.pem": signer.verifier.public_pem(),
    }
    return _tar(members)


def _tar(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in MEMBERS:
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            tar.addfile(info, io.BytesIO(members[name]))
    return out.getvalue()


def _records_of(bundle: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        stream = tar.extractfile("records.jsonl")
        assert stream is not None
        return stream.read()


def _with_records(bundle: bytes, records: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        members = {}
        for name in MEMBERS:
            stream = tar.extractfile(name)
            assert stream is not None
            members[name] = stream.read()
    members["records.jsonl"] = records
    return _tar(members)


Tamper = Callable[[bytes], bytes]


def _edit_line(index: int, edit: Callable[[bytes], bytes]) -> Tamper:
    def tamper(records: bytes) -> bytes:
        lines = records.split(b"\n")
        lines[index] = edit(lines[index])
        return b"\n".join(lines)

    return tamper


TAMPERINGS: dict[str, Tamper] = {
    "untouched": lambda records: records,
    "edited record 1": _edit_line(0, lambda line: line.replace(b"statement", b"Statement", 1)),
    "edited record 150": _edit_line(149, lambda line: line.replace(b"statement", b"Statement", 1)),
    "edited last record": _edit_line(-2, lambda line: line.replace(b"statement", b"Statement", 1)),
    "non-canonical record 77": _edit_line(76, lambda line: line.replace(b'":', b'": ', 1)),
    "float seq in record 200": _edit_line(
        199, lambda line: re.sub(rb'"seq":(\d+)', rb'"seq":\1e0', line)
    ),
    "NFD in record 33": _edit_line(
        33, lambda line: line.replace(b"statement", "e\u0301".encode(), 1)
    ),
    "record 120 deleted": lambda records: b"\n".join(
        line for i, line in enumerate(records.split(b"\n")) if i != 119
    ),
    "records 40 and 41 swapped": lambda records: b"\n".join(_swap(records.split(b"\n"), 39, 40)),
    "a record past to_seq": lambda records: records + records.split(b"\n")[0] + b"\n",
    "cut short": lambda records: records[: len(records) // 2],
    "cut without a newline": lambda records: records[:-1],
    "blank line at 100": _edit_line(99, lambda line: line + b"\n"),
    "spliced from another ledger": _edit_line(
        60, lambda line: line.replace(LEDGER.encode(), b"elsewhere", 1)
    ),
}


def _swap(lines: list[bytes], a: int, b: int) -> list[bytes]:
    lines[a], lines[b] = lines[b], lines[a]
    return lines


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture(scope="module")
def genuine(signer: Signer) -> dict[int, bytes]:
    lines = chain_lines(SIZE)
    return {from_seq: _bundle(lines, signer, from_seq=from_seq) for from_seq in (1, 90)}


@pytest.fixture(scope="module")
def processes() -> Iterator[Executor]:
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Many small blocks, and workers used even for a bundle this small.
    monkeypatch.setattr(verification, "_CHUNK", 2048)
    monkeypatch.setattr(verification, "_POOL_MIN_RECORDS", 0)


def _report(
    bundle: bytes, signer: Signer, executor: Executor | None, **kwargs: Any
) -> dict[str, Any]:
    report, log = verify_bundle(io.BytesIO(bundle), signer.verifier, executor=executor, **kwargs)
    out = report.to_dict()
    out["roots"] = dict(log.roots) if log is not None else None
    return out


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("from_seq", [1, 90])
@pytest.mark.parametrize("how", sorted(TAMPERINGS))
def test_an_executor_gives_the_same_report(
    how: str, from_seq: int, genuine: dict[int, bytes], signer: Signer
) -> None:
    bundle = genuine[from_seq]
    tampered = _with_records(bundle, TAMPERINGS[how](_records_of(bundle)))
    alone = _report(tampered, signer, None)
    with ThreadPoolExecutor(3) as threads:
        assert _report(tampered, signer, threads) == alone
    assert alone["valid"] is (how == "untouched")


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("how", ["untouched", "edited record 150", "non-canonical record 77"])
def test_worker_processes_give_the_same_report(
    how: str, genuine: dict[int, bytes], signer: Signer, processes: Executor
) -> None:
    bundle = genuine[1]
    tampered = _with_records(bundle, TAMPERINGS[how](_records_of(bundle)))
    assert _report(tampered, signer, processes) == _report(tampered, signer, None)


@pytest.mark.usefixtures("small_blocks")
def test_roots_on_the_way_are_the_same_with_an_executor(
    genuine: dict[int, bytes], signer: Signer
) -> None:
    sizes = (0, 1, 7, 64, 150, 299, SIZE)
    alone = _report(genuine[1], signer, None, root_sizes=sizes)
    with ThreadPoolExecutor(2) as threads:
        assert _report(genuine[1], signer, threads, root_sizes=sizes) == alone
    leaves = [leaf_hash(line) for line in chain_lines(SIZE)]
    assert alone["roots"] == {size: root_from_leaves(leaves[:size]) for size in sizes}


class _Failing(ThreadPoolExecutor):
    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return super().submit(_explode)


def _explode() -> None:
    raise RuntimeError("worker died")


@pytest.mark.usefixtures("small_blocks")
def test_a_failing_worker_changes_nothing(genuine: dict[int, bytes], signer: Signer) -> None:
    bundle = genuine[1]
    tampered = _with_records(bundle, TAMPERINGS["edited record 150"](_records_of(bundle)))
    with _Failing(2) as failing:
        assert _report(bundle, signer, failing) == _report(bundle, signer, None)
        assert _report(tampered, signer, failing) == _report(tampered, signer, None)


@pytest.mark.usefixtures("small_blocks")
def test_a_shut_down_executor_changes_nothing(genuine: dict[int, bytes], signer: Signer) -> None:
    bundle = genuine[1]
    tampered = _with_records(bundle, TAMPERINGS["edited record 150"](_records_of(bundle)))
    closed = ThreadPoolExecutor(1)
    closed.shutdown()
    assert _report(bundle, signer, closed) == _report(bundle, signer, None)
    assert _report(tampered, signer, closed) == _report(tampered, signer, None)


def test_records_are_handed_to_on_record_with_an_executor_too(
    monkeypatch: pytest.MonkeyPatch, genuine: dict[int, bytes], signer: Signer
) -> None:
    monkeypatch.setattr(verification, "_CHUNK", 2048)
    monkeypatch.setattr(verification, "_POOL_MIN_RECORDS", 0)
    seen: list[Record] = []
    with ThreadPoolExecutor(2) as threads:
        report, _ = verify_bundle(
            io.BytesIO(genuine[1]), signer.verifier, executor=threads, on_record=seen.append
        )
    assert report.valid
    assert [record.seq for record in seen] == list(range(1, SIZE + 1))
    assert seen == [strict_record(line) for line in chain_lines(SIZE)]


def test_progress_is_reported_with_an_executor(
    monkeypatch: pytest.MonkeyPatch, genuine: dict[int, bytes], signer: Signer
) -> None:
    monkeypatch.setattr(verification, "_CHUNK", 2048)
    monkeypatch.setattr(verification, "_POOL_MIN_RECORDS", 0)
    monkeypatch.setattr(verification, "_PROGRESS_EVERY", 50)
    seen: list[int] = []
    with ThreadPoolExecutor(2) as threads:
        report, _ = verify_bundle(
            io.BytesIO(genuine[1]), signer.verifier, executor=threads, on_records=seen.append
        )
    assert report.valid
    assert seen == sorted(seen)
    assert seen[-1] == SIZE
    assert len(seen) > 2


def test_chain_errors_are_the_documented_classes() -> None:
    # The outcomes above compare class names; these are the classes meant.
    assert issubclass(PrevMismatch, ChainBroken)
    assert issubclass(MalformedRecord, VerificationError)
