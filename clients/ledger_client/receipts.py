"""What an append returns: the receipt of one record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger_client.errors import VerificationError

__all__ = ["Receipt"]


@dataclass(frozen=True, slots=True)
class Receipt:
    """The server's word that an event became record ``seq``.

    ``verified_in`` is the tree size of the signed checkpoint the record was
    proven included in (``verify=True``), or ``None`` when it was not checked.
    ``replayed`` is true when the server answered a retry with the receipt of
    the first attempt (same Idempotency-Key): the record was written once.
    """

    seq: int
    id: str
    hash: str
    prev: str
    recorded_at: str
    leaf_index: int
    tree_size: int
    replayed: bool = False
    verified_in: int | None = None

    @classmethod
    def from_json(cls, value: Any, *, replayed: bool) -> Receipt:
        """Read one receipt object of the append response, refusing any other shape."""
        fields = {
            "seq": int,
            "id": str,
            "hash": str,
            "prev": str,
            "recorded_at": str,
            "leaf_index": int,
            "tree_size": int,
        }
        if not isinstance(value, dict):
            raise VerificationError("receipt", "a receipt is not a JSON object")
        for name, kind in fields.items():
            member = value.get(name)
            if not isinstance(member, kind) or isinstance(member, bool):
                raise VerificationError("receipt", f"the receipt's {name} is not a {kind.__name__}")
        return cls(**{name: value[name] for name in fields}, replayed=replayed)
