"""Record lines read in bulk: a quick acceptance test for one, and the check of a run.

Both serve verifiers that read many ``records.jsonl`` lines; the hashes of a
run come from ``hashing`` and its subtrees from ``merkle``, like every other.

``ChainVerifier`` reads an untrusted line with ``loads_strict`` and
``Record.from_dict``, which name precisely what is wrong but cost tens of
microseconds a line in Python. Almost every line of a genuine export is
fine, so ``parse_line`` first asks a cheaper question: is this line
certainly canonical and certainly a well-formed record? It answers with the
record, or ``None`` when it is not sure, and the caller then runs the strict
reading, which accepts the line or says why not. The quick test must
therefore never accept a line the strict reading refuses; it may leave
valid lines to it whenever a case is rare or awkward.

Two readings, the cheaper first: member by member (``_read_shaped``: the
members in canonical order matched as text, only ``data`` and ``source``
parsed and re-encoded), else the whole line parsed by the C decoder and
re-encoded by the C encoder (``_read_any``). Why each strict rule holds for
a line either accepts:

- canonical: the line equals the C encoder's compact, sorted output of what
  the C decoder parsed (for the first reading: each piece is the canonical
  encoding of its member, and the pieces come in sorted order with compact
  separators). ``canonical.py`` explains why that output is RFC 8785 for
  integers and strings; the one exception, member names beyond U+FFFF, is
  left to the strict reading by refusing lines with astral characters.
- no duplicate member names and no insignificant whitespace: an encoding
  names each member once and holds no whitespace, so it could not equal the
  line otherwise.
- no floats, NaN or Infinity: the decoder's hooks for them raise.
- |n| < 2^53: the integer hook checks any integer of 16 digits or more.
- nesting at most ``MAX_DEPTH``: fewer brackets than that cannot nest deeper;
  a line with more has its parsed value measured.
- NFC, no lone surrogates: an ASCII line has neither problem. Otherwise the
  line must hold no backslash, so every string is a run of the line between
  two quotes; the quote is a stable code point (no canonical decomposition
  holds it and it does not combine), so the line is NFC exactly when each of
  those runs is. A lone surrogate cannot come out of UTF-8 decoding, and
  without a backslash there is no ``\\ud800`` escape either.
- the record members: ``_is_record``, and the patterns of the first
  reading, are ``Record.from_dict`` without its messages;
  ``tests/core/test_record_lines.py`` checks that they accept the same lines.
"""

from __future__ import annotations

import itertools
import json
import operator
import re
import unicodedata
from collections.abc import Callable
from typing import Any, NamedTuple

from ledger.core.authors import AUTHOR_TYPES
from ledger.core.documents import DOCUMENT_MARK
from ledger.core.hashing import leaf_hashes, record_hashes
from ledger.core.jsonvalues import MAX_DEPTH, MAX_SAFE_INTEGER
from ledger.core.merkle import fold_perfect_subtrees
from ledger.core.records import (
    LEDGER_NAME_PATTERN,
    OPTIONAL_MEMBERS,
    REQUIRED_MEMBERS,
    UUID_PATTERN,
)
from ledger.core.times import OCCURRED_AT_PATTERN, RECORDED_AT_PATTERN

__all__ = ["ROTATION_TYPE", "RunSummary", "check_run", "parse_line"]

# format §3: the record type that hands trust from one signing key to the next.
ROTATION_TYPE = "key.rotated"


class RunSummary(NamedTuple):
    """A run of lines that passed every check that does not need the record before it."""

    lines: int
    first_prev: str
    first_recorded_at: str
    last_recorded_at: str
    head_hash: str
    # The Merkle leaf hashes of the lines, 32 bytes each, in order.
    leaves: bytes
    # (level, root) of aligned perfect subtrees covering the leaves, in order.
    subtrees: tuple[tuple[int, bytes], ...]
    # How many of the lines are key.rotated records: a verifier following
    # rotations reads those runs line by line, to see the records.
    rotations: int = 0
    # How many are author.registered or author.revoked records (format §1.4):
    # a verifier keeping the author registry reads those runs line by line.
    # (A signed record is never in a run: ``parse_line`` leaves it to the
    # strict reading.)
    registrations: int = 0
    # Whether a line may cite a source document (format §1.3): a verifier
    # collecting the citations reads the run line by line.
    documents: bool = False


class _Refused(Exception):
    """A value the quick test will not accept; the strict path says why."""


def _refuse(_: str) -> Any:
    raise _Refused


def _safe_int(text: str) -> int:
    number = int(text)
    # Up to 15 digits is below 10^15 < 2^53; only longer runs need the comparison.
    if len(text) > 15 and not -MAX_SAFE_INTEGER < number < MAX_SAFE_INTEGER:
        raise _Refused
    return number


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
# The C scanner itself: ``JSONDecoder.decode`` adds a regex for the
# whitespace around the value, which a canonical line has none of.
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(
    parse_float=_refuse, parse_int=_safe_int, parse_constant=_refuse
).scan_once  # type: ignore[attr-defined]


def _not_json(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _make_encoder() -> Callable[[Any, int], list[str]]:
    encode = json.JSONEncoder(
        ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
    ).encode
    # ``JSONEncoder.encode`` builds this C encoder anew on every call, which
    # costs a fifth of the encoding of a record; it is what ``encode`` runs,
    # minus the cycle check a parsed value has no use for.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is not None:
        try:
            chunks: Callable[[Any, int], list[str]] = make(
                None, _not_json, json.encoder.encode_basestring, None, ":", ",", True, False, False
            )
        except TypeError:
            pass
        else:
            return chunks
    return lambda value, _: [encode(value)]


_encode_chunks = _make_encoder()


class _Layout(NamedTuple):
    """How to check a record with a given set of members."""

    # The string members, in the sorted order of the line.
    strings: Callable[[dict[str, Any]], tuple[str, ...]]
    # Their formats, joined by newlines like the strings.
    formats: re.Pattern[str]
    source: bool


# ``actor``, ``type``, ``party`` and ``topic`` are any string; the others
# have formats. None of these patterns admits a newline, so the strings
# joined by newlines match the joined patterns only if the text holds no
# newline but the joining ones, and then each string matches its own
# pattern. A free string holding a newline is left to the strict path.
_FORMAT_OF = {
    "ledger": LEDGER_NAME_PATTERN,
    "id": UUID_PATTERN,
    "occurred_at": OCCURRED_AT_PATTERN,
    "recorded_at": RECORDED_AT_PATTERN,
    "prev": re.compile(r"\A[0-9a-f]{64}\Z"),
}
_ANY_STRING = "[^\n]*"
_NOT_STRINGS = frozenset({"seq", "data", "source"})


def _layout(names: tuple[str, ...]) -> _Layout:
    strings = [name for name in names if name not in _NOT_STRINGS]
    patterns = (
        _FORMAT_OF[name].pattern.removeprefix(r"\A").removesuffix(r"\Z")
        if name in _FORMAT_OF
        else _ANY_STRING
        for name in strings
    )
    return _Layout(
        strings=operator.itemgetter(*strings),
        formats=re.compile("\n".join(patterns), re.ASCII),
        source="source" in names,
    )


# A signed record (format §1.4) is left to the strict reading: its verifier
# reads it as a record anyway, to check the signature.
_QUICK_OPTIONAL = OPTIONAL_MEMBERS - {"author"}
# By the member names of a record, in the sorted order a canonical line has them.
_LAYOUTS = {
    names: _layout(names)
    for names in (
        tuple(sorted(REQUIRED_MEMBERS | set(optional)))
        for k in range(len(_QUICK_OPTIONAL) + 1)
        for optional in itertools.combinations(_QUICK_OPTIONAL, k)
    )
}


def _is_record(obj: Any) -> bool:
    """``Record.from_dict`` without its messages: the same objects pass."""
    layout = _LAYOUTS.get(tuple(obj)) if type(obj) is dict else None
    if layout is None:
        return False
    try:
        joined = "\n".join(layout.strings(obj))
    except TypeError:  # a member that is not a string
        return False
    seq = obj["seq"]
    if type(seq) is not int or seq < 1 or type(obj["data"]) is not dict:
        return False
    if layout.source and type(obj["source"]) is not dict:
        return False
    return layout.formats.fullmatch(joined) is not None


def _shallow(value: Any) -> bool:
    """No container nests deeper than ``MAX_DEPTH`` (the root is at depth 1)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        children = node.values() if type(node) is dict else node
        stack.extend((child, depth + 1) for child in children if type(child) in (dict, list))
    return True


def _fixed(name: str) -> str:
    return _FORMAT_OF[name].pattern.removeprefix(r"\A").removesuffix(r"\Z")


# A genuine line read as text, member by member, in the order a canonical line
# has them: only ``data`` and ``source`` are parsed and re-encoded. A string
# without quote, backslash or control character is its own canonical
# encoding between quotes; the formats never hold one. If a line matches
# these pieces, it is the canonical encoding of the record they make up
# (sorted, compact, each member once), so it parses to exactly that record.
_FREE = r'"([^"\\\x00-\x1f]*)"'
_HEAD = re.compile(r'\{"actor":' + _FREE + r',"data":')
_MIDDLE = re.compile(
    rf',"id":"({_fixed("id")})","ledger":"({_fixed("ledger")})"'
    rf',"occurred_at":"({_fixed("occurred_at")})",(?:"party":{_FREE},)?'
    rf'"prev":"({_fixed("prev")})","recorded_at":"({_fixed("recorded_at")})"'
    r',"seq":([1-9][0-9]*)(,"source":)?',
    re.ASCII,
)
_TAIL = re.compile(r'(?:,"topic":' + _FREE + r')?,"type":' + _FREE + r"\}")


def _read_shaped(text: str) -> dict[str, Any] | None:
    head = _HEAD.match(text)
    if head is None:
        return None
    # ``data`` and ``source`` must each be an object that is its own
    # canonical encoding (the scanner stops where the object ends).
    start = head.end()
    data, end = _scan(text, start)
    encoded = "".join(_encode_chunks(data, 0))
    if type(data) is not dict or len(encoded) != end - start or not text.startswith(encoded, start):
        return None
    middle = _MIDDLE.match(text, end)
    if middle is None:
        return None
    id_, ledger, occurred_at, party, prev, recorded_at, seq_text, has_source = middle.groups()
    end = middle.end()
    source = None
    if has_source:
        start = end
        source, end = _scan(text, start)
        encoded = "".join(_encode_chunks(source, 0))
        if (
            type(source) is not dict
            or len(encoded) != end - start
            or not text.startswith(encoded, start)
        ):
            return None
    tail = _TAIL.fullmatch(text, end)
    if tail is None:
        return None
    seq = int(seq_text)
    if seq >= MAX_SAFE_INTEGER:
        return None
    record = {
        "actor": head[1],
        "data": data,
        "id": id_,
        "ledger": ledger,
        "occurred_at": occurred_at,
        "prev": prev,
        "recorded_at": recorded_at,
        "seq": seq,
        "type": tail[2],
    }
    if party is not None:
        record["party"] = party
    if source is not None:
        record["source"] = source
    if tail[1] is not None:
        record["topic"] = tail[1]
    return record


def _read_any(text: str) -> dict[str, Any] | None:
    obj = _scan(text, 0)[0]
    if "".join(_encode_chunks(obj, 0)) != text or not _is_record(obj):
        return None
    record: dict[str, Any] = obj
    return record


def parse_line(line: bytes) -> dict[str, Any] | None:
    """The record ``line`` holds if it certainly passes every per-line check, else ``None``."""
    if line.isascii():
        text = line.decode("ascii")
    else:
        if b"\\" in line:
            return None
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if _ASTRAL.search(text) is not None or not unicodedata.is_normalized("NFC", text):
            return None
    try:
        # The member-by-member reading first: it parses and re-encodes only
        # ``data`` and ``source``, and takes half the time of the whole line.
        record = _read_shaped(text) or _read_any(text)
    except (_Refused, StopIteration, ValueError, RecursionError):
        return None
    if record is None:
        return None
    if line.count(b"{") + line.count(b"[") > MAX_DEPTH and not _shallow(record):
        return None
    return record


def check_run(block: bytes, *, ledger: str, first_seq: int, merkle: bool) -> RunSummary | None:
    """Check newline-separated lines that should be records ``first_seq``, ``first_seq + 1``...

    Everything but the link to the record before the run is checked: each
    line, ``ledger``, consecutive ``seq``, non-decreasing ``recorded_at`` and
    each ``prev`` after the first. ``None`` means some line needs the strict
    path, to be refused with a reason or accepted after all. With ``merkle``
    the summary also holds the run's part of the tree over seq 1 onwards.
    """
    lines = block.split(b"\n")
    prevs: list[str] = []
    recorded_at = first_recorded_at = ""
    seq = first_seq
    rotations = registrations = 0
    for line in lines:
        obj = parse_line(line)
        if obj is None or obj["ledger"] != ledger or obj["seq"] != seq:
            return None
        if seq == first_seq:
            first_recorded_at = obj["recorded_at"]
        elif obj["recorded_at"] < recorded_at:
            return None
        recorded_at = obj["recorded_at"]
        prevs.append(obj["prev"])
        kind = obj["type"]
        if kind == ROTATION_TYPE:
            rotations += 1
        elif kind in AUTHOR_TYPES:
            registrations += 1
        seq += 1
    hashes = record_hashes(lines)
    # Each prev after the first is the hash of the line before it.
    if prevs[1:] != hashes[:-1]:
        return None
    leaves = leaf_hashes(lines)
    return RunSummary(
        lines=len(leaves),
        first_prev=prevs[0],
        first_recorded_at=first_recorded_at,
        last_recorded_at=recorded_at,
        head_hash=hashes[-1],
        leaves=b"".join(leaves),
        subtrees=tuple(fold_perfect_subtrees(first_seq - 1, leaves)) if merkle else (),
        rotations=rotations,
        registrations=registrations,
        documents=DOCUMENT_MARK in block,
    )
