"""The recorder: appends and reads records (the only SQL over ``records``).

Concurrent appends to one ledger are committed in groups
(``ledger.store.groupcommit``): one write transaction locks the ledger's head
row and, request by request in arrival order, checks idempotency,
``expected_seq`` and event ids, and seals each draft behind the running head;
then it inserts the records and the Merkle nodes they complete, moves the
head, signs and stores one checkpoint of the new tree size, and stores the
idempotency responses. A request refused on its own merits writes nothing
and fails alone; a failure of the transaction fails every request in it. So
a batch is whole or absent, a request is acknowledged only after the commit
that holds it, and no checkpoint is ever signed for a tree that was not
committed.

Where groups are prepared on the event loop (``Backend.inline_groups``:
SQLite), a request that waits while the previous group commits is sealed
meanwhile, on the head that commit will leave (``seal_ahead``); its own
transaction keeps those records only after checking, under the lock, every
assumption they were sealed on.

Where the backend writes sealed groups itself (``Backend.writes_groups``:
PostgreSQL's one statement), a group posted from the event loop is sealed on
the head this process last committed and handed to it, to be stored only if
that head and the active keys still hold (``_write_group``); when they
changed, or a row is refused, or sealing needs the database (an
Idempotency-Key, a fix, a refusal), the group goes the way above.

A group transaction that locks a head other than the one this process
committed last (at start, after another process appended, after the
statement found the head moved) first checks it against the last stored
records (``ledger.store.headcheck``) and refuses the group with an
``IntegrityAlarm`` when they disagree; a head this process wrote itself is
not read again, so the usual append pays nothing for the check.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from ledger.core import checkpoint as notes
from ledger.core.errors import (
    DuplicateEventId,
    HeadMismatch,
    IdempotencyKeyReused,
    IntegrityAlarm,
    LedgerError,
    LedgerExists,
    NotFound,
)
from ledger.core.hashing import GENESIS_PREV, leaf_hash, record_hash
from ledger.core.merkle import NodeId, append_leaves, perfect_cover, root_from_nodes
from ledger.core.records import EventDraft, RecordFrame, SealedDraft
from ledger.core.signing import Signer
from ledger.core.times import format_recorded_at
from ledger.store.appends import AppendRequest, AppendResult, LedgerInfo, Receipt, Sealed
from ledger.store.backend import AppendPort, SealedGroup
from ledger.store.database import (
    Database,
    raw_execute,
    raw_execute_many,
    translate_errors,
)
from ledger.store.dbapi_reads import RawReader, raw_read
from ledger.store.groupcommit import GroupCommitter
from ledger.store.headcheck import head_fault, log_alarm
from ledger.store.projections import PlannedRows, Projection, RowsInto
from ledger.store.sealing import GroupState, Head, RecordRow, SealedAhead, SharedState
from ledger.store.tables import idempotency_keys, ledgers, records
from ledger.store.tree import insert_nodes, is_stored, load_nodes, node_key

__all__ = ["AppendRequest", "AppendResult", "LedgerInfo", "Receipt", "Recorder"]

log = logging.getLogger("ledger.store")

Clock = Callable[[], datetime]

_SELECT_LEDGER = (
    "SELECT name, created_at, head_seq, head_hash, public_read, title, description"
    " FROM ledgers WHERE name = ?"
)
_SELECT_HEAD = "SELECT id, head_seq FROM ledgers WHERE name = ?"
_SELECT_PAGE = "SELECT canonical FROM records WHERE ledger_id = ? AND seq > ? ORDER BY seq LIMIT ?"
_SELECT_RECORD = "SELECT canonical FROM records WHERE ledger_id = ? AND seq = ?"
SignerSource = Callable[[Connection], Sequence[Signer]]
# The most events a group handed to ``Backend.write_group`` holds. Its rows
# travel as arrays the driver builds in Python, while the usual way inserts
# in bulk (COPY, in C): a large group is quicker the usual way
# (``scripts/bench.sh appends``, 500-event batches).
_WRITTEN_GROUP_MAX_EVENTS = 64
# The active keys as last read, with the signers for them (``ActiveSigners.held``).
HeldSigners = Callable[[], tuple[Sequence[str], Sequence[Signer]] | None]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class _GrownTree:
    """A group's leaves appended to the tree: the nodes they complete, the new
    root, its signed note, and the new tree's frontier (perfect-cover nodes)."""

    created: dict[NodeId, bytes]
    root: bytes
    note: str
    frontier: dict[NodeId, bytes]


_RECORD_COLUMNS = (
    "ledger_id",
    "seq",
    "event_id",
    "type",
    "party",
    "topic",
    "occurred_at",
    "recorded_at",
    "record_hash",
    "canonical",
)
_INSERT_RECORD = (
    f"INSERT INTO records ({', '.join(_RECORD_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in _RECORD_COLUMNS)})"
)
_SELECT_HEAD_ROW = "SELECT id, head_seq, head_hash, last_recorded_at FROM ledgers WHERE name = ?"
# A key belongs to the principal that sent it (the records' actor): another
# principal's same key is another request.
_SELECT_IDEMPOTENCY = (
    "SELECT request_sha256, response FROM idempotency_keys"
    " WHERE ledger_id = ? AND principal = ? AND key = ?"
)
_INSERT_IDEMPOTENCY = (
    "INSERT INTO idempotency_keys"
    " (ledger_id, principal, key, request_sha256, response, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


class Recorder:
    """Appends and reads; keyword-only so call sites say what they pass."""

    def __init__(
        self,
        *,
        database: Database,
        origin: str,
        signers: SignerSource,
        projections: Sequence[Projection] = (),
        clock: Clock = _utc_now,
    ) -> None:
        self.db = database
        self.origin = origin
        self.signers = signers
        self.projections = tuple(projections)
        self.clock = clock
        backend = database.backend
        self._backend: AppendPort = backend
        self._integrity_errors = backend.integrity_errors
        # Where each projection's planned rows go, one tuple for the
        # recorder's life (``Backend.write_group`` makes its statement once).
        self._writes: tuple[RowsInto, ...] = tuple(
            into for projection in self.projections for into in projection.writes
        )
        self._committer: GroupCommitter[AppendRequest, AppendResult] = GroupCommitter(
            self._prepare_group,
            inline=backend.inline_groups,
            ahead=self.seal_ahead if backend.inline_groups else None,
            statement=self._write_group if backend.writes_groups else None,
        )
        self._shared = SharedState()
        self._held_signers: HeldSigners | None = getattr(signers, "held", None)

    def checkpoint_origin(self, ledger: str) -> str:
        """format §3: ``<server origin>/<ledger>``."""
        return f"{self.origin}/{ledger}"

    # -- ledgers -----------------------------------------------------------

    def create_ledger(
        self,
        name: str,
        *,
        public_read: bool = True,
        title: str | None = None,
        description: str | None = None,
    ) -> LedgerInfo:
        created_at = format_recorded_at(self.clock())
        try:
            with self.db.write() as conn:
                exists = conn.execute(sa.select(ledgers.c.id).where(ledgers.c.name == name)).first()
                if exists is not None:
                    raise LedgerExists(f"ledger {name!r} already exists")
                conn.execute(
                    ledgers.insert().values(
                        name=name,
                        created_at=created_at,
                        head_seq=0,
                        head_hash=GENESIS_PREV,
                        last_recorded_at="",
                        public_read=public_read,
                        title=title,
                        description=description,
                    )
                )
        except exc.IntegrityError as e:  # another process created it between our check and insert
            raise LedgerExists(f"ledger {name!r} already exists") from e
        return LedgerInfo(
            name=name,
            created_at=created_at,
            size=0,
            head_hash=GENESIS_PREV,
            public_read=public_read,
            title=title,
            description=description,
        )

    def list_ledgers(self) -> list[LedgerInfo]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(ledgers).order_by(ledgers.c.name)).all()
        return [self._info(row) for row in rows]

    def get_ledger(self, name: str) -> LedgerInfo:
        with raw_read(self.db) as reader:
            row = reader.one(_SELECT_LEDGER, [name])
        if row is None:
            raise NotFound(f"no ledger named {name!r}")
        return LedgerInfo(
            name=row[0],
            created_at=row[1],
            size=int(row[2]),
            head_hash=row[3],
            public_read=bool(row[4]),
            title=row[5],
            description=row[6],
        )

    @staticmethod
    def _info(row: sa.Row[Any]) -> LedgerInfo:
        return LedgerInfo(
            name=row.name,
            created_at=row.created_at,
            size=row.head_seq,
            head_hash=row.head_hash,
            public_read=bool(row.public_read),
            title=row.title,
            description=row.description,
        )

    # -- appends -----------------------------------------------------------

    def append(
        self,
        ledger: str,
        drafts: Sequence[EventDraft],
        *,
        actor: str,
        idempotency_key: str | None = None,
        request_sha256: str | None = None,
        expected_seq: int | None = None,
    ) -> AppendResult:
        """Append drafts atomically (``commit`` of the ``AppendRequest`` they make)."""
        return self.commit(
            AppendRequest.build(
                ledger,
                drafts,
                actor=actor,
                idempotency_key=idempotency_key,
                request_sha256=request_sha256,
                expected_seq=expected_seq,
            )
        )

    def commit(self, request: AppendRequest) -> AppendResult:
        """Commit ``request``, possibly in one transaction with concurrent appends.

        Returns only after the commit that holds it; see the module docstring.
        """
        return self._committer.submit(request.ledger, request, weight=request.weight)

    async def commit_async(self, request: AppendRequest) -> AppendResult:
        """``commit`` for the event loop: waits for the commit without holding a thread."""
        return await self._committer.submit_async(request.ledger, request, weight=request.weight)

    def close(self) -> None:
        """Commit the queued appends and stop the writer thread."""
        self._committer.close()

    def _commit_group(self, group: Sequence[AppendRequest]) -> list[AppendResult | Exception]:
        """``_prepare_group``, committed at once."""
        outcomes, commit = self._prepare_group(group)
        commit()
        return outcomes

    def _prepare_group(
        self, group: Sequence[AppendRequest]
    ) -> tuple[list[AppendResult | Exception], Callable[[], None]]:
        """One transaction for ``group`` (all for one ledger), in order, up to its
        COMMIT: the outcomes hold only once the returned callable committed.

        A request refused on its own merits (replayed key, ``expected_seq``,
        a used id, an invalid fix) gets its error and writes nothing; the
        others go on. Rows are written in bulk at the end; only a request
        whose projection may refuse it (a fix) is written at once, inside a
        savepoint, so its refusal rolls back only itself.
        """
        ledger = group[0].ledger
        shared = self._shared
        ahead = shared.take_ahead(ledger)
        # One clock reading per group: its records are sealed at one moment.
        now = format_recorded_at(self.clock())
        transaction = self.db.begin_write(hot=True)
        try:
            with translate_errors():
                conn = transaction.connection
                head = self._lock_head(conn, ledger)
                if shared.heads.get(ledger) != head:
                    # Not the head this process committed last: another process
                    # moved it, or someone else did. Check it before chaining on.
                    self._check_head(conn, ledger, head)
                chosen = [d.id for r in group for d in r.drafts if not d.id_assigned]
                used = self._used_ids(conn, head.ledger_id, chosen)
                staged: list[list[Sealed] | AppendResult | Exception] = []
                rest = group
                if ahead is not None and self._ahead_holds(conn, ahead, head, group, used):
                    assert ahead.state is not None
                    state = ahead.state
                    staged.extend(ahead.staged)
                    used |= ahead.used
                    rest = group[len(ahead.requests) :]
                else:
                    state = GroupState.behind(head, now)
                for request in rest:
                    try:
                        staged.append(self._stage(conn, state, request, used))
                    except LedgerError as e:
                        staged.append(e)
                    else:
                        if request.idempotency_key is not None and isinstance(staged[-1], list):
                            state.keyed.append((request, len(staged) - 1))
                self._flush(conn, state)
                # Every receipt names the tree its commit signs, which holds it.
                size = state.head.seq
                outcomes = [
                    AppendResult(sealed=tuple(o), tree_size=size) if isinstance(o, list) else o
                    for o in staged
                ]
                frontier = None
                if size > head.seq:
                    frontier = self._finish(conn, ledger, head, state, outcomes)
        except self._integrity_errors as e:
            transaction.rollback()
            # The checks run under the head lock, so reaching here means a
            # constraint caught what they missed; report it, write nothing.
            if "event_id" in str(getattr(e, "orig", e)):
                raise DuplicateEventId("an event id in this request is already used") from e
            raise
        except BaseException:
            transaction.rollback()
            raise
        if frontier is None:
            return outcomes, transaction.commit
        after = state.head
        if self._committer.inline:
            shared.open_ahead(ledger, after)

        def commit() -> None:
            transaction.commit()
            shared.committed(ledger, after, frontier)

        return outcomes, commit

    async def _write_group(
        self, group: Sequence[AppendRequest]
    ) -> list[AppendResult | Exception] | None:
        """On the event loop: ``group`` sealed on the head this process last
        committed and handed to ``Backend.write_group``. None when it has to go
        the usual way (``_prepare_group``): it needs the database to be
        sealed, or the backend found the head or the keys changed, or refused
        a row; nothing was written then."""
        if sum(request.weight for request in group) > _WRITTEN_GROUP_MAX_EVENTS:
            return None
        sealed = self._seal_on_known_head(group)
        if sealed is None:
            return None
        write, outcomes, after, frontier = sealed
        ledger = group[0].ledger
        # Unknown until the backend says: a failure below must not leave it.
        self._shared.forget_head(ledger)
        if not await self._backend.write_group(write, self._writes):
            return None
        self._shared.committed(ledger, after, frontier)
        return list(outcomes)

    def _seal_on_known_head(
        self, group: Sequence[AppendRequest]
    ) -> tuple[SealedGroup, list[AppendResult], Head, dict[NodeId, bytes]] | None:
        """``group`` sealed as its transaction would seal it, if the head is still the
        one this process committed last: what to write, the outcomes, the new
        head and frontier. None when sealing needs the database: an
        Idempotency-Key (a replay?), a request refused (by a head that might not
        hold), a projection that reads (a fix), or no head or frontier known."""
        ledger = group[0].ledger
        before = self._shared.heads.get(ledger)
        held = self._held_signers() if self._held_signers is not None else None
        if before is None or held is None:
            return None
        frontier = self._shared.frontier_at(before)
        if frontier is None:
            return None
        if any(request.idempotency_key is not None for request in group):
            return None
        state = GroupState.behind(before, format_recorded_at(self.clock()))
        used: set[str] = set()
        entries_of: list[list[Sealed]] = []
        for request in group:
            try:
                entries, rows, sealed = self._check_and_seal(state, request, used)
            except LedgerError:
                return None
            self._keep(state, request, entries, rows, sealed, used)
            entries_of.append(entries)
        projected: list[PlannedRows] = []
        for projection in self.projections:
            planned = projection.planned(state.sealed)
            if planned is None:
                return None
            projected.extend(planned)
        after = state.head
        active, signers = held
        grown = self._signed_tree(ledger, before, frontier, state.leaves, after, signers)
        write = SealedGroup(
            ledger_id=before.ledger_id,
            old_seq=before.seq,
            old_hash=before.hash,
            new_seq=after.seq,
            new_hash=after.hash,
            recorded_at=after.last_recorded_at,
            active_keys=active,
            records=[row[1:] for row in state.rows],
            projected=projected,
            nodes=[(node_key(node), h) for node, h in grown.created.items() if is_stored(node)],
            root=grown.root,
            note=grown.note,
        )
        outcomes = [AppendResult(sealed=tuple(e), tree_size=after.seq) for e in entries_of]
        return write, outcomes, after, grown.frontier

    def _stage(
        self,
        conn: Connection,
        state: GroupState,
        request: AppendRequest,
        used: set[str],
    ) -> list[Sealed] | AppendResult:
        """Seal ``request`` behind the running head: what its receipts hold, or
        the earlier result its Idempotency-Key replays."""
        head = state.head
        if request.idempotency_key is not None:
            replay = self._replay(conn, head.ledger_id, request)
            if replay is not None:
                return replay
        entries, rows, sealed = self._check_and_seal(state, request, used)
        if any(p.validates(sealed) for p in self.projections):
            # Everything staged before it first: the fix may target those records.
            self._flush(conn, state)
            with conn.begin_nested():
                self._insert_records(conn, rows)
                for projection in self.projections:
                    projection.apply(conn, head.ledger_id, sealed)
            self._keep(state, request, entries, rows, sealed, used, written=True)
        else:
            self._keep(state, request, entries, rows, sealed, used)
        return entries

    def _check_and_seal(
        self, state: GroupState, request: AppendRequest, used: set[str]
    ) -> tuple[list[Sealed], list[RecordRow], list[SealedDraft]]:
        """``request``'s ``expected_seq`` and ids checked against the running head and
        ``used``, then its records sealed behind that head."""
        head = state.head
        if request.expected_seq is not None and request.expected_seq != head.seq:
            raise HeadMismatch(
                f"expected the head at seq {request.expected_seq}, but it is at seq {head.seq}",
                expected_seq=request.expected_seq,
                head_seq=head.seq,
            )
        for index, draft in enumerate(request.drafts):
            if draft.id in used:
                raise DuplicateEventId(
                    f"id {draft.id} is already used in this ledger",
                    field=f"[{index}].id" if len(request.drafts) > 1 else "id",
                )
        return self._seal(request.ledger, head, request.drafts, request.actor, state.recorded_at)

    @staticmethod
    def _keep(
        state: GroupState,
        request: AppendRequest,
        entries: list[Sealed],
        rows: list[RecordRow],
        sealed: list[SealedDraft],
        used: set[str],
        *,
        written: bool = False,
    ) -> None:
        """Stage sealed records (to be written at the flush, unless ``written``
        already) and move the running head past them."""
        if not written:
            state.rows.extend(rows)
            state.sealed.extend(sealed)
        state.leaves.extend(leaf_hash(row[-1]) for row in rows)
        used.update(d.id for d in request.drafts)
        last = entries[-1]
        state.head = Head(state.head.ledger_id, last[0], last[2], last[4])

    def seal_ahead(self, request: AppendRequest) -> None:
        """Seal ``request`` now, on the head the group committing before it will
        leave, so that its own transaction has only to write.

        SQLite takes one write transaction at a time, so while a group's
        COMMIT (and fsync) runs in the commit thread, the next group cannot
        begin; the event loop would wait. ``GroupCommitter`` calls this for
        each request that queues meanwhile, in order. What it seals is used
        only if, under the lock, the head is the one assumed, the group
        starts with exactly these requests, no client-chosen id among them is
        in the ledger and no Idempotency-Key among them was stored: the
        transaction would then have sealed the same records. Otherwise it is
        thrown away and the group is sealed as usual. A request whose
        projection checks the database (a fix) ends sealing ahead.
        """
        shared = self._shared
        with shared.ahead_lock:
            ahead = shared.ahead.get(request.ledger)
            if ahead is None or ahead.closed:
                return
            try:
                self._seal_ahead(ahead, request)
            except Exception:
                # Whatever went wrong goes wrong again in the request's own
                # transaction, where it is handled; nothing sealed here is kept.
                del shared.ahead[request.ledger]
                log.debug("sealing ahead failed; the group is sealed as usual", exc_info=True)

    def _seal_ahead(self, ahead: SealedAhead, request: AppendRequest) -> None:
        if ahead.state is None:
            ahead.state = GroupState.behind(ahead.base, format_recorded_at(self.clock()))
        state = ahead.state
        outcome: list[Sealed] | Exception
        try:
            entries, rows, sealed = self._check_and_seal(state, request, ahead.used)
        except LedgerError as e:
            outcome = e
        else:
            if any(p.validates(sealed) for p in self.projections):
                ahead.closed = True
                return
            self._keep(state, request, entries, rows, sealed, ahead.used)
            outcome = entries
            if request.idempotency_key is not None:
                state.keyed.append((request, len(ahead.staged)))
        ahead.requests.append(request)
        ahead.staged.append(outcome)
        ahead.chosen.update(d.id for d in request.drafts if not d.id_assigned)

    def _ahead_holds(
        self,
        conn: Connection,
        ahead: SealedAhead,
        head: Head,
        group: Sequence[AppendRequest],
        used: set[str],
    ) -> bool:
        """``SealedAhead.holds``, and no Idempotency-Key of the requests sealed ahead was
        stored (those would replay, or be refused, rather than append)."""
        if not ahead.holds(head, group, used):
            return False
        for request in ahead.requests:
            key = request.idempotency_key
            if key is not None and raw_execute(
                conn, _SELECT_IDEMPOTENCY, [head.ledger_id, request.actor, key]
            ):
                return False
        return True

    def _flush(self, conn: Connection, state: GroupState) -> None:
        """Write the staged records and project them."""
        if state.rows:
            self._insert_records(conn, state.rows)
            for projection in self.projections:
                projection.apply(conn, state.head.ledger_id, state.sealed)
            state.rows, state.sealed = [], []

    def _insert_records(self, conn: Connection, rows: Sequence[RecordRow]) -> None:
        raw_execute_many(conn, _INSERT_RECORD, rows, table=records)

    def _finish(
        self,
        conn: Connection,
        ledger: str,
        before: Head,
        state: GroupState,
        outcomes: Sequence[AppendResult | Exception],
    ) -> dict[NodeId, bytes]:
        """Move the head, grow the tree and sign its new size, store the idempotency
        keys; return the new tree's frontier."""
        head = state.head
        root, note, frontier = self._grow_tree(conn, ledger, before, state.leaves, head)
        moved = [head.seq, head.hash, head.last_recorded_at, head.ledger_id]
        checkpoint = [head.ledger_id, head.seq, root, head.hash, note, head.last_recorded_at]
        self._backend.move_head(conn, moved, checkpoint)
        if state.keyed:
            rows = []
            for request, index in state.keyed:
                result = outcomes[index]
                assert isinstance(result, AppendResult)
                receipts = result.receipts_json().decode()
                rows.append(
                    (
                        head.ledger_id,
                        request.actor,
                        request.idempotency_key,
                        request.request_sha256 or "",
                        receipts,
                        head.last_recorded_at,
                    )
                )
            raw_execute_many(conn, _INSERT_IDEMPOTENCY, rows, table=idempotency_keys)
        return frontier

    def _grow_tree(
        self, conn: Connection, ledger: str, before: Head, leaves: Sequence[bytes], after: Head
    ) -> tuple[bytes, str, dict[NodeId, bytes]]:
        """Store the Merkle nodes the new leaves complete and sign the new size:
        the new root, its signed note, and the new tree's frontier (its
        perfect-cover nodes)."""
        frontier = self._shared.frontier_at(before)
        if frontier is None:
            frontier = load_nodes(conn, before.ledger_id, perfect_cover(0, before.seq))
        grown = self._signed_tree(ledger, before, frontier, leaves, after, self.signers(conn))
        insert_nodes(conn, before.ledger_id, grown.created)
        return grown.root, grown.note, grown.frontier

    def _signed_tree(
        self,
        ledger: str,
        before: Head,
        frontier: dict[NodeId, bytes],
        leaves: Sequence[bytes],
        after: Head,
        signers: Sequence[Signer],
    ) -> _GrownTree:
        """The tree at ``before`` (given by its ``frontier``) with ``leaves``
        appended, and its new size signed."""
        created = append_leaves(before.seq, frontier, list(leaves))
        nodes = {**frontier, **created}
        root = root_from_nodes(after.seq, nodes)
        note = notes.sign(
            notes.Checkpoint(
                origin=self.checkpoint_origin(ledger),
                tree_size=after.seq,
                root=root,
                head_hash=after.hash,
            ),
            signers,
        )
        return _GrownTree(
            created=created,
            root=root,
            note=note.to_text(),
            frontier={node: nodes[node] for node in perfect_cover(0, after.seq)},
        )

    def _lock_head(self, conn: Connection, ledger: str) -> Head:
        rows = raw_execute(conn, _SELECT_HEAD_ROW + self._backend.head_lock, [ledger])
        if not rows:
            raise NotFound(f"no ledger named {ledger!r}")
        ledger_id, seq, head_hash, last_recorded_at = rows[0]
        return Head(int(ledger_id), int(seq), str(head_hash), str(last_recorded_at))

    @staticmethod
    def _check_head(conn: Connection, ledger: str, head: Head) -> None:
        """Raise (and log) the ``IntegrityAlarm`` ``head`` and the last records give."""
        alarm = head_fault(
            conn, ledger, (head.ledger_id, head.seq, head.hash, head.last_recorded_at)
        )
        if alarm is not None:
            log_alarm(alarm)
            raise alarm

    def check_heads(self) -> list[IntegrityAlarm]:
        """Check every ledger's head against its last records (a server does at
        start); log and return what is wrong. Appends to those ledgers are
        refused anyway, each group checking again until the head is sound."""
        found = []
        with self.db.read() as conn:
            rows = raw_execute(
                conn, "SELECT name, id, head_seq, head_hash, last_recorded_at FROM ledgers"
            )
            for name, ledger_id, seq, head_hash, last_recorded_at in rows:
                head = (int(ledger_id), int(seq), str(head_hash), str(last_recorded_at))
                alarm = head_fault(conn, str(name), head)
                if alarm is not None:
                    log_alarm(alarm)
                    found.append(alarm)
        return found

    def _replay(
        self, conn: Connection, ledger_id: int, request: AppendRequest
    ) -> AppendResult | None:
        """The earlier result of ``request``'s Idempotency-Key, sent by its actor."""
        key = [ledger_id, request.actor, request.idempotency_key]
        rows = raw_execute(conn, _SELECT_IDEMPOTENCY, key)
        if not rows:
            return None
        stored_sha256, response = rows[0]
        if stored_sha256 != (request.request_sha256 or ""):
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used for a different request body; "
                "use a new key for a new request"
            )
        receipts = [Receipt(**item) for item in json.loads(response)]
        return AppendResult.of(receipts, replayed=True)

    @staticmethod
    def _used_ids(conn: Connection, ledger_id: int, ids: list[str]) -> set[str]:
        """Which of ``ids`` the ledger already holds (one indexed probe each)."""
        used: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = raw_execute(
                conn,
                "SELECT event_id FROM records WHERE ledger_id = ?"
                f" AND event_id IN ({', '.join('?' for _ in chunk)})",
                [ledger_id, *chunk],
            )
            used.update(str(row[0]) for row in rows)
        return used

    def _seal(
        self, ledger: str, head: Head, drafts: Sequence[EventDraft], actor: str, recorded_at: str
    ) -> tuple[list[Sealed], list[RecordRow], list[SealedDraft]]:
        """Records behind ``head``: their rows, what their receipts hold, and what
        projections see of them."""
        key = (ledger, actor, recorded_at)
        last = self._shared.frame
        if last is not None and last[0] == key:
            frame = last[1]
        else:
            frame = RecordFrame.of(ledger=ledger, actor=actor, recorded_at=recorded_at)
            self._shared.frame = (key, frame)
        prev = head.hash
        entries: list[Sealed] = []
        rows: list[RecordRow] = []
        sealed: list[SealedDraft] = []
        for offset, draft in enumerate(drafts, start=1):
            seq = head.seq + offset
            canonical = frame.canonical_record(draft, seq=seq, prev=prev)
            digest = record_hash(canonical)
            rows.append(
                (
                    head.ledger_id,
                    seq,
                    draft.id,
                    draft.type,
                    draft.party,
                    draft.topic,
                    draft.occurred_at,
                    recorded_at,
                    digest,
                    canonical,
                )
            )
            entries.append((seq, draft.id, digest, prev, recorded_at))
            sealed.append(SealedDraft(seq, draft))
            prev = digest
        return entries, rows, sealed

    # -- reads (raw DBAPI: see ledger.store.dbapi_reads) ------------------------

    @staticmethod
    def _ledger_id(reader: RawReader, ledger: str) -> tuple[int, int]:
        row = reader.one(_SELECT_HEAD, [ledger])
        if row is None:
            raise NotFound(f"no ledger named {ledger!r}")
        return int(row[0]), int(row[1])

    def read_page(self, ledger: str, *, after_seq: int, limit: int) -> tuple[list[bytes], int]:
        """Canonical bytes of up to ``limit`` records after ``after_seq``, and the head seq."""
        with raw_read(self.db) as reader:
            ledger_id, head_seq = self._ledger_id(reader, ledger)
            rows = reader.all(_SELECT_PAGE, [ledger_id, after_seq, limit])
        return [bytes(row[0]) for row in rows], head_seq

    def iter_records(
        self, ledger: str, *, after_seq: int = 0, to_seq: int | None = None, page: int = 1000
    ) -> Iterator[bytes]:
        """Every record after ``after_seq`` (up to the head when called), page by page.

        Each page is its own short read, so a slow consumer never pins a
        transaction (or the SQLite WAL) open.
        """
        with raw_read(self.db) as reader:
            _, head_seq = self._ledger_id(reader, ledger)
        last = head_seq if to_seq is None else min(to_seq, head_seq)
        cursor = after_seq
        while cursor < last:
            batch, _ = self.read_page(ledger, after_seq=cursor, limit=min(page, last - cursor))
            if not batch:
                return
            yield from batch
            cursor += len(batch)

    def get_record(self, ledger: str, seq: int) -> bytes:
        with raw_read(self.db) as reader:
            ledger_id, _ = self._ledger_id(reader, ledger)
            row = reader.one(_SELECT_RECORD, [ledger_id, seq])
        if row is None:
            raise NotFound(f"ledger {ledger!r} has no record at seq {seq}")
        return bytes(row[0])
