"""The positions projection of format §6: a pure fold over records.

Snapshot at (``as_of``, ``known_at``):

1. take the records with ``seq <= known_at`` (default: all given);
2. apply every ``record.corrected`` / ``record.retracted`` among them to its
   target, in seq order (a later correction of the same member wins);
3. drop retracted records;
4. keep those with ``occurred_at <= as_of`` (default: no bound), judged on
   the corrected ``occurred_at``;
5. the position of (party, topic) is the kept ``position.stated`` or
   ``position.withdrawn`` without ``data.claimed_by`` with the greatest
   (``occurred_at``, ``seq``); claims (``position.stated`` with
   ``data.claimed_by``) fold the same way per (party, topic, claimant).

This module is shared by the server (for rebuilds and checks), the
verification client (to recompute a signed snapshot) and the tests, so the
three can never disagree about what a ledger says.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ledger.core.canonical import canonical_bytes
from ledger.core.errors import VerificationError
from ledger.core.records import Record
from ledger.core.signing import Signer, VerifierKey

__all__ = [
    "CORRECTABLE_MEMBERS",
    "FIX_TYPES",
    "POSITION_TYPES",
    "Cell",
    "Positions",
    "apply_fixes",
    "cell_of",
    "claimant_of",
    "corrected",
    "fold",
    "sign_snapshot",
    "snapshot_document",
    "state_hash",
    "verify_snapshot_signature",
]

POSITION_TYPES = frozenset({"position.stated", "position.withdrawn"})
FIX_TYPES = frozenset({"record.corrected", "record.retracted"})
# format §6: the members a correction may replace.
CORRECTABLE_MEMBERS = frozenset({"occurred_at", "data", "source", "party", "topic"})
WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class Cell:
    """One party's position on one topic (or one claim about it)."""

    stance: str
    summary: str | None
    since: str
    seq: int
    terms: Any = None
    source: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, cell: Mapping[str, Any]) -> Cell:
        return cls(
            stance=cell["stance"],
            summary=cell.get("summary"),
            since=cell["since"],
            seq=cell["seq"],
            terms=cell.get("terms"),
            source=cell.get("source"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stance": self.stance}
        if self.summary is not None:
            out["summary"] = self.summary
        if self.terms is not None:
            out["terms"] = self.terms
        out["since"] = self.since
        out["seq"] = self.seq
        if self.source is not None:
            out["source"] = self.source
        return out


@dataclass(frozen=True, slots=True)
class Positions:
    """``state``: party -> topic -> cell; ``claims``: party -> topic -> claimant -> cell."""

    state: dict[str, dict[str, Cell]]
    claims: dict[str, dict[str, dict[str, Cell]]]

    @classmethod
    def from_dicts(
        cls, state: Mapping[str, Mapping[str, Any]], claims: Mapping[str, Any]
    ) -> Positions:
        """Rebuild from ``state_dict()`` / ``claims_dict()`` shapes (stored cells)."""
        return cls(
            state={
                party: {topic: Cell.from_dict(cell) for topic, cell in topics.items()}
                for party, topics in state.items()
            },
            claims={
                party: {
                    topic: {c: Cell.from_dict(cell) for c, cell in by_claimant.items()}
                    for topic, by_claimant in topics.items()
                }
                for party, topics in claims.items()
            },
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            party: {topic: cell.to_dict() for topic, cell in topics.items()}
            for party, topics in self.state.items()
        }

    def claims_dict(self) -> dict[str, Any]:
        return {
            party: {
                topic: {claimant: cell.to_dict() for claimant, cell in by_claimant.items()}
                for topic, by_claimant in topics.items()
            }
            for party, topics in self.claims.items()
        }


def _corrected(record: Record, changes: Mapping[str, Any]) -> Record:
    updates: dict[str, Any] = {}
    for member in CORRECTABLE_MEMBERS & changes.keys():
        updates[member] = changes[member]
    return replace(record, **updates)


def apply_fixes(records: Iterable[Record]) -> list[Record]:
    """Steps 2-3: corrected versions of the non-fix records, retracted ones dropped.

    A fix that names a target not among ``records`` (not yet known, or
    itself a fix) is ignored: the server refuses such fixes at append time,
    and a fold must never fail on what it was given.
    """
    ordered = sorted(records, key=lambda r: r.seq)
    current: dict[int, Record] = {}
    retracted: set[int] = set()
    for record in ordered:
        if record.type not in FIX_TYPES:
            current[record.seq] = record
            continue
        target = record.data.get("target_seq")
        if not isinstance(target, int) or target not in current or target >= record.seq:
            continue
        if record.type == "record.retracted":
            retracted.add(target)
        else:
            changes = record.data.get("changes")
            if isinstance(changes, dict):
                current[target] = _corrected(current[target], changes)
    return [r for seq, r in sorted(current.items()) if seq not in retracted]


def cell_of(record: Record) -> Cell:
    data = record.data
    summary = data.get("summary")
    return Cell(
        stance=WITHDRAWN if record.type == "position.withdrawn" else str(data.get("stance")),
        summary=summary if isinstance(summary, str) else None,
        since=record.occurred_at,
        seq=record.seq,
        terms=data.get("terms") if record.type == "position.stated" else None,
        source=record.source,
    )


def claimant_of(record: Record) -> str | None:
    """The party a ``position.stated`` attributes the position to, if a claim."""
    if record.type != "position.stated":
        return None
    claimant = record.data.get("claimed_by")
    return claimant if isinstance(claimant, str) else None


def corrected(record: Record, changes: Mapping[str, Any]) -> Record:
    """``record`` with the members a ``record.corrected`` replaces."""
    return _corrected(record, changes)


def fold(
    records: Iterable[Record], *, as_of: str | None = None, known_at: int | None = None
) -> Positions:
    """format §6 snapshot state and claims. ``as_of`` is a fixed-width UTC time."""
    known = [r for r in records if known_at is None or r.seq <= known_at]
    best: dict[tuple[str, str, str | None], tuple[str, int, Record]] = {}
    for record in apply_fixes(known):
        if record.type not in POSITION_TYPES or record.party is None or record.topic is None:
            continue
        if as_of is not None and record.occurred_at > as_of:
            continue
        key = (record.party, record.topic, claimant_of(record))
        rank = (record.occurred_at, record.seq)
        held = best.get(key)
        if held is None or rank > held[:2]:
            best[key] = (record.occurred_at, record.seq, record)
    state: dict[str, dict[str, Cell]] = {}
    claims: dict[str, dict[str, dict[str, Cell]]] = {}
    for (party, topic, claimant), (_, _, record) in sorted(best.items(), key=_sort_key):
        if claimant is None:
            state.setdefault(party, {})[topic] = cell_of(record)
        else:
            claims.setdefault(party, {}).setdefault(topic, {})[claimant] = cell_of(record)
    return Positions(state=state, claims=claims)


def _sort_key(item: tuple[tuple[str, str, str | None], Any]) -> tuple[str, str, str]:
    party, topic, claimant = item[0]
    return party, topic, claimant or ""


def state_hash(state: Mapping[str, Any]) -> str:
    """Hex SHA-256 of ``canon(state)``."""
    return hashlib.sha256(canonical_bytes(state)).hexdigest()


def snapshot_document(
    *,
    ledger: str,
    as_of: str | None,
    known_at: int,
    merkle_root: bytes,
    positions: Positions | tuple[dict[str, Any], dict[str, Any]],
) -> dict[str, Any]:
    """The unsigned format §6 document; ``tree_size`` is ``known_at``.

    ``positions`` is a fold result, or already the (state, claims) dicts.
    """
    if isinstance(positions, Positions):
        state, claims = positions.state_dict(), positions.claims_dict()
    else:
        state, claims = positions
    document: dict[str, Any] = {"ledger": ledger}
    if as_of is not None:
        document["as_of"] = as_of
    document.update(
        known_at=known_at,
        tree_size=known_at,
        merkle_root=base64.b64encode(merkle_root).decode("ascii"),
        state=state,
        claims=claims,
    )
    return document


def sign_snapshot(document: Mapping[str, Any], signer: Signer) -> dict[str, Any]:
    """Add ``state_hash``, ``key_id`` and ``signature`` (over canon without signature)."""
    signed = {k: v for k, v in document.items() if k != "signature"}
    signed["state_hash"] = state_hash(document["state"])
    signed["key_id"] = signer.verifier.key_id_hex
    signature = signer.sign(canonical_bytes(signed))
    signed["signature"] = base64.b64encode(signature).decode("ascii")
    return signed


def verify_snapshot_signature(document: Mapping[str, Any], key: VerifierKey) -> None:
    """Raise ``VerificationError`` unless ``key`` signed this snapshot document."""
    if document.get("key_id") != key.key_id_hex:
        raise VerificationError("the snapshot is signed by another key")
    try:
        signature = base64.b64decode(str(document.get("signature")), validate=True)
    except ValueError:
        raise VerificationError("the snapshot signature is not base64") from None
    if document.get("state_hash") != state_hash(document.get("state", {})):
        raise VerificationError("state_hash does not match the state")
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    key.verify(signature, canonical_bytes(unsigned))
