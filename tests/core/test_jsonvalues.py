"""Strict JSON (format §1): integers only with |n| < 2^53, NFC strings, no
duplicate member names, no lone surrogates, bounded depth; every refusal
names the offending member's path."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.errors import InputError, InvalidEvent, MalformedJSON
from ledger.core.jsonvalues import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    check_value,
    format_path,
    loads_strict,
)

LARGEST = 2**53 - 1


def nested_lists(depth: int) -> bytes:
    """``[[...]]`` with ``depth`` levels of arrays."""
    return b"[" * depth + b"]" * depth


def nested_objects(depth: int) -> bytes:
    """``{"a":{"a":...{}}}`` with ``depth`` levels of objects."""
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def refusal(raw: bytes) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        loads_strict(raw)
    return caught.value


# -- numbers -----------------------------------------------------------------


def test_the_limits_are_those_of_the_spec() -> None:
    assert MAX_SAFE_INTEGER == 2**53
    assert MAX_DEPTH == 64


@pytest.mark.parametrize("number", ["1.5", "1e3", "1E+2", "-0.0", "0.0", "1.0", "2e-5"])
def test_a_number_with_a_fraction_or_exponent_is_refused_with_its_path(number: str) -> None:
    error = refusal(f'{{"data":{{"share":{number}}}}}'.encode())
    assert error.field == "data.share"
    assert number in error.detail


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(constant: str) -> None:
    error = refusal(f'{{"x":[{constant}]}}'.encode())
    assert error.field == "x[0]"


@pytest.mark.parametrize("number", [LARGEST, -LARGEST, 0, -0, 1, -1])
def test_integers_below_two_to_the_53_are_accepted(number: int) -> None:
    assert loads_strict(f'{{"n":{number}}}'.encode()) == {"n": number}


@pytest.mark.parametrize("number", [2**53, -(2**53), 2**64, -(10**30)])
def test_integers_from_two_to_the_53_are_refused_with_their_path(number: int) -> None:
    error = refusal(f'{{"data":{{"amount":{number}}}}}'.encode())
    assert error.field == "data.amount"


def test_minus_zero_written_as_an_integer_is_the_integer_zero() -> None:
    value = loads_strict(b"[-0]")
    assert value == [0]
    assert isinstance(value[0], int)


# -- member names ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"a":1,"a":2}', "a"),
        (b'{"a":1,"a":1}', "a"),
        (b'{"data":{"stance":"oppose","stance":"support"}}', "data.stance"),
        (b'[{"ok":1},{"x":{"y":1,"y":2}}]', "[1].x.y"),
    ],
)
def test_a_member_named_twice_is_refused_with_its_path(raw: bytes, field: str) -> None:
    error = refusal(raw)
    assert error.field == field


# -- strings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"data":{"summary":"caf\u0065\u0301"}}', "data.summary"),
        ('{"data":{"terms":["e\u0301"]}}', "data.terms[0]"),
        ('{"A\u030a":1}', "A\u030a"),  # a decomposed member name
    ],
)
def test_a_string_not_in_nfc_is_refused_with_its_path(raw: str, field: str) -> None:
    error = refusal(raw.encode())
    assert error.field == field
    assert "NFC" in error.detail


@pytest.mark.parametrize("text", ["café", "Київ", "日本語", "Å", "emoji 🕊", "Zürich"])
def test_non_ascii_nfc_text_is_accepted(text: str) -> None:
    assert unicodedata.is_normalized("NFC", text)
    raw = json.dumps({text: text}, ensure_ascii=False).encode()
    assert loads_strict(raw) == {text: text}
    escaped = json.dumps({text: text}, ensure_ascii=True).encode()
    assert loads_strict(escaped) == {text: text}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"s":"\\ud800"}', "s"),
        (b'{"s":"x\\udfffy"}', "s"),
        (b'{"data":{"list":["ok","\\udbff"]}}', "data.list[1]"),
    ],
)
def test_a_lone_surrogate_is_refused_with_its_path(raw: bytes, field: str) -> None:
    error = refusal(raw)
    assert error.field == field
    assert "surrogate" in error.detail


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"\\ud800":1}', "\\ud800"),
        (b'{"data":{"terms":{"a\\udc00b":1}}}', "data.terms.a\\udc00b"),
        (b'[{"x":1},{"\\udbff":[]}]', "[1].\\udbff"),
        (b'{"data":{"\\ud800":1,"\\ud800":2}}', "data.\\ud800"),
    ],
)
def test_a_lone_surrogate_in_a_member_name_is_named_in_utf8_text(raw: bytes, field: str) -> None:
    # The refusal is sent as UTF-8, which the name itself has no form in.
    error = refusal(raw)
    assert error.field == field
    str(error).encode("utf-8")
    assert str(error).startswith(field)


def test_an_escaped_surrogate_pair_is_one_valid_character() -> None:
    assert loads_strict(b'{"s":"\\ud83d\\udd4a"}') == {"s": "\U0001f54a"}


# -- depth -------------------------------------------------------------------


@pytest.mark.parametrize("build", [nested_lists, nested_objects], ids=["arrays", "objects"])
def test_nesting_of_64_levels_is_accepted(build: Any) -> None:
    loads_strict(build(MAX_DEPTH))


@pytest.mark.parametrize("build", [nested_lists, nested_objects], ids=["arrays", "objects"])
def test_nesting_of_65_levels_is_refused(build: Any) -> None:
    error = refusal(build(MAX_DEPTH + 1))
    assert "nesting" in error.detail


def test_nesting_is_counted_from_the_root_and_reported_where_it_overflows() -> None:
    # The event object is level 1, data level 2, so terms may hold 62 levels of arrays.
    loads_strict(b'{"data":{"terms":' + nested_lists(MAX_DEPTH - 2) + b"}}")
    error = refusal(b'{"data":{"terms":' + nested_lists(MAX_DEPTH - 1) + b"}}")
    assert error.field == "data.terms" + "[0]" * (MAX_DEPTH - 2)


@pytest.mark.parametrize("build", [nested_lists, nested_objects], ids=["arrays", "objects"])
def test_absurdly_deep_nesting_is_an_invalid_event_not_a_recursion_error(build: Any) -> None:
    raw = build(100_000)
    with pytest.raises(InvalidEvent):
        loads_strict(raw)


def test_a_smaller_depth_limit_can_be_asked_for() -> None:
    loads_strict(nested_lists(3), max_depth=3)
    with pytest.raises(InvalidEvent):
        loads_strict(nested_lists(4), max_depth=3)


# -- malformed input ---------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":"\xff"}',
        b"\xc3\x28",
        b'{"a":"\xed\xa0\x80"}',  # a surrogate encoded as UTF-8 is not UTF-8
        b"\xfe\xff\x00{\x00}",
    ],
)
def test_invalid_utf8_is_malformed_json(raw: bytes) -> None:
    with pytest.raises(MalformedJSON):
        loads_strict(raw)


@pytest.mark.parametrize("raw", [b"", b"{", b"{'a':1}", b"[1,]", b"nope", b'{"a":1} x', b"\x00"])
def test_text_that_is_not_json_is_malformed_json(raw: bytes) -> None:
    with pytest.raises(MalformedJSON) as caught:
        loads_strict(raw)
    assert isinstance(caught.value, InputError)
    assert not isinstance(caught.value, InvalidEvent)


# -- paths -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), "(root)"),
        (("data",), "data"),
        (("data", "terms", 2, "x"), "data.terms[2].x"),
        ((0,), "[0]"),
        ((3, "data", "stance"), "[3].data.stance"),
        ((1, 2), "[1][2]"),
        (("data", "Zürich"), "data.Zürich"),
        (("data", "\ud800x", 0), "data.\\ud800x[0]"),
    ],
)
def test_paths_are_formatted_as_dotted_members_and_bracketed_indexes(
    path: tuple[str | int, ...], text: str
) -> None:
    assert format_path(path) == text


def test_the_path_of_a_refusal_inside_arrays_and_objects() -> None:
    error = refusal(b'{"data":{"terms":[1,2,{"x":1.5}]}}')
    assert error.field == "data.terms[2].x"
    assert str(error).startswith("data.terms[2].x: ")


# -- check_value on Python values --------------------------------------------


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"a": 1.0}, "a"),
        ({"a": [float("nan")]}, "a[0]"),
        ({"a": (1, 2)}, "a"),
        ({"a": {1, 2}}, "a"),
        ({"a": b"bytes"}, "a"),
        ({"a": 2**53}, "a"),
        ({"e\u0301": 1}, "e\u0301"),
    ],
)
def test_check_value_refuses_what_json_cannot_carry(value: Any, field: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        check_value(value)
    assert caught.value.field == field


def test_check_value_accepts_the_json_scalars() -> None:
    check_value({"t": True, "f": False, "n": None, "i": -5, "s": "x", "l": [], "o": {}})


# -- property: strict JSON round-trips every allowed value ---------------------

_integers = st.integers(min_value=-LARGEST, max_value=LARGEST)
_nfc_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12).map(
    lambda s: unicodedata.normalize("NFC", s)
)
_scalars = st.one_of(st.none(), st.booleans(), _integers, _nfc_text)


def _values(depth: int) -> st.SearchStrategy[Any]:
    """JSON values nested at most ``depth`` containers deep."""
    strategy: st.SearchStrategy[Any] = _scalars
    for _ in range(depth):
        strategy = st.one_of(
            _scalars,
            st.lists(strategy, max_size=3),
            st.dictionaries(_nfc_text, strategy, max_size=3),
        )
    return strategy


@settings(database=None, max_examples=300, deadline=None)
@given(value=_values(10), ensure_ascii=st.booleans())
def test_any_allowed_value_round_trips_unchanged(value: Any, ensure_ascii: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ensure_ascii).encode()
    assert loads_strict(raw) == value
    check_value(value)


def test_an_integer_of_thousands_of_digits_is_refused_as_out_of_range() -> None:
    with pytest.raises(InvalidEvent, match="out of range"):
        loads_strict(b'{"n": ' + b"9" * 5000 + b"}")


_TOKENS = st.sampled_from(
    [
        "1",
        "-0",
        "9007199254740991",
        "9007199254740992",
        "-9007199254740993",
        "1.5",
        "1e3",
        "NaN",
        '"a"',
        '"\\u00e9"',
        '"e\\u0301"',
        '"\\ud800"',
        '"é"',
        "true",
        "null",
    ]
)


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    """JSON texts built from tricky tokens, repeated members and deep nesting."""

    def build(depth: int) -> str:
        kind = draw(st.sampled_from(["token", "array", "object", "deep"]))
        if kind == "token" or depth > 3:
            return draw(_TOKENS)
        if kind == "deep":
            n = draw(st.sampled_from([62, 63, 64, 65]))
            return "[" * n + draw(_TOKENS) + "]" * n
        if kind == "array":
            return "[" + ",".join(build(depth + 1) for _ in range(draw(st.integers(0, 3)))) + "]"
        names = draw(st.lists(st.sampled_from(["a", "b", "é"]), max_size=3))
        return "{" + ",".join(f'"{n}":{build(depth + 1)}' for n in names) + "}"

    return build(0).encode()


@settings(max_examples=400, deadline=None)
@given(raw=_bodies())
def test_the_fast_path_refuses_exactly_what_the_full_walk_refuses(raw: bytes) -> None:
    import json as std_json

    from ledger.core.jsonvalues import _Float, _pairs

    def full(body: bytes) -> object:
        value = std_json.loads(
            body.decode(), parse_float=_Float, parse_constant=_Float, object_pairs_hook=_pairs
        )
        check_value(value)
        return value

    try:
        expected: object = full(raw)
    except InvalidEvent as e:
        expected = ("refused", e.field, str(e))
    try:
        got: object = loads_strict(raw)
    except InvalidEvent as e:
        got = ("refused", e.field, str(e))
    assert got == expected
