"""Canonical bytes: RFC 8785 (JSON Canonicalization Scheme), UTF-8.

SPEC §2: ``canon(r)`` is the only serialization ever hashed or signed.

The ``rfc8785`` package is the reference implementation, but it is pure
Python and was measured at 60% of append time. For the values SPEC §1 admits
(integers below 2^53, strings, no floats) RFC 8785 coincides with the C JSON
encoder's compact, sorted, non-ASCII-escaping output, with one exception:
JCS sorts member names by UTF-16 code units, Python by code points, and the
two orders differ only when a name holds a character beyond U+FFFF. Output
holding such a character, and any float, goes to the reference
implementation instead; ``tests/core/test_canonical.py`` checks the two agree.
"""

from __future__ import annotations

import json
import re
from typing import Any

import rfc8785

__all__ = ["canonical_bytes", "reference_canonical_bytes"]

_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_FLOAT_TOKEN = re.compile(r"[0-9][.eE]")
_FLOAT_CANDIDATE = re.compile(r"[:,\[]-?[0-9]+[.eE]")
_NUMBER_START = frozenset("-0123456789")
_encode = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
).encode


def reference_canonical_bytes(value: Any) -> bytes:
    """RFC 8785 by the reference implementation, whatever the value."""
    return bytes(rfc8785.dumps(value))


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 serialization of a JSON value."""
    try:
        text = _encode(value)
    except (TypeError, ValueError):
        return reference_canonical_bytes(value)
    if (not text.isascii() and _ASTRAL.search(text) is not None) or _has_float(text):
        return reference_canonical_bytes(value)
    return text.encode("utf-8")


def _has_float(text: str) -> bool:
    # Python renders every float with '.' or an exponent right after a digit;
    # integers, true, false and null never do. In compact output a number
    # starts the text or follows '":' (a member value), ',' or '[' (an array
    # element). Candidates after a colon that is not a member separator, like
    # the seconds of "18:46:06.1", are skipped; any other candidate (say
    # "a,1.5" inside a string) sends us to the exact check, strings cut out.
    if text[:1] in _NUMBER_START:
        return _exact_has_float(text)
    for match in _FLOAT_CANDIDATE.finditer(text):
        at = match.start()
        if text[at] != ":" or text[at - 1] == '"':
            return _exact_has_float(text)
    return False


def _exact_has_float(text: str) -> bool:
    return _FLOAT_TOKEN.search(_STRING.sub('""', text)) is not None
