"""The fast canonical encoder equals the RFC 8785 reference on every value."""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from collections.abc import Callable

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core import canonical
from ledger.core.canonical import (
    canonical_bytes,
    canonical_bytes_of_strict,
    reference_canonical_bytes,
)
from ledger.core.errors import InputError
from ledger.core.jsonvalues import loads_strict

text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)),  # no lone surrogates
    max_size=20,
)
scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | text
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(text, children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=600)
@given(values)
def test_fast_path_equals_the_reference(value: object) -> None:
    assert canonical_bytes(value) == reference_canonical_bytes(value)


@pytest.mark.parametrize(
    "value",
    [
        {"\U0001f600": 1, "\ue000": 2},  # UTF-16 order differs from code point order
        {"a": 1.5},
        {"a": [1e21, -0.0, 0.1]},
        {"z": '\u2028\u2029\x7f\x00\x1f"\\'},
        {"b": 1, "a": {"d": [], "c": {}}},
    ],
)
def test_the_cases_where_the_encoders_could_differ(value: object) -> None:
    assert canonical_bytes(value) == reference_canonical_bytes(value)


def test_member_names_sort_by_utf16_code_units() -> None:
    assert canonical_bytes({"\U0001f600": 1, "\ue000": 2}) == (
        '{"\U0001f600":1,"\ue000":2}'.encode()
    )


float_values = st.recursive(
    scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300)
@given(float_values)
def test_values_with_floats_fall_back_to_the_reference(value: object) -> None:
    assert canonical_bytes(value) == reference_canonical_bytes(value)


@pytest.mark.parametrize(
    "value",
    [
        1.5,
        -2.0,
        [1.5],
        {"a": [1, 2.0]},
        {"a": -1e20},
        {"t": "2026-11-26T18:46:06.123456Z", "n": 0.5},
        {"s": "a,1.5", "q": 'x":1.5', "f": 3.25},
    ],
)
def test_a_float_anywhere_is_encoded_by_the_reference(value: object) -> None:
    assert canonical_bytes(value) == reference_canonical_bytes(value)


def test_times_and_number_like_strings_take_the_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(canonical, "reference_canonical_bytes", _no_reference)
    for value in (
        {"t": "2026-11-26T18:46:06.123456Z"},
        {"s": "a,1.5"},
        {"q": 'x":1.5'},
        {"n": None, "b": [True, False], "i": -(2**53) + 1, "e": "1e5"},
        {"emoji": "\U0001f54a", "k": "Київ"},  # astral text with no U+E000-U+FFFF
        {"pua": "\ue000", "t": (1, "\u2028")},  # tuples are arrays
    ):
        assert canonical_bytes(value) == rfc8785.dumps(value)


def _no_reference(value: object) -> bytes:
    raise AssertionError(f"{value!r} left the fast path")


# -- the fast path against the reference, value by value -----------------------


class Text(str):
    pass


class Number(int):
    pass


class Mapping(dict[str, object]):
    pass


class Items(list[object]):
    pass


class Level(enum.IntEnum):
    LOW = 1


class Colour(enum.Enum):
    RED = "red"


class Stance(enum.StrEnum):
    DEMAND = "demand"


def outcome(encode: Callable[[object], bytes], value: object) -> object:
    """The bytes, or the exception's type and message."""
    try:
        return encode(value)
    except Exception as e:  # the reference's refusals are part of the contract
        return (type(e), str(e))


# Characters where the encoders could part: controls, quote, backslash,
# slash, DEL, the line separators, the BMP's top (U+E000-U+FFFF) against
# astral ones (UTF-16 order), and lone surrogates.
_tricky_chars = st.sampled_from(
    [
        "\x00", "\x08", "\t", "\n", "\x0b", "\x0c", "\r", "\x1f", '"', "\\", "/",
        "\x7f", "\u2028", "\u2029", "\ue000", "\uffff", "\ufffd", "\U00010000",
        "\U0001f600", "\U0010ffff", "\ud800", "\udfff", "a", "é",
    ]
)  # fmt: skip
_any_text = st.text(
    alphabet=st.one_of(st.characters(), _tricky_chars),  # st.characters() includes Cs
    max_size=8,
)
_oddities = st.sampled_from(
    [
        Text("sub"),
        Number(7),
        Level.LOW,
        Colour.RED,
        Stance.DEMAND,
        uuid.UUID(int=1),
        orjson.Fragment(b"1"),
        b"bytes",
        {1, 2},
        decimal.Decimal("1.5"),
        datetime.date(2026, 1, 1),
    ]
)
_wide_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**53 - 1, 2**53, -(2**53) + 1, -(2**53), 2**63, 2**64, -(2**64) - 1]),
    st.floats(),  # NaN and infinities included
    st.sampled_from([0.0, -0.0, 1.0, 1e5, 1e21, 1e-7, 5e-324]),
    _any_text,
    _oddities,
)


def _containers(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    names = st.one_of(_any_text, st.sampled_from([Text("k"), 1, None]))
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.lists(children, max_size=3).map(Items),
        st.dictionaries(_any_text, children, max_size=4),
        st.dictionaries(names, children, max_size=3),
        st.dictionaries(_any_text, children, max_size=3).map(Mapping),
    )


wide_values = st.recursive(_wide_scalars, _containers, max_leaves=20)


@settings(max_examples=1500, deadline=None)
@given(wide_values)
def test_every_value_meets_the_reference_or_its_error(value: object) -> None:
    assert outcome(canonical_bytes, value) == outcome(reference_canonical_bytes, value)


_json_names = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=("Cs",)),
        _tricky_chars.filter(lambda c: not "\ud800" <= c <= "\udfff"),
    ),
    max_size=6,
)
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
        _json_names,
    ),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(_json_names, children, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_json_values_with_astral_and_control_characters_match(value: object) -> None:
    assert canonical_bytes(value) == reference_canonical_bytes(value)


@pytest.mark.parametrize(
    "value",
    [
        2**53 - 1,
        2**53,
        -(2**53) + 1,
        -(2**53),
        2**64,
        {"a": [1, 2**53]},
        float("nan"),
        {"a": float("inf")},
        [None, float("-inf")],
        {"a": -0.0},
        "\ud800",
        {"\udfff": 1},
        {1: "a"},
        {Text("k"): 1},
        Mapping(a=1),
        Items([1]),
        (1, [2, (3,)]),
        True,
        Level.LOW,
        {"c": Colour.RED},
        [Stance.DEMAND],
        uuid.UUID(int=5),
        orjson.Fragment(b'{"a":1}'),
        {"\U0001f600": {"\uffff": 1, "\U00010000": 2, "\ue000": 3}},
        [[[[[[1]]]]]],
    ],
)
def test_edges_meet_the_reference_or_its_error(value: object) -> None:
    assert outcome(canonical_bytes, value) == outcome(reference_canonical_bytes, value)


def test_nesting_beyond_orjsons_limit_is_left_to_the_reference() -> None:
    value: object = 1
    for _ in range(300):
        value = [value]
    assert canonical_bytes(value) == reference_canonical_bytes(value)


def test_orjson_escapes_every_code_point_as_the_reference_does() -> None:
    # Escaping is character by character, so checking every code point
    # (surrogates aside: both refuse them) in 512-character strings covers
    # every string; as member names too.
    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(points), 512):
        text = "".join(points[start : start + 512])
        expected = rfc8785.dumps(text)
        assert orjson.dumps(text) == expected
        assert canonical_bytes(text) == expected
        assert canonical_bytes({text: 0}) == b"{" + expected + b":0}"


def test_the_orjson_refusals_the_fast_path_relies_on() -> None:
    options = canonical._OPTIONS
    for value in (
        {Text("k"): 1},  # member names must be exactly str
        {1: 1},
        2**53,
        -(2**53),
        "\ud800",
        {"\ud800": 1},
        Text("x"),
        Number(1),
        Mapping(),
        Items(),
        datetime.datetime(2026, 1, 1),
    ):
        with pytest.raises(orjson.JSONEncodeError):
            orjson.dumps(value, option=options)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_what_loads_strict_returns_needs_no_walk(value: object) -> None:
    # canonical_bytes_of_strict trusts its caller that the value is strict JSON:
    # loads_strict's output is, so both encoders agree on it with the reference.
    try:
        strict = loads_strict(orjson.dumps(value))
    except InputError:
        return  # not strict JSON (say, not NFC): never reaches the encoder
    assert canonical_bytes_of_strict(strict) == reference_canonical_bytes(strict)
    assert canonical_bytes_of_strict(strict) == canonical_bytes(strict)


def test_the_strict_encoder_still_refuses_what_the_reference_refuses() -> None:
    with pytest.raises(rfc8785.IntegerDomainError):
        canonical_bytes_of_strict({"n": 2**53})
