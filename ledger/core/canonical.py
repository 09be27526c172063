"""Canonical bytes: RFC 8785 (JSON Canonicalization Scheme), UTF-8.

SPEC §2: ``canon(r)`` is the only serialization ever hashed or signed. The
``rfc8785`` package is the reference implementation; values reaching it have
already passed ``ledger.core.jsonvalues`` (integers only, NFC strings), so its
output is identical to any other conforming JCS implementation.
"""

from __future__ import annotations

from typing import Any

import rfc8785

__all__ = ["canonical_bytes"]


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 serialization of a JSON value."""
    return bytes(rfc8785.dumps(value))
