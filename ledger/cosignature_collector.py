"""The collector of witness cosignatures: a background task of the server that
asks each configured witness (C2SP tlog-witness ``add-checkpoint``) to cosign
each ledger's newest stored checkpoint, off the append path.

Every ``interval`` one round reads each ledger's newest checkpoint and offers
the same checkpoint to every witness at once, so that the witnesses cosign
one tree size and a quorum can form on it. Each witness works through its
offers on its own: one that is slow or down skips rounds rather than holding
up the others, and no round ever waits on an append (nor an append on it).

Per ledger and witness the collector keeps the size the witness last
cosigned (its ``old`` size): on start the largest size stored for it, else
0; a 409 answer names the witness's size, and the checkpoint is sent again
at once with a consistency proof from there. A witness whose size is
beyond this ledger's newest checkpoint has seen a tree this server never
signed at that size (a fork, or a rollback of our database): that is logged
as an error and the checkpoint is not offered to it again until it changes.
A returned cosignature is stored only after it verifies, with the
configured key, against the checkpoint's body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from ledger.config import WitnessEndpoint
from ledger.core.checkpoint import SignedCheckpoint
from ledger.core.cosignature import Cosignature, CosignerKey
from ledger.core.errors import CheckpointInvalid, VerificationError
from ledger.core.times import format_recorded_at
from ledger.core.witnessing import (
    SIZE_CONTENT_TYPE,
    add_checkpoint_body,
    parse_cosignature_lines,
    parse_size_body,
)
from ledger.store.cosignatures import CheckpointToWitness, CosignatureRow, CosignatureStore

__all__ = ["CosignatureCollector", "WitnessStatus"]

log = logging.getLogger("ledger.witnesses")

# A witness answers within this, or the attempt counts as failed until the next round.
_CONNECT_TIMEOUT = 2.0
_READ_TIMEOUT = 5.0
# A 409 is followed by one resubmission from the size it names, not more, per round.
_RESUBMISSIONS = 1

ConsistencyProver = Callable[[str, int, int], list[bytes]]


@dataclass(slots=True)
class WitnessStatus:
    """What the collector knows of one witness for one ledger (this process only)."""

    old_size: int | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    # A checkpoint size this witness refused: not offered again while it is the newest.
    refused_size: int | None = None


@dataclass(slots=True)
class _Witness:
    endpoint: WitnessEndpoint
    key: CosignerKey
    ledgers: dict[str, WitnessStatus] = field(default_factory=dict)
    busy: asyncio.Task[None] | None = None


class CosignatureCollector:
    """Collects cosignatures while running; ``start`` and ``stop`` on the event loop."""

    def __init__(
        self,
        *,
        store: CosignatureStore,
        witnesses: Sequence[WitnessEndpoint],
        interval: float,
        prove: ConsistencyProver,
    ) -> None:
        """``prove(ledger, old, new)``: the RFC 9162 consistency proof between two sizes."""
        self.store = store
        self.interval = interval
        self._prove = prove
        self._witnesses = [_Witness(endpoint=w, key=w.verifier()) for w in witnesses]
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        # This round's consistency proofs, by (ledger, old, new): witnesses
        # that last cosigned the same size are offered the same proof, which
        # is read from the database once (a round later sizes have moved on).
        self._proofs: dict[tuple[str, int, int], asyncio.Future[list[bytes]]] = {}

    def status(self, ledger: str) -> dict[str, WitnessStatus]:
        """Per configured witness key, its status for ``ledger`` (empty before a round)."""
        return {w.endpoint.key: w.ledgers[ledger] for w in self._witnesses if ledger in w.ledgers}

    def start(self) -> None:
        if not self._witnesses or self._task is not None:
            return
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(_READ_TIMEOUT, connect=_CONNECT_TIMEOUT),
            limits=httpx.Limits(max_keepalive_connections=len(self._witnesses) * 4),
            follow_redirects=False,
        )
        self._task = asyncio.create_task(self._run(), name="cosignature collector")

    async def stop(self) -> None:
        tasks = [w.busy for w in self._witnesses if w.busy is not None]
        if self._task is not None:
            tasks.append(self._task)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            try:
                targets = await asyncio.to_thread(self.store.checkpoints_to_witness)
            except Exception:
                log.exception("cannot read the checkpoints to witness")
                targets = []
            targets = [t for t in targets if t.tree_size > 0]
            self._proofs = {}
            for witness in self._witnesses:
                if witness.busy is None or witness.busy.done():
                    witness.busy = asyncio.create_task(self._offer(witness, targets))
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - began)))

    async def _offer(self, witness: _Witness, targets: list[CheckpointToWitness]) -> None:
        await asyncio.gather(*(self._submit(witness, target) for target in targets))

    async def _submit(self, witness: _Witness, target: CheckpointToWitness) -> None:
        status = witness.ledgers.setdefault(target.ledger, WitnessStatus())
        try:
            if status.old_size is None:
                progress = await asyncio.to_thread(
                    self.store.progress, target.ledger, [witness.endpoint.key]
                )
                known = progress.get(witness.endpoint.key)
                status.old_size = known.tree_size if known else 0
            if status.old_size == target.tree_size or status.refused_size == target.tree_size:
                return
            for _ in range(1 + _RESUBMISSIONS):
                conflict = await self._add_checkpoint(witness, status, target)
                if conflict is None:
                    return
                if conflict > target.tree_size:
                    status.refused_size = target.tree_size
                    self._failed(
                        witness,
                        status,
                        f"the witness has cosigned size {conflict} of {target.ledger}, beyond "
                        f"this server's newest checkpoint {target.tree_size}: a fork or a "
                        "rollback of this log",
                        level=logging.ERROR,
                    )
                    return
                status.old_size = conflict
            self._failed(witness, status, "the witness kept answering 409 Conflict")
        except httpx.HTTPError as error:
            self._failed(witness, status, f"{type(error).__name__}: {error or 'no answer'}")
        except VerificationError as error:
            self._failed(witness, status, error.reason, level=logging.ERROR)
        except Exception as error:
            log.exception("witness %s: submitting %s failed", witness.endpoint.url, target.ledger)
            self._failed(witness, status, f"{type(error).__name__}: {error}")

    async def _add_checkpoint(
        self, witness: _Witness, status: WitnessStatus, target: CheckpointToWitness
    ) -> int | None:
        """One submission; the witness's size on a 409, else None (handled here)."""
        old = status.old_size or 0
        if old > target.tree_size:
            return old
        proof: list[bytes] = []
        if 0 < old < target.tree_size:
            proof = await self._proof(target.ledger, old, target.tree_size)
        body = add_checkpoint_body(old, proof, target.note)
        assert self._client is not None
        response = await self._client.post(
            f"{witness.endpoint.url}/add-checkpoint",
            content=body,
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        if response.status_code == 409:
            return _conflict_size(response)
        if response.status_code != 200:
            detail = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
            if response.status_code in (400, 403, 404, 422):
                # The witness refuses this checkpoint itself: again would be refused again.
                status.refused_size = target.tree_size
            self._failed(
                witness,
                status,
                f"{response.status_code} {response.reason_phrase}"
                + (f": {detail}" if detail else ""),
                level=logging.ERROR if response.status_code == 422 else logging.WARNING,
            )
            return None
        await self._store(witness, status, target, response.content)
        return None

    async def _proof(self, ledger: str, old: int, new: int) -> list[bytes]:
        """``prove(ledger, old, new)`` in a thread, once per round for all witnesses."""
        key = (ledger, old, new)
        pending = self._proofs.get(key)
        if pending is None:
            pending = asyncio.ensure_future(asyncio.to_thread(self._prove, ledger, old, new))
            self._proofs[key] = pending
        # Shielded: one witness's submission cancelled must not cancel the others' proof.
        return await asyncio.shield(pending)

    async def _store(
        self, witness: _Witness, status: WitnessStatus, target: CheckpointToWitness, answer: bytes
    ) -> None:
        body = SignedCheckpoint.from_text(target.note).checkpoint.body()
        found: Cosignature | None = None
        for cosignature in parse_cosignature_lines(answer):
            if witness.key.signed(cosignature):
                witness.key.verify(cosignature, body)
                found = cosignature
        if found is None:
            raise CheckpointInvalid(f"the witness returned no cosignature by {witness.key.name}")
        row = CosignatureRow(
            tree_size=target.tree_size,
            witness=witness.endpoint.key,
            signed_at=found.timestamp,
            line=found.to_line(),
            received_at=format_recorded_at(datetime.now(UTC)),
        )
        await asyncio.to_thread(self.store.add, target.ledger, row)
        status.old_size = target.tree_size
        if status.last_error is not None:
            log.warning("witness %s cosigns %s again", witness.endpoint.url, target.ledger)
        status.last_error = None
        status.last_error_at = None

    def _failed(
        self, witness: _Witness, status: WitnessStatus, error: str, *, level: int = logging.WARNING
    ) -> None:
        # Logged when it changes, not on every round a witness stays down.
        if error != status.last_error:
            log.log(level, "witness %s: %s", witness.endpoint.url, error)
        status.last_error = error
        status.last_error_at = format_recorded_at(datetime.now(UTC))


def _conflict_size(response: httpx.Response) -> int:
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    if media_type != SIZE_CONTENT_TYPE:
        raise CheckpointInvalid(f"a 409 from the witness is not {SIZE_CONTENT_TYPE}")
    return parse_size_body(response.content)
