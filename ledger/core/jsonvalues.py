"""Strict JSON: the value rules that keep canonical bytes equal everywhere.

format §1 allows only integers with |n| < 2^53 (no floats, no NaN), Unicode NFC
strings, and we add what any hash-addressed format needs: no duplicate
member names (which member would be hashed?), no lone surrogates (they have
no UTF-8 encoding) and a bounded nesting depth. Each violation is reported
with the path of the offending member, e.g. ``data.terms.share``.

``loads_strict`` first tries orjson (``_loads_fast``), which parses a body
several times faster than the standard library with the hooks the rules
need, but keeps the last of two equal member names and takes floats and big
integers as they come. Its result is returned only when it is provably what
the strict parse (``_loads_checked``) returns; whenever that is not certain
the strict parse runs from the start, so every refusal, its message and its
field path come from there alone.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any, Final

import orjson

from ledger.core.errors import InvalidEvent, MalformedJSON

__all__ = ["MAX_DEPTH", "MAX_SAFE_INTEGER", "check_value", "format_path", "loads_strict"]

MAX_DEPTH = 64
# 2^53: beyond it IEEE-754 doubles (JavaScript, many JSON parsers) lose digits.
MAX_SAFE_INTEGER = 2**53


class _Float:
    """A number with a fraction or exponent, kept until we can name its path."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _Duplicate:
    """An object that named one member twice."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _Duplicate:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            return _Duplicate(name)
        result[name] = value
    return result


def format_path(path: tuple[str | int, ...]) -> str:
    """``("data", "terms", 0)`` -> ``data.terms[0]``; the root is ``(root)``.

    A name holding a lone surrogate is written with it as the six characters
    ``\\ud800``: the path goes into error messages, which must be UTF-8, and
    such a name has no UTF-8 form (refusing it is what the message is for).
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            if not part.isascii():
                part = part.encode("utf-8", "backslashreplace").decode("utf-8")
            out += f".{part}" if out else part
    return out or "(root)"


# What ``_loads_fast`` answers when it cannot vouch for its result.
_UNSURE: Final = object()


def loads_strict(raw: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse UTF-8 JSON and enforce the value rules; raise with the field path.

    The answer is ``_loads_checked``'s, the reading that names every refusal;
    ``_loads_fast`` gives the same value sooner when it can prove it equal.
    """
    # Beyond MAX_DEPTH the standard library's recursion could give up where
    # orjson (1024 levels) does not; no caller asks for more.
    if type(raw) is bytes and max_depth <= MAX_DEPTH:
        value = _loads_fast(raw, max_depth)
        if value is not _UNSURE:
            return value
    return _loads_checked(raw, max_depth=max_depth)


def _loads_fast(raw: bytes, max_depth: int) -> Any:
    """orjson's reading of ``raw`` when it is provably ``_loads_checked``'s, else ``_UNSURE``.

    Why each rule holds when a value comes back:

    - grammar and UTF-8: orjson accepts strict RFC 8259 JSON in valid UTF-8
      only (no BOM, NaN, Infinity, control characters in strings or lone
      surrogate escapes, at most 1024 levels), and what it accepts the
      standard library reads to the same dicts (members in document order),
      lists, strings, ints, bools and ``None``. Anything orjson refuses goes
      to ``_loads_checked``, which finds the exact complaint.
      ``tests/core/test_jsonvalues_fast.py`` holds orjson to those refusals
      and the two readings to the same answers on adversarial bodies.
    - floats, |n| < 2^53, depth: ``_tally`` gives up on any float (orjson
      also makes floats of integers beyond 64 bits), any integer out of
      range and any container deeper than ``max_depth``.
    - no duplicate member names, by counting quote bytes. In valid JSON each
      string token brings two unescaped quotes and a quote inside a string
      is escaped as ``\\"``; with no ``\\\\`` in the body (a body with one
      goes to ``_loads_checked``) every backslash opens an escape, so the
      escaped quotes are exactly the ``\\"`` sequences. The string tokens
      are the member names, K of them, and the string values, at least the
      S strings of the result. orjson's dicts hold M members, one per
      distinct name of each object, so K >= M, with equality only if no
      object repeats a name. Hence ``quotes - escaped == 2 * (M + S)``
      gives K <= M, i.e. K == M.
    - NFC and no lone surrogates: a body that is ASCII with no ``\\u``
      escape has ASCII strings only, which are NFC. A body with no
      backslash at all holds each string literally between two quotes, and
      every non-ASCII character inside one; the quote is a stable code point
      (no decomposition holds it, it never composes and its combining class
      is 0), so normalization never acts across it and the body's text is
      NFC exactly when every string is. Decoding UTF-8 yields no surrogate.
      Any other body has each string checked (``_texts_ok``).
    """
    backslash = b"\\" in raw
    escaped_quotes = 0
    if backslash:
        if b"\\\\" in raw:
            return _UNSURE
        escaped_quotes = raw.count(b'\\"')
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _UNSURE
    tally = _tally(value, max_depth)
    if tally is None:
        return _UNSURE
    members, strings = tally
    if raw.count(b'"') - escaped_quotes != 2 * (members + strings):
        return _UNSURE
    if raw.isascii():
        if backslash and b"\\u" in raw and not _texts_ok(value):
            return _UNSURE
    elif backslash:
        if not _texts_ok(value):
            return _UNSURE
    elif not unicodedata.is_normalized("NFC", raw.decode("utf-8")):
        return _UNSURE
    return value


def _tally(value: Any, max_depth: int) -> tuple[int, int] | None:
    """(members of all objects, string values) of a parsed value, or ``None``.

    ``None`` when a node is a float (or anything but a JSON type), an integer
    has |n| >= 2^53, or a container sits deeper than ``max_depth`` (the root
    is at depth 1). Level by level, so the depth comes for free.
    """
    members = 0
    strings = 0
    level = [value]
    depth = 1
    while level:
        below: list[Any] = []
        push = below.extend
        for node in level:
            kind = type(node)
            if kind is str:
                strings += 1
            elif kind is dict:
                if depth > max_depth:
                    return None
                members += len(node)
                push(node.values())
            elif kind is list:
                if depth > max_depth:
                    return None
                push(node)
            elif kind is int:
                if not -MAX_SAFE_INTEGER < node < MAX_SAFE_INTEGER:
                    return None
            elif kind is not bool and node is not None:
                return None
        level = below
        depth += 1
    return members, strings


def _texts_ok(value: Any) -> bool:
    """Whether every member name and string in ``value`` is NFC and surrogate-free."""
    texts: list[str] = []
    stack = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is str:
            texts.append(node)
        elif kind is dict:
            texts.extend(node)
            stack.extend(node.values())
        elif kind is list:
            stack.extend(node)
    # NUL is a stable code point like the quote above, so the joined text is
    # NFC exactly when each part is, and one C call checks them all.
    joined = "\x00".join(texts)
    if joined.isascii():
        return True
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return unicodedata.is_normalized("NFC", joined)


def _loads_checked(raw: bytes, *, max_depth: int) -> Any:
    """The strict reading: the standard library's parser with hooks, then the rules.

    The rules are checked by walking the parsed value, which costs more than
    the parse itself. So the parser's hooks note anything suspicious (a float,
    a repeated member, a long integer) and the walk runs only then, or when
    the text may hold non-ASCII strings (NFC), or nesting may be too deep: it
    then finds the culprit and its path. Clean ASCII bodies skip it.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedJSON(f"body is not valid UTF-8 (byte {e.start})") from e
    suspicious = False

    def on_float(token: str) -> _Float:
        nonlocal suspicious
        suspicious = True
        return _Float(token)

    def on_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _Duplicate:
        nonlocal suspicious
        result = dict(pairs)
        if len(result) != len(pairs):
            suspicious = True
            return _pairs(pairs)
        return result

    def on_int(token: str) -> int:
        nonlocal suspicious
        if len(token) > 15:  # |n| < 2^53 has at most 16 digits: look closer
            suspicious = True
        return int(token)

    try:
        value = json.loads(
            text,
            parse_float=on_float,
            parse_constant=on_float,
            parse_int=on_int,
            object_pairs_hook=on_pairs,
        )
    except RecursionError as e:
        raise InvalidEvent(f"nesting deeper than {max_depth} levels") from e
    except json.JSONDecodeError as e:
        raise MalformedJSON(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    except ValueError as e:  # int() refuses more than 4300 digits before we can look
        raise InvalidEvent(
            "integer out of range: |n| must be below 2^53; send large values as strings"
        ) from e
    # Without non-ASCII bytes or \u escapes every string is ASCII, hence NFC.
    plain = raw.isascii() and b"\\u" not in raw
    if suspicious or not plain or _deeper_than(value, max_depth):
        check_value(value, max_depth=max_depth)
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether a container sits deeper than ``limit`` (the root is at depth 1)."""
    level = [value] if type(value) in (dict, list) else []
    depth = 1
    while level:
        if depth > limit:
            return True
        below: list[Any] = []
        for node in level:
            children = node.values() if type(node) is dict else node
            below.extend(child for child in children if type(child) in (dict, list))
        level = below
        depth += 1
    return False


def _check_string(text: str, path: tuple[str | int, ...], what: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidEvent(
            f"{what} holds a lone surrogate, which is not Unicode text", field=format_path(path)
        ) from e
    if not unicodedata.is_normalized("NFC", text):
        raise InvalidEvent(
            f"{what} is not Unicode NFC; normalize it before sending", field=format_path(path)
        )


def check_value(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Walk a parsed value (iteratively: depth is attacker-chosen)."""
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(value, (), 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, dict):
            if depth > max_depth:
                raise InvalidEvent(
                    f"nesting deeper than {max_depth} levels", field=format_path(path)
                )
            for name, child in node.items():
                _check_string(name, (*path, name), "member name")
                stack.append((child, (*path, name), depth + 1))
        elif isinstance(node, list):
            if depth > max_depth:
                raise InvalidEvent(
                    f"nesting deeper than {max_depth} levels", field=format_path(path)
                )
            stack.extend((child, (*path, i), depth + 1) for i, child in enumerate(node))
        elif isinstance(node, str):
            _check_string(node, path, "string")
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int):
            if not -MAX_SAFE_INTEGER < node < MAX_SAFE_INTEGER:
                raise InvalidEvent(
                    "integer out of range: |n| must be below 2^53; send large values as strings",
                    field=format_path(path),
                )
        elif isinstance(node, _Float):
            raise InvalidEvent(
                f"number {node.text} is not an integer; send fractional values as decimal strings",
                field=format_path(path),
            )
        elif isinstance(node, _Duplicate):
            raise InvalidEvent(
                f"member {node.name!r} appears twice", field=format_path((*path, node.name))
            )
        else:  # a float or other object handed in by Python code, not by JSON
            raise InvalidEvent(
                f"{type(node).__name__} is not a JSON value allowed here", field=format_path(path)
            )
