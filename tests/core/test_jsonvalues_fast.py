"""``loads_strict``'s orjson path answers exactly as the strict reading does.

``_loads_checked`` (the standard library's parser with hooks, then the value
rules) is the reference: for every body, ``loads_strict`` must return the
same value, or raise the same error with the same message and field path.
The bodies are built to hit what the fast path must not get wrong:
duplicate members (at depth, spelled differently, with whitespace before the
colon, with ``":`` and escaped quotes inside names and values), floats,
large integers, deep nesting, non-ASCII and non-NFC text, escapes of every
kind, lone surrogates, and byte-level damage.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ledger.core.errors import InputError
from ledger.core.jsonvalues import (
    _UNSURE,
    MAX_DEPTH,
    _loads_checked,
    _loads_fast,
    loads_strict,
)


def answer(read: Any, raw: bytes, max_depth: int = MAX_DEPTH) -> object:
    """The value (repr: types and member order count) or the error, in full."""
    try:
        return ("value", repr(read(raw, max_depth=max_depth)))
    except InputError as e:
        return ("refused", type(e), str(e), e.field)


def assert_same(raw: bytes, max_depth: int = MAX_DEPTH) -> str:
    """Check both readings agree; say which path ``loads_strict`` took."""
    expected = answer(_loads_checked, raw, max_depth)
    assert answer(loads_strict, raw, max_depth) == expected
    fast = _loads_fast(raw, max_depth)
    if fast is _UNSURE:
        return "checked path"
    assert ("value", repr(fast)) == expected
    return "fast path"


# -- generated bodies ----------------------------------------------------------

_WHITESPACE = st.sampled_from(["", "", "", " ", "\n", "\t", "\r\n  "])

_NUMBERS = st.sampled_from(
    [
        "0",
        "-0",
        "7",
        "-12",
        "9007199254740991",
        "-9007199254740991",
        "9007199254740992",
        "-9007199254740992",
        "18446744073709551615",
        "18446744073709551616",
        "1" + "0" * 30,
        "1.0",
        "-0.0",
        "1e5",
        "1E+2",
        "2e-5",
        "0.5",
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        "01",
        "1.",
        "-",
    ]
)

_STRING_BODIES = st.sampled_from(
    [
        "",
        "a",
        "b",
        "plain text",
        '\\"',
        'x\\":1',
        '":',
        ":",
        "\\\\",
        'a\\\\"',
        "\\/",
        "\\n\\t\\r\\b\\f",
        "\\u0000",
        "\\u001f",
        "\\u0061",
        "\\u00e9",
        "\\u0065\\u0301",  # e + combining acute: not NFC
        "e\u0301",
        "é",
        "Київ",
        "\u212b",  # ANGSTROM SIGN: NFC maps it to U+00C5
        "\u2028",
        "\ue000",
        "\U0001f54a",
        "\\ud83d\\udd4a",  # a valid pair
        "\\ud800",  # lone high
        "\\udc00",  # lone low
        "\\ud83dx",
        "\\udd4a\\ud83d",  # reversed pair
        "\\ud800\\u0041",
        "\x7f",
        "\x1f",  # raw control character: not JSON
        "\\x",  # bad escape
        "\\u12",  # short escape
    ]
)

_NAMES = st.sampled_from(["a", "b", "\\u0061", 'k\\":', '":', "é", "e\u0301", "", "\\\\"])


@st.composite
def _text(draw: st.DrawFn, names: bool = False) -> str:
    parts = draw(st.lists(_NAMES if names else _STRING_BODIES, min_size=1, max_size=3))
    return '"' + "".join(parts) + '"'


@st.composite
def _json(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(
        st.sampled_from(["number", "string", "literal", "array", "object", "object", "deep"])
    )
    if depth > 3 and kind in ("array", "object", "deep"):
        kind = "number"
    if kind == "number":
        return draw(_NUMBERS)
    if kind == "string":
        return draw(_text())
    if kind == "literal":
        return draw(st.sampled_from(["true", "false", "null"]))
    if kind == "deep":
        n = draw(st.sampled_from([1, 62, 63, 64, 65, 70]))
        if draw(st.booleans()):
            return "[" * n + draw(_json(depth=4)) + "]" * n
        return '{"d":' * n + draw(_json(depth=4)) + "}" * n
    ws = draw(_WHITESPACE)
    count = draw(st.integers(0, 4))
    if kind == "array":
        items = [draw(_json(depth=depth + 1)) for _ in range(count)]
        return "[" + ws + ("," + ws).join(items) + ws + "]"
    members = []
    for _ in range(count):
        name = draw(_text(names=True))
        before, after = draw(_WHITESPACE), draw(_WHITESPACE)
        members.append(f"{name}{before}:{after}{draw(_json(depth=depth + 1))}")
    return "{" + ws + ("," + ws).join(members) + ws + "}"


_DAMAGE = st.sampled_from([b'"', b"\\", b":", b",", b"}", b"]", b"\xff", b"\xc3", b"\x00", b" "])


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    raw = (draw(_WHITESPACE) + draw(_json()) + draw(_WHITESPACE)).encode()
    if raw and draw(st.integers(0, 9)) == 0:  # now and then, break a byte
        at = draw(st.integers(0, len(raw) - 1))
        how = draw(st.sampled_from(["delete", "insert", "replace"]))
        byte = draw(_DAMAGE)
        if how == "delete":
            raw = raw[:at] + raw[at + 1 :]
        elif how == "insert":
            raw = raw[:at] + byte + raw[at:]
        else:
            raw = raw[:at] + byte + raw[at + 1 :]
    return raw


@settings(max_examples=1000, deadline=None)
@given(raw=bodies())
def test_the_fast_path_answers_as_the_strict_reading(raw: bytes) -> None:
    event(assert_same(raw))


@settings(max_examples=500, deadline=None)
@given(raw=bodies(), max_depth=st.integers(1, 6))
def test_the_fast_path_answers_as_the_strict_reading_at_any_depth_limit(
    raw: bytes, max_depth: int
) -> None:
    event(assert_same(raw, max_depth))


_names = st.text(st.characters(exclude_categories=("Cs",)), max_size=4)
_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**54), max_value=2**54)
    | st.floats()
    | st.text(st.characters(), max_size=6),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_names, children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=1500, deadline=None)
@given(value=_values, ensure_ascii=st.booleans(), indent=st.sampled_from([None, 1]))
def test_serialized_python_values_read_alike(
    value: object, ensure_ascii: bool, indent: int | None
) -> None:
    try:
        text = json.dumps(value, ensure_ascii=ensure_ascii, indent=indent)
    except ValueError:  # a float key order problem cannot happen; NaN is allowed
        return
    try:
        raw = text.encode()
    except UnicodeEncodeError:  # a lone surrogate written raw: only ASCII mode can carry it
        return
    event(assert_same(raw))


# -- chosen bodies ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1,"a":2}',
        b'{"a":1,"\\u0061":2}',
        b'{"a" :1,"a":2}',
        b'{"a"\n:1,\n"a"\t:\t2}',
        b'{"x":{"y":[{"z":1,"z":1}]}}',
        b'[{"a":1},{"a":1},{"b":{"a":1,"b":2,"a":3}}]',
        b'{"k\\":":1,"k\\":":2}',
        b'{"\\":":":","\\":":":"}',
        b'{"a":"\\"","b":"\\"\\"","a":"x"}',
        b'{"a\\\\":1,"a\\\\":2}',
        b'{"a":"x\\\\","b":1}',
        b'{"e\xcc\x81":1}',
        b'{"\xc3\xa9":1,"\xc3\xa9":2}',
        b'{"s":"\\u0065\\u0301"}',
        b'{"s":"\\ud83d\\udd4a","t":"\\u00e9"}',
        b'{"s":"\\ud800"}',
        b'{"n":1.0}',
        b'{"n":-0}',
        b'{"n":1e5}',
        b'{"n":9007199254740992}',
        b'{"n":18446744073709551616}',
        b'{"n":' + b"9" * 5000 + b"}",
        b"[" * 64 + b"]" * 64,
        b"[" * 65 + b"]" * 65,
        b"[" * 2000 + b"]" * 2000,
        b'\xef\xbb\xbf{"a":1}',
        b'{"a":"\x1f"}',
        b'{"a":NaN}',
        b"",
        b"   ",
        b'"just a string"',
        b"12",
        b'{"a":1} ',
        b'{"a":1}\x00',
        b'{"a":"\xed\xa0\x80"}',
        b'["\\U0041"]',
        b'["\\u00410"]',
        b'["\t"]',
        b"[1,2,]",
        b'{"a":1,}',
        b"[01]",
        b"[.5]",
        b'{"a" 1}',
        b"{1:2}",
    ],
)
def test_chosen_bodies_read_alike(raw: bytes) -> None:
    assert_same(raw)


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps([{"type": "x", "data": {"n": i, "s": f'a:{i}.5 "q"'}} for i in range(50)]),
        json.dumps({"summary": "Київ, café, 🕊"}, ensure_ascii=False),
        json.dumps({"summary": "Київ, café, 🕊"}, ensure_ascii=True),
        json.dumps({"t": "line\nbreak\ttab", "u": "https://example.org/a:b"}, indent=2),
        json.dumps({"s": "é\n"}, ensure_ascii=False),
    ],
)
def test_ordinary_bodies_take_the_fast_path(raw: str) -> None:
    body = raw.encode()
    fast = _loads_fast(body, MAX_DEPTH)
    assert fast is not _UNSURE
    assert repr(fast) == repr(_loads_checked(body, max_depth=MAX_DEPTH))


def test_the_orjson_refusals_the_fast_path_relies_on() -> None:
    for raw in (
        b'"\\ud800"',
        b'"\\udc00"',
        b'"\\ud83dx"',
        b'"\\ud800\\u0041"',
        b'"\\udd4a\\ud83d"',
        b'\xef\xbb\xbf"x"',
        b"NaN",
        b"-Infinity",
        b'"\x1f"',
        b'"\xed\xa0\x80"',
        b"[" * 1025 + b"]" * 1025,
    ):
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(raw)
