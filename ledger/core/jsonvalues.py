"""Strict JSON: the value rules that keep canonical bytes equal everywhere.

SPEC §1 allows only integers with |n| < 2^53 (no floats, no NaN), Unicode NFC
strings, and we add what any hash-addressed format needs: no duplicate
member names (which member would be hashed?), no lone surrogates (they have
no UTF-8 encoding) and a bounded nesting depth. Each violation is reported
with the path of the offending member, e.g. ``data.terms.share``.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

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
    """``("data", "terms", 0)`` -> ``data.terms[0]``; the root is ``(root)``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(root)"


def loads_strict(raw: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse UTF-8 JSON and enforce the value rules; raise with the field path.

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
