"""The fast canonical encoder equals the RFC 8785 reference on every value."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.canonical import canonical_bytes, reference_canonical_bytes

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


def test_times_and_number_like_strings_take_the_fast_path() -> None:
    from ledger.core.canonical import _has_float

    for text in ('{"t":"2026-11-26T18:46:06.123456Z"}', '{"s":"a,1.5"}', '{"q":"x\\":1.5"}'):
        assert not _has_float(text)
