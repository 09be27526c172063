"""Use cases: create ledgers, append, read. No HTTP, no SQL: reads and writes
go through the functions and objects of ``ledger.store``.

The HTTP API and the CLI both call this module, so an event imported from a
file passes exactly the checks of an event posted over HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.core.authors import AUTHOR_NAME_PATTERN, AUTHOR_REGISTERED, AUTHOR_REVOKED
from ledger.core.documents import (
    LEADING_BYTES,
    SHA256_PATTERN,
    DocumentInfo,
    check_leading_bytes,
    media_type_for,
)
from ledger.core.errors import (
    BodyTooLarge,
    Conflict,
    IdempotencyInFlight,
    InvalidDocument,
    InvalidEvent,
    InvalidParameter,
    NotFound,
)
from ledger.core.identity import SigningIdentity, rotation_target
from ledger.core.positions import sign_snapshot, snapshot_document
from ledger.core.records import LEDGER_NAME_PATTERN, EventDraft
from ledger.core.signing import VerifierKey, endorse
from ledger.core.sources import source_detail, sources_list
from ledger.core.times import (
    format_occurred_at,
    format_recorded_at,
    parse_instant,
)
from ledger.intake import Intake, ParsedBody, new_event_ids
from ledger.keyring import KeyRing
from ledger.store.authors import read_registry
from ledger.store.documents import (
    PART_BYTES,
    document_info,
    insert_document,
    ledger_documents,
    read_document,
)
from ledger.store.keys import KeyRecord, KeyRegistry
from ledger.store.ledger_reads import ledger_at, newest_signer
from ledger.store.position_reads import position_history, position_snapshots
from ledger.store.positions import PositionsProjection
from ledger.store.projections import rebuild_projections
from ledger.store.proofs import ConsistencyProof, InclusionProof, LogReader
from ledger.store.recorder import AppendRequest, AppendResult, LedgerInfo, Receipt, Recorder
from ledger.store.sources import read_citations
from ledger.store.timestamps import StoredTimestamp, newest_timestamp, timestamp_at

__all__ = ["AppendOutcome", "AuthorEntry", "LedgerService", "PreparedAppend", "Rotation"]

_DATE_ONLY = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


def parse_as_of(as_of: str | None, *, field: str = "as_of") -> str | None:
    """format §1: a date means the end of that day; a time is floored to the second."""
    if as_of is None or as_of == "":
        return None
    try:
        moment = parse_instant(as_of, allow_fraction=True)
    except ValueError as e:
        raise InvalidParameter(str(e), field=field) from None
    bound = format_occurred_at(moment)
    if _DATE_ONLY.match(as_of):
        bound = bound[:10] + "T23:59:59Z"
    return bound


TITLE_MAX = 200
DESCRIPTION_MAX = 2000
# C0 and C1 controls and DEL; a description may still break lines with "\n".
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _display_text(value: object, *, field: str, limit: int, lines: bool) -> str | None:
    """A ledger's title or description as shown to readers: absent (None), or
    trimmed text without control characters (a description may hold newlines)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidEvent("must be a string or null", field=field)
    if not value.strip():
        raise InvalidEvent("must not be empty or blank; leave it out instead", field=field)
    if value != value.strip():
        raise InvalidEvent("must not start or end with whitespace", field=field)
    if len(value) > limit:
        raise InvalidEvent(f"must be at most {limit} characters", field=field)
    if _CONTROL.search(value.replace("\n", "") if lines else value):
        allowed = " other than newline" if lines else ""
        raise InvalidEvent(f"must not hold control characters{allowed}", field=field)
    return value


# Printable ASCII without spaces at the ends: keys travel in an HTTP header.
_IDEMPOTENCY_KEY = re.compile(r"\A[\x21-\x7e][\x20-\x7e]{0,253}[\x21-\x7e]?\Z")


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    result: AppendResult
    is_batch: bool


@dataclass(frozen=True, slots=True)
class PreparedAppend:
    """A validated append, not yet committed."""

    request: AppendRequest
    is_batch: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorEntry:
    """An author of a ledger: its key, and the records that registered and revoked it."""

    name: str
    verifier_key: str
    key_id: str
    registered_seq: int
    revoked_seq: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verifier_key": self.verifier_key,
            "key_id": self.key_id,
            "status": "revoked" if self.revoked_seq is not None else "active",
            "registered_seq": self.registered_seq,
            "revoked_seq": self.revoked_seq,
        }


@dataclass(frozen=True, slots=True)
class Rotation:
    old_key: VerifierKey
    new_key: VerifierKey
    receipts: dict[str, Receipt]
    identity: SigningIdentity


class LedgerService:
    def __init__(
        self,
        *,
        recorder: Recorder,
        intake: Intake,
        log: LogReader,
        keys: KeyRegistry,
        keyring: KeyRing,
        positions: PositionsProjection | None = None,
    ) -> None:
        self.recorder = recorder
        self.intake = intake
        self.positions = positions or PositionsProjection()
        self.log = log
        self.keys = keys
        self.keyring = keyring
        # (ledger, actor, Idempotency-Key) of the appends being committed.
        self._in_flight: set[tuple[str, str, str]] = set()
        self._in_flight_lock = threading.Lock()

    def create_ledger(
        self,
        name: object,
        *,
        public_read: object = True,
        title: object = None,
        description: object = None,
    ) -> LedgerInfo:
        if not isinstance(name, str) or not LEDGER_NAME_PATTERN.match(name):
            raise InvalidEvent(
                "must match ^[a-z0-9][a-z0-9-]{0,62}$ (lowercase letters, digits, hyphens)",
                field="name",
            )
        if not isinstance(public_read, bool):
            raise InvalidEvent("must be true or false", field="public_read")
        return self.recorder.create_ledger(
            name,
            public_read=public_read,
            title=_display_text(title, field="title", limit=TITLE_MAX, lines=False),
            description=_display_text(
                description, field="description", limit=DESCRIPTION_MAX, lines=True
            ),
        )

    def list_ledgers(self) -> list[LedgerInfo]:
        return self.recorder.list_ledgers()

    def get_ledger(self, name: str) -> LedgerInfo:
        if not LEDGER_NAME_PATTERN.match(name):
            # No ledger has this name, and a database may not take it (PostgreSQL
            # text holds no NUL byte): every route reads its ledger here first.
            raise NotFound(f"no ledger named {name!r}")
        return self.recorder.get_ledger(name)

    def prepare_append(
        self,
        ledger: str,
        body: bytes,
        *,
        actor: str,
        idempotency_key: str | None = None,
        expected_seq: int | None = None,
        authorize: Callable[[Sequence[EventDraft]], None] | None = None,
        parsed: ParsedBody | None = None,
    ) -> PreparedAppend:
        """Validate a posted body (pure CPU): what ``append`` then commits.

        ``authorize`` sees the parsed events before anything is written, and
        refuses by raising (a token limited to one party, say). ``parsed``:
        what ``Intake.parse`` made of ``body`` elsewhere (``ledger.intake_workers``).
        """
        if idempotency_key is not None and not _IDEMPOTENCY_KEY.match(idempotency_key):
            raise InvalidParameter(
                "must be 1-255 printable ASCII characters", field="Idempotency-Key"
            )
        if expected_seq is not None and expected_seq < 0:
            raise InvalidParameter("must be >= 0", field="expected_seq")
        if parsed is None:
            parsed = self.intake.parse(body)
        if authorize is not None:
            authorize(parsed.drafts)
        request_sha256 = parsed.request_sha256() if idempotency_key is not None else None
        request = AppendRequest.build(
            ledger,
            parsed.drafts,
            actor=actor,
            idempotency_key=idempotency_key,
            request_sha256=request_sha256,
            expected_seq=expected_seq,
        )
        return PreparedAppend(request, is_batch=parsed.is_batch)

    def append(
        self,
        ledger: str,
        body: bytes,
        *,
        actor: str,
        idempotency_key: str | None = None,
        expected_seq: int | None = None,
        authorize: Callable[[Sequence[EventDraft]], None] | None = None,
    ) -> AppendOutcome:
        """Validate a posted body and append it; all events or none."""
        prepared = self.prepare_append(
            ledger,
            body,
            actor=actor,
            idempotency_key=idempotency_key,
            expected_seq=expected_seq,
            authorize=authorize,
        )
        return self._commit(prepared)

    def append_drafts(
        self, ledger: str, drafts: Sequence[EventDraft], *, actor: str
    ) -> AppendOutcome:
        """Append events already validated one by one (``Intake.draft``, as
        ``ledger import`` reads a file) as one atomic batch, with the checks
        ``append`` makes of a posted batch: the CLI appends as HTTP does."""
        if not drafts:
            raise InvalidEvent("a batch must hold at least one event", field="(root)")
        if len(drafts) > self.intake.max_batch:
            raise InvalidEvent(
                f"a batch holds at most {self.intake.max_batch} events, this one {len(drafts)}",
                field="(root)",
            )
        prepared = self.prepare_append(
            ledger, b"", actor=actor, parsed=ParsedBody(list(drafts), is_batch=True, value=None)
        )
        return self._commit(prepared)

    def _commit(self, prepared: PreparedAppend) -> AppendOutcome:
        with self._claim(prepared.request):
            result = self.recorder.commit(prepared.request)
        return AppendOutcome(result=result, is_batch=prepared.is_batch)

    async def commit_append(self, prepared: PreparedAppend) -> AppendOutcome:
        """Commit a prepared append from the event loop (see ``Recorder.commit_async``)."""
        with self._claim(prepared.request):
            result = await self.recorder.commit_async(prepared.request)
        return AppendOutcome(result=result, is_batch=prepared.is_batch)

    def _claim(self, request: AppendRequest) -> _Claim:
        key = request.idempotency_key
        slot = (request.ledger, request.actor, key) if key is not None else None
        return _Claim(self, slot)

    def read_page(self, ledger: str, *, after_seq: int, limit: int) -> tuple[list[bytes], int]:
        return self.recorder.read_page(ledger, after_seq=after_seq, limit=limit)

    def iter_records(self, ledger: str, *, after_seq: int = 0) -> Iterator[bytes]:
        return self.recorder.iter_records(ledger, after_seq=after_seq)

    def get_record(self, ledger: str, seq: int) -> bytes:
        return self.recorder.get_record(ledger, seq)

    # -- the verifiable log (format §2-3) ------------------------------------

    def inclusion(self, ledger: str, *, seq: int, tree_size: int | None) -> InclusionProof:
        return self.log.inclusion(ledger, seq=seq, tree_size=tree_size)

    def consistency(self, ledger: str, *, size1: int, size2: int | None) -> ConsistencyProof:
        return self.log.consistency(ledger, size1=size1, size2=size2)

    def checkpoint(self, ledger: str, *, size: int | None = None, fresh: bool = False) -> str:
        return self.log.checkpoint(ledger, size=size, fresh=fresh)

    def checkpoint_timestamp(
        self, ledger: str, *, size: int | None = None, at_most: int | None = None
    ) -> StoredTimestamp:
        """The stored RFC 3161 timestamp of the checkpoint of ``size`` exactly, or
        else of the largest timestamped size at or below ``at_most`` (default: any)."""
        self.get_ledger(ledger)  # NotFound for an unknown ledger
        db = self.recorder.db
        if size is not None:
            found = timestamp_at(db, ledger, size)
            wanted = f"of tree size {size}"
        else:
            found = newest_timestamp(db, ledger, at_most=at_most)
            wanted = "yet" if at_most is None else f"at or below tree size {at_most}"
        if found is None:
            raise NotFound(f"ledger {ledger!r} has no timestamped checkpoint {wanted}")
        return found

    # -- positions (format §6) ------------------------------------------------

    def resolve_known_at(self, ledger: str, known_at: str | None) -> tuple[int, int]:
        """(ledger id, seq): ``known_at`` as a seq, or a time meaning the last record by then."""
        text = known_at or ""
        bound: str | None = None
        refusal: InvalidParameter | None = None
        if text and not (text.isascii() and text.isdigit()):
            # Refused only after the ledger is read: an unknown ledger is a 404 first.
            try:
                moment = parse_instant(text, allow_fraction=True)
            except ValueError as e:
                refusal = InvalidParameter(f"a seq or a time: {e}", field="known_at")
            else:
                bound = format_recorded_at(moment)
                if _DATE_ONLY.match(text):
                    bound = bound[:10] + "T23:59:59.999999Z"
        found = ledger_at(self.recorder.db, ledger, recorded_by=bound)
        if found is None:
            raise NotFound(f"no ledger named {ledger!r}")
        if refusal is not None:
            raise refusal
        if found.recorded_by is not None:
            return found.ledger_id, found.recorded_by
        if not text:
            return found.ledger_id, found.head
        seq = int(text)
        if seq > found.head:
            raise InvalidParameter(
                f"the ledger holds {found.head} records; known_at cannot exceed it",
                field="known_at",
            )
        return found.ledger_id, seq

    def snapshot(
        self, ledger: str, *, as_of: str | None = None, known_at: str | None = None
    ) -> dict[str, Any]:
        """The signed format §6 snapshot document."""
        bound = parse_as_of(as_of)
        ledger_id, seq = self.resolve_known_at(ledger, known_at)
        (positions,) = position_snapshots(
            self.recorder.db, self.positions, ledger_id, as_of=[bound], known_at=seq
        )
        root = self.log.root_at(ledger, seq)
        document = snapshot_document(
            ledger=ledger, as_of=bound, known_at=seq, merkle_root=root, positions=positions
        )
        return sign_snapshot(document, newest_signer(self.recorder))

    def party(
        self, ledger: str, party: str, *, as_of: str | None = None, known_at: str | None = None
    ) -> dict[str, Any]:
        """One party's positions and the claims others make about it."""
        bound = parse_as_of(as_of)
        ledger_id, seq = self.resolve_known_at(ledger, known_at)
        (positions,) = position_snapshots(
            self.recorder.db, self.positions, ledger_id, as_of=[bound], known_at=seq, party=party
        )
        document: dict[str, Any] = {"ledger": ledger, "party": party}
        if bound is not None:
            document["as_of"] = bound
        document["known_at"] = seq
        state, claims = positions
        document["positions"] = state.get(party, {})
        document["claims"] = claims.get(party, {})
        return document

    def history(
        self,
        ledger: str,
        *,
        party: str | None = None,
        topic: str | None = None,
        known_at: str | None = None,
    ) -> dict[str, Any]:
        """Every statement on (party, topic) in valid-time order, with what fixed it."""
        ledger_id, seq = self.resolve_known_at(ledger, known_at)
        entries = position_history(
            self.recorder.db, self.positions, ledger_id, known_at=seq, party=party, topic=topic
        )
        document: dict[str, Any] = {"ledger": ledger, "known_at": seq}
        if party is not None:
            document["party"] = party
        if topic is not None:
            document["topic"] = topic
        document["items"] = entries
        return document

    def diff(
        self,
        ledger: str,
        *,
        from_: str,
        to: str,
        known_at: str | None = None,
    ) -> dict[str, Any]:
        """Per party and topic, the position before (as of ``from``) and after (``to``)."""
        before_bound = parse_as_of(from_, field="from")
        after_bound = parse_as_of(to, field="to")
        if before_bound is None or after_bound is None:
            raise InvalidParameter("is required", field="from" if before_bound is None else "to")
        ledger_id, seq = self.resolve_known_at(ledger, known_at)
        before, after = position_snapshots(
            self.recorder.db,
            self.positions,
            ledger_id,
            as_of=[before_bound, after_bound],
            known_at=seq,
        )
        return {
            "ledger": ledger,
            "from": before_bound,
            "to": after_bound,
            "known_at": seq,
            "changes": _changes(before[0], after[0]),
            "claims": _changes(before[1], after[1], depth=3),
        }

    # -- keys --------------------------------------------------------------

    def list_keys(self) -> list[KeyRecord]:
        return self.keys.all_keys()

    def rotate_key(
        self, *, actor: str, origin: str | None = None, name: str | None = None
    ) -> Rotation:
        """format §3 rotation: a new key, endorsed by the old one in every ledger.

        ``origin`` and ``name`` change the signing identity on purpose: the
        new key is registered under them, and servers sign checkpoints of the
        new origin from their next start. The new key is registered first, so
        the checkpoint of the append that records the rotation already
        carries both signatures.
        """
        active = [k for k in self.keys.all_keys() if k.status == "active"]
        if len(active) != 1:
            raise Conflict(
                "a rotation is already in progress (several active keys); "
                "retire the old key first with `ledger keys retire`"
            )
        current = SigningIdentity(origin=active[0].origin, name=active[0].name)
        target = rotation_target(current, origin=origin, name=name)
        old = self.keyring.signer_for(active[0].verifier_key)
        if old is None:
            raise Conflict("this server does not hold the private key of the active key")
        new = self.keyring.generate(target.name)
        now = datetime.now(UTC)
        self.keys.register(new.verifier, origin=target.origin, now=format_recorded_at(now))
        data = {
            "new_key": new.verifier.to_string(),
            "old_key": old.verifier.to_string(),
            "endorsement": base64.b64encode(endorse(old, new.verifier)).decode("ascii"),
        }
        receipts: dict[str, Receipt] = {}
        for info in self.recorder.list_ledgers():
            draft = EventDraft.of(
                id=next(new_event_ids(1)),
                type="key.rotated",
                occurred_at=format_occurred_at(now),
                data=data,
            )
            result = self.recorder.append(info.name, [draft], actor=actor)
            receipts[info.name] = result.receipts[0]
        return Rotation(
            old_key=old.verifier, new_key=new.verifier, receipts=receipts, identity=target
        )

    def retire_key(self, key: str) -> KeyRecord:
        active = [k for k in self.keys.all_keys() if k.status == "active"]
        if len(active) <= 1 and any(key in (k.key_id, k.verifier_key) for k in active):
            raise Conflict("this is the only active key; rotate to a new key before retiring it")
        return self.keys.retire(key, now=format_recorded_at(datetime.now(UTC)))

    # -- projections ------------------------------------------------------------

    @property
    def projection_count(self) -> int:
        """How many projections appends keep (each rebuild reports per record)."""
        return len(self.recorder.projections)

    def rebuild_projections(self, ledger: str, *, progress: Callable[[int], None]) -> int:
        """Recompute every projection of ``ledger`` from its records alone, in one
        transaction; ``progress`` takes records done, per projection. Returns
        the records the ledger holds."""
        return rebuild_projections(
            self.recorder.db, ledger, self.recorder.projections, progress=progress
        )

    # -- authors (format §1.4, docs/authors.md) ------------------------------------

    def register_author(self, ledger: str, *, name: str, verifier_key: str, actor: str) -> Receipt:
        """Record an ``author.registered`` record: from it on, events signed by
        ``name`` with this key are accepted (and verifiers check them)."""
        if not AUTHOR_NAME_PATTERN.match(name):
            raise InvalidParameter(
                "an author name is 1-64 letters, digits, '.', '_' or '-'", field="name"
            )
        try:
            key = VerifierKey.from_string(verifier_key)
        except ValueError as e:
            raise InvalidParameter(str(e), field="verifier_key") from None
        if key.name != name:
            raise InvalidParameter(
                f"the verifier key is named {key.name!r}, not {name!r}", field="verifier_key"
            )
        data = {"name": name, "verifier_key": key.to_string()}
        return self._server_record(ledger, AUTHOR_REGISTERED, data, actor=actor)

    def revoke_author(
        self, ledger: str, *, name: str, actor: str, reason: str | None = None
    ) -> Receipt:
        """Record an ``author.revoked`` record: no event signed by ``name`` is
        accepted from it on; what it signed before stays valid."""
        known = {entry.name: entry for entry in self.authors(ledger)}
        if name not in known:
            raise NotFound(f"ledger {ledger!r} has no author named {name!r}")
        if known[name].revoked_seq is not None:
            raise Conflict(f"author {name!r} was revoked already (seq {known[name].revoked_seq})")
        data: dict[str, Any] = {"name": name}
        if reason:
            data["reason"] = reason
        return self._server_record(ledger, AUTHOR_REVOKED, data, actor=actor)

    def authors(self, ledger: str) -> list[AuthorEntry]:
        """Every author the ledger ever registered, as its records leave them."""
        ledger_id, _ = self.resolve_known_at(ledger, None)
        registry = read_registry(self.recorder.db, ledger_id)
        return [
            AuthorEntry(
                name=name,
                verifier_key=entry.key.to_string(),
                key_id=entry.key.key_id_hex,
                registered_seq=entry.seq,
                revoked_seq=entry.revoked_seq,
            )
            for name, entry in sorted(registry.authors.items())
        ]

    def author_keys(self, ledger: str) -> dict[str, bytes]:
        """The ledger's active desks' public keys, by name, as its records leave them now."""
        ledger_id, _ = self.resolve_known_at(ledger, None)
        registry = read_registry(self.recorder.db, ledger_id)
        return {
            name: entry.key.public_key
            for name, entry in registry.authors.items()
            if entry.revoked_seq is None
        }

    def _server_record(
        self, ledger: str, kind: str, data: dict[str, Any], *, actor: str
    ) -> Receipt:
        self.get_ledger(ledger)
        event = {"type": kind, "occurred_at": format_occurred_at(datetime.now(UTC)), "data": data}
        # Through the intake as a posted event: its type's schema holds too.
        draft = self.intake.draft(event, server=True)
        return self.recorder.append(ledger, [draft], actor=actor).receipts[0]

    # -- source documents (docs/documents.md) ----------------------------------

    def put_document(
        self, ledger: str, info: DocumentInfo, parts: Iterable[bytes]
    ) -> tuple[DocumentInfo, bool]:
        """Store a document (its bytes in ``parts``, as ``insert_document``
        takes them): what the ledger holds under its hash, and whether it is new.
        The same bytes sent as another media type are a conflict."""
        self.get_ledger(ledger)
        created = insert_document(self.recorder.db, ledger, info, parts)
        if created:
            return info, True
        held = self.document(ledger, info.sha256)
        if held.media_type != info.media_type:
            raise Conflict(
                f"ledger {ledger!r} holds these bytes as {held.media_type}, not {info.media_type}"
            )
        return held, False

    def put_document_file(self, ledger: str, path: Path, *, max_bytes: int) -> DocumentInfo:
        """Store a local file as a document (``ledger import``'s ``document_path``),
        with the checks an upload gets: its type (by extension), its size, its
        leading bytes. Read twice, a part at a time: hashed, then stored."""
        media_type = media_type_for(path.name)
        try:
            with path.open("rb") as handle:
                head = handle.read(LEADING_BYTES)
                digest = hashlib.sha256(head)
                size = len(head)
                while part := handle.read(PART_BYTES):
                    size += len(part)
                    if size > max_bytes:
                        raise BodyTooLarge(f"{path} is larger than {max_bytes} bytes")
                    digest.update(part)
        except OSError as e:
            raise InvalidEvent(f"cannot read {path}: {e.strerror}", field="document_path") from None
        if size == 0:
            raise InvalidDocument(f"{path} is empty", field="document_path")
        check_leading_bytes(media_type, head)
        info = DocumentInfo(sha256=digest.hexdigest(), size=size, media_type=media_type)

        def parts() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while part := handle.read(PART_BYTES):
                    yield part

        held, _ = self.put_document(ledger, info, parts())
        return held

    def document(self, ledger: str, sha256: str) -> DocumentInfo:
        """What ``ledger`` holds under ``sha256`` (lower-case hex SHA-256)."""
        if not SHA256_PATTERN.match(sha256):
            raise InvalidParameter(
                "must be a SHA-256 in lower-case hex (64 digits)", field="sha256"
            )
        self.get_ledger(ledger)
        found = document_info(self.recorder.db, ledger, sha256)
        if found is None:
            raise NotFound(f"ledger {ledger!r} holds no document {sha256}")
        return found

    def document_bytes(self, ledger: str, sha256: str) -> Iterator[bytes]:
        """A held document's bytes, a part at a time."""
        return read_document(self.recorder.db, ledger, sha256)

    def documents(self, ledger: str) -> list[DocumentInfo]:
        """Every document ``ledger`` holds, by hash."""
        self.get_ledger(ledger)
        return ledger_documents(self.recorder.db, ledger)

    # -- sources (docs/sources.md) ---------------------------------------------

    def sources(self, ledger: str) -> dict[str, Any]:
        """Every source the ledger's records cite, at its head."""
        ledger_id, head = self.resolve_known_at(ledger, None)
        view = read_citations(self.recorder.db, ledger_id, head)
        return sources_list(ledger, head, view)

    def source(self, ledger: str, name: str) -> dict[str, Any]:
        """One source, with every record that cites it."""
        ledger_id, head = self.resolve_known_at(ledger, None)
        view = read_citations(self.recorder.db, ledger_id, head, name)
        if name not in view:
            raise NotFound(f"no record of ledger {ledger!r} cites a source named {name!r}")
        return source_detail(ledger, head, name, view[name])


def _changes(before: dict[str, Any], after: dict[str, Any], *, depth: int = 2) -> dict[str, Any]:
    """Nested maps of ``{"before", "after"}`` for every leaf cell that differs."""
    out: dict[str, Any] = {}
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if depth > 1:
            inner = _changes(old or {}, new or {}, depth=depth - 1)
            if inner:
                out[key] = inner
        elif old != new:
            out[key] = {"before": old, "after": new}
    return out


class _Claim:
    """Marks an Idempotency-Key as in flight in this process (409 for a twin)."""

    def __init__(self, service: LedgerService, slot: tuple[str, str, str] | None) -> None:
        self.service = service
        self.slot = slot

    def __enter__(self) -> None:
        if self.slot is None:
            return
        with self.service._in_flight_lock:
            if self.slot in self.service._in_flight:
                raise IdempotencyInFlight(
                    "a request with this Idempotency-Key is still being processed; retry later"
                )
            self.service._in_flight.add(self.slot)

    def __exit__(self, *_exc: object) -> None:
        if self.slot is not None:
            with self.service._in_flight_lock:
                self.service._in_flight.discard(self.slot)
