"""The witness's one decision: cosign a submitted checkpoint, or refuse it and say why."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ledger.core.cosignature import Witness
from ledger.core.errors import InconsistentCheckpoint
from ledger.core.signing import VerifierKey
from ledger.core.witnessing import (
    CheckpointNote,
    check_extends,
    parse_add_checkpoint,
    trusted_log_signatures,
)
from ledger.witness.state import CosignedCheckpoint, WitnessState

__all__ = ["add_checkpoint"]

log = logging.getLogger("ledger.witness")


def _now() -> int:
    return int(time.time())


def add_checkpoint(
    state: WitnessState,
    witness: Witness,
    body: bytes,
    clock: Callable[[], int] = _now,
) -> CosignedCheckpoint:
    """Cosign the checkpoint of an add-checkpoint request ``body``; raise a ``WitnessRefusal``.

    The request is checked in the order of C2SP tlog-witness (its form, the
    origin, the log's signature, the old size, consistency) against the
    latest checkpoint cosigned for its origin, and recorded as the new latest
    in the same transaction (``WitnessState.cosign``) before the answer exists.
    """
    request = parse_add_checkpoint(body)
    checkpoint = request.checkpoint

    def decide(keys: list[VerifierKey], latest: CosignedCheckpoint | None) -> CosignedCheckpoint:
        verified = trusted_log_signatures(checkpoint, keys)
        try:
            check_extends(request, latest.note if latest is not None else None)
        except InconsistentCheckpoint as refusal:
            # Signed by the log yet not an extension of what it signed before:
            # possible evidence of a fork, kept in the log with the whole note.
            log.warning(
                "refused a signed checkpoint of %s: %s; old size %d; note:\n%s",
                checkpoint.origin,
                refusal,
                request.old_size,
                checkpoint.to_text(),
            )
            raise
        cosignature = witness.cosign(checkpoint.body, clock())
        # Stored and served with only the log signatures the witness checked.
        note = CheckpointNote(
            origin=checkpoint.origin,
            size=checkpoint.size,
            root=checkpoint.root,
            extensions=checkpoint.extensions,
            body=checkpoint.body,
            signatures=verified,
        )
        return CosignedCheckpoint(note=note, cosignature=cosignature.to_line())

    return state.cosign(checkpoint.origin, decide)
