"""Canonical bytes: RFC 8785 (JSON Canonicalization Scheme), UTF-8.

format §2: ``canon(r)`` is the only serialization ever hashed or signed.

The ``rfc8785`` package is the reference implementation, but it is pure
Python, and would be most of an append's time (``scripts/bench.sh appends``).
``canonical_bytes`` asks
orjson (compact, member names sorted, UTF-8, no ASCII escaping) and keeps
its bytes only when they are provably the reference's; anything else goes
to the reference, which also raises whatever error the reference raises.
The proof, for a value orjson serialized with ``_OPTIONS``:

- types: a walk (``_plain``) admits only values whose every node is exactly
  a ``dict``, ``list``, ``tuple``, ``str``, ``int``, ``bool`` or ``None``.
  That shuts out every float (RFC 8785 formats numbers differently; orjson
  writes NaN and infinities as ``null`` where the reference refuses them),
  every subclass (the reference converts with ``int()``, ``str``'s content,
  ``dict()``: Enum members, which orjson writes by their ``value``, are
  subclasses too), and the types orjson serializes natively but the
  reference refuses (``uuid.UUID``, ``orjson.Fragment``). Member names need
  no walk: orjson refuses any name that is not exactly a ``str``.
- integers: ``OPT_STRICT_INTEGER`` refuses |n| > 2^53 - 1, the reference's
  own bounds; inside them both write the decimal digits.
- strings: for every code point outside the surrogates the two escape
  alike (``\\"``, ``\\\\``, ``\\b \\f \\n \\r \\t``, other C0 controls as
  lowercase ``\\u00xx``, everything else literal, U+007F and U+2028/2029
  included), and escaping works character by character;
  ``tests/core/test_canonical.py`` checks every code point. A string with a
  lone surrogate has no UTF-8 form: orjson refuses it and so does the
  reference.
- member order: JCS sorts names by UTF-16 code units, orjson by code points.
  At the first differing character of two names both orders agree unless
  one is beyond U+FFFF (a lead surrogate, 0xD800-0xDBFF, in UTF-16) and the
  other in U+E000-U+FFFF. So output holding both kinds, i.e. both a UTF-8
  lead byte 0xF0-0xF4 and one of 0xEE-0xEF, goes to the reference.
- nesting: orjson stops at 255 levels (and so on cycles) by refusing.

The walk runs after orjson succeeded, so it only ever sees finite trees.

``canonical_bytes_of_strict`` skips the walk for values the caller knows
hold only strict JSON values (format §1: what ``loads_strict`` returns, which
refuses floats and has no other types, plus ``str`` and ``int`` members
added by the server). On a 500-byte record the walk was half the cost.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import rfc8785

__all__ = ["canonical_bytes", "canonical_bytes_of_strict", "reference_canonical_bytes"]

_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_STRICT_INTEGER
    # Hand subclasses, dataclasses and datetimes to ``default`` (there is
    # none, so orjson refuses them) instead of serializing them its own way.
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)
_ASTRAL_LEAD = re.compile(rb"[\xf0-\xf4]")
_HIGH_BMP_LEAD = re.compile(rb"[\xee\xef]")


def reference_canonical_bytes(value: Any) -> bytes:
    """RFC 8785 by the reference implementation, whatever the value."""
    return bytes(rfc8785.dumps(value))


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 serialization of a JSON value (orjson where provably equal)."""
    out = _orjson_bytes(value)
    # The walk only after orjson succeeded: it never sees a cycle.
    if out is None or not _plain(value):
        return reference_canonical_bytes(value)
    return out


def canonical_bytes_of_strict(value: Any) -> bytes:
    """``canonical_bytes`` of a value built only of exact dicts, lists, strs,
    ints, bools and ``None`` (no floats): the caller vouches, no walk checks."""
    out = _orjson_bytes(value)
    return reference_canonical_bytes(value) if out is None else out


def _orjson_bytes(value: Any) -> bytes | None:
    """orjson's serialization, unless it fails or its member order may not be JCS's."""
    try:
        out = orjson.dumps(value, option=_OPTIONS)
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        return None
    if (
        not out.isascii()
        and _ASTRAL_LEAD.search(out) is not None
        and _HIGH_BMP_LEAD.search(out) is not None
    ):
        return None
    return out


def _plain(value: Any) -> bool:
    """Whether every node is exactly a dict, list, tuple, str, int, bool or None."""
    # A flat loop over an explicit stack: on an event-sized record it costs
    # about as much as orjson's whole serialization, less than any
    # combination of C iterators tried.
    stack = [value]
    pop = stack.pop
    push = stack.extend
    while stack:
        node = pop()
        kind = type(node)
        if kind is str or kind is int or kind is bool or node is None:
            continue
        if kind is dict:
            push(node.values())
        elif kind is list or kind is tuple:
            push(node)
        else:
            return False
    return True
